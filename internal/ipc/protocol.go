// Package ipc is the channel between the primary and each of its workers.
//
// The primary makes one connected AF_UNIX stream socket pair per worker
// (Pair) and passes the worker's end as an inherited fd whose number is in
// the HERD_IPC environment variable (EnvFD). Each direction carries frames:
// a 4-byte big-endian length, then one JSON object of that many bytes whose
// "t" field names the message. docs/PROTOCOL.md is the reference for the
// wire format, written so that a client can be built in any language.
//
// The primary serves each worker with a Conn (Serve) and answers the
// worker's requests through a Handler. A Go worker speaks through a Client
// (Dial): heartbeats with its request count and gauges, delegation of work
// to the primary, notifications, subscriptions to topics the primary
// publishes, cluster stats, and membership changes.
//
// Neither side trusts the other: a frame larger than MaxFrame, a frame that
// is not a JSON object with a "t" field, a worker over one of the limits
// (MaxName, MaxText, MaxTopics, MaxTopicBytes, MaxGauges), or a peer that
// stops reading ends the connection with an error, never a crash, a stall
// or unbounded memory in the primary.
package ipc

import (
	"encoding/json"

	"github.com/herd-cluster/herd/internal/envvar"
)

const (
	// Version is the protocol's major version, sent in hello and welcome.
	// Peers speaking different versions refuse each other at the hello.
	Version = 1
	// MaxFrame is the largest frame body accepted, in bytes (1 MiB).
	MaxFrame = 1 << 20
	// EnvFD names the environment variable holding the number of the
	// worker's inherited IPC socket fd.
	EnvFD = envvar.IPC
)

// Limits on what one worker may make the primary hold. A worker that goes
// over one gets an error frame (code protocol_error) and its channel is
// closed; a Go Client refuses or shortens what would go over before
// sending it.
const (
	// MaxName is the longest "t" of an unknown kind, "type", "topic",
	// "lang" and gauge name, in bytes.
	MaxName = 1024
	// MaxText is the longest "reason" and "error", in bytes.
	MaxText = 4096
	// MaxTopics is how many topics one worker may be subscribed to.
	MaxTopics = 256
	// MaxTopicBytes bounds the summed length of one worker's topics.
	MaxTopicBytes = 64 << 10
	// MaxGauges is the most gauges one heartbeat may carry.
	MaxGauges = 1024
)

// Message kinds: the value of the "t" field.
const (
	// MsgHello is the worker's first frame: V, PID, Slot, Gen, Lang.
	MsgHello = "hello"
	// MsgWelcome is the primary's answer to a hello it accepts: V,
	// HeartbeatMS.
	MsgWelcome = "welcome"
	// MsgError is sent by the primary just before it closes the
	// connection: Error and Code say why.
	MsgError = "error"
	// MsgHeartbeat (worker) carries Requests (cumulative) and Gauges.
	MsgHeartbeat = "heartbeat"
	// MsgDelegate (worker) asks the primary's handler for Type to do work:
	// ID, Type, Payload, TimeoutMS. The primary answers with a MsgReply.
	MsgDelegate = "delegate"
	// MsgReply (primary) answers a request with the same ID: Payload on
	// success, or Error and Code.
	MsgReply = "reply"
	// MsgNotify (worker) is a delegate that expects no reply: Type, Payload.
	MsgNotify = "notify"
	// MsgSubscribe (worker) asks for the publishes on Topic.
	MsgSubscribe = "subscribe"
	// MsgUnsubscribe (worker) stops the publishes on Topic.
	MsgUnsubscribe = "unsubscribe"
	// MsgPublish (primary) delivers Payload on Topic; Topic "" is a
	// broadcast that every worker receives, subscribed or not.
	MsgPublish = "publish"
	// MsgStats (worker) asks for the cluster stats document: ID, TimeoutMS.
	MsgStats = "stats"
	// MsgStatus (worker) asks for the worker's own status: ID, TimeoutMS.
	MsgStatus = "status"
	// MsgECV (worker) asks for the ECV state: ID, TimeoutMS. The reply's
	// payload is {"enabled":bool,"healthy":bool,"reason":string}.
	MsgECV = "ecv"
	// MsgRecycle (worker) asks to be replaced gracefully: Reason.
	MsgRecycle = "recycle"
	// MsgRebalance (primary) announces the worker's cluster membership:
	// Index, Total, Epoch.
	MsgRebalance = "rebalance"
	// MsgPrepare (primary) announces a coming membership change: Index,
	// Total, Epoch. The worker quiesces and answers MsgPrepared.
	MsgPrepare = "prepare"
	// MsgPrepared (worker) acknowledges a prepare: Epoch, and Error when
	// the worker could not prepare.
	MsgPrepared = "prepared"
)

// Error codes of a MsgReply or MsgError.
const (
	// CodeNoHandler: no handler is registered for the delegated type.
	CodeNoHandler = "no_handler"
	// CodeTimeout: the handler did not answer within timeout_ms.
	CodeTimeout = "timeout"
	// CodeHandlerError: the handler failed; Error is its message.
	CodeHandlerError = "handler_error"
	// CodeShuttingDown: the primary is stopping and refused the request.
	CodeShuttingDown = "shutting_down"
	// CodeUnsupportedVersion: the hello's version is not the primary's.
	CodeUnsupportedVersion = "unsupported_version"
	// CodeProtocol: the peer broke the protocol (malformed or oversized
	// frame, missing hello).
	CodeProtocol = "protocol_error"
)

// Message is the envelope of every frame. Only T is always present; the
// other fields are used by the kinds documented at the Msg constants. A
// field holding its zero value is left out of the frame, and an absent field
// reads as its zero value. Fields a receiver does not know are ignored.
type Message struct {
	T           string             `json:"t"`                      // kind, one of the Msg constants
	V           int                `json:"v,omitempty"`            // protocol version (hello, welcome)
	ID          uint64             `json:"id,omitempty"`           // request id, echoed by the reply
	Type        string             `json:"type,omitempty"`         // delegated type (delegate, notify)
	Topic       string             `json:"topic,omitempty"`        // publish, subscribe, unsubscribe
	Code        string             `json:"code,omitempty"`         // error code (reply, error)
	Error       string             `json:"error,omitempty"`        // error message (reply, error, prepared)
	TimeoutMS   int64              `json:"timeout_ms,omitempty"`   // request deadline; 0 = none
	PID         int                `json:"pid,omitempty"`          // hello
	Slot        int                `json:"slot,omitempty"`         // hello
	Gen         int                `json:"gen,omitempty"`          // hello
	Lang        string             `json:"lang,omitempty"`         // hello: the client's language
	HeartbeatMS int64              `json:"heartbeat_ms,omitempty"` // welcome; 0 = no heartbeats
	Requests    uint64             `json:"requests,omitempty"`     // heartbeat: cumulative count
	Gauges      map[string]float64 `json:"gauges,omitempty"`       // heartbeat
	Reason      string             `json:"reason,omitempty"`       // recycle
	Index       int                `json:"index,omitempty"`        // rebalance, prepare; -1 = no work
	Total       int                `json:"total,omitempty"`        // rebalance, prepare
	Epoch       int                `json:"epoch,omitempty"`        // rebalance, prepare, prepared
	Payload     json.RawMessage    `json:"payload,omitempty"`      // any JSON value
}
