// Package notify receives sd_notify datagrams from worker processes.
//
// The primary opens one Listener and hands its Addr to every worker as
// NOTIFY_SOCKET. Workers (or their children) send datagrams with the systemd
// sd_notify protocol; the kernel attaches the sender's credentials because
// the socket has SO_PASSCRED set, so each Message says which pid sent it.
package notify

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxDatagram is the largest datagram accepted, in bytes. Larger datagrams
// are dropped.
const MaxDatagram = 4096

// Message is one sd_notify datagram with the credentials of its sender.
type Message struct {
	PID      int               // sender pid from SCM_CREDENTIALS, always > 0
	UID, GID int               // sender uid and gid from SCM_CREDENTIALS
	Fields   map[string]string // every KEY=VALUE line; the last one wins for a repeated key
	Ready    bool              // READY=1
	Stopping bool              // STOPPING=1
	Watchdog bool              // WATCHDOG=1
	Status   string            // STATUS=...
}

// Parse splits an sd_notify datagram into its KEY=VALUE lines.
//
// Lines are separated by '\n'; empty lines (such as a trailing newline) are
// skipped. The value is everything after the first '=' and may be empty. Parse
// rejects a datagram that is empty, longer than MaxDatagram, not valid UTF-8,
// contains a NUL byte, or has a line without '=' or with an empty key. When a
// key repeats, the last value wins.
func Parse(b []byte) (map[string]string, error) {
	switch {
	case len(b) > MaxDatagram:
		return nil, fmt.Errorf("message of %d bytes exceeds %d", len(b), MaxDatagram)
	case !utf8.Valid(b):
		return nil, errors.New("message is not valid utf-8")
	case bytes.IndexByte(b, 0) >= 0:
		return nil, errors.New("message contains a nul byte")
	}
	fields := make(map[string]string)
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: missing '='", i+1)
		}
		if key == "" {
			return nil, fmt.Errorf("line %d: empty key", i+1)
		}
		fields[key] = value
	}
	if len(fields) == 0 {
		return nil, errors.New("empty message")
	}
	return fields, nil
}

// newMessage builds a Message from parsed fields and sender credentials.
func newMessage(fields map[string]string, pid, uid, gid int) Message {
	return Message{
		PID:      pid,
		UID:      uid,
		GID:      gid,
		Fields:   fields,
		Ready:    fields["READY"] == "1",
		Stopping: fields["STOPPING"] == "1",
		Watchdog: fields["WATCHDOG"] == "1",
		Status:   fields["STATUS"],
	}
}
