// Package control is herd's management API: an HTTP+JSON server the primary
// runs on a unix socket (and optionally on TCP with a bearer token), the
// ECV endpoint that takes the node in and out of load-balancer rotation,
// and the client the herd command line uses to talk to it.
//
// The server talks to the supervisor only through the Cluster interface,
// with the request's context, so a slow client never stalls the primary:
// streams (GET /events, GET /logs?follow=1) read from bounded per-client
// buffers and say in the stream when they had to drop something.
package control
