// Package compat is herd's compatibility suite: real servers from every
// ecosystem (Python, Node, Ruby, Go, C) run under a real herd primary, each
// with the recipe docs/servers.md gives, and checked the way a user would
// check them:
//
//   - it serves through the socket herd passes (fd 3, LISTEN_FDS);
//   - a rolling restart (herd reload) under wrk, which never retries, with
//     keep-alive connections and with "Connection: close", fails no more
//     requests than the recipe documents;
//   - kill -9 of a worker, and of the server's own master where it has one,
//     is followed by a new process within 2 seconds;
//   - herd stop leaves no process of the cluster behind and the port free.
//
// The suite needs the servers installed: test/compat/install.sh installs
// them (Debian packages, and npm packages into test/compat/node). A server
// that is absent is skipped with the reason, unless COMPAT_REQUIRE=1
// (set by CI), which makes its absence a failure. The figures of every run
// go to the report file named by COMPAT_REPORT (default: a file in the
// temporary directory, named in the test log).
package compat
