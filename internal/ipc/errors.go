package ipc

import (
	"context"
	"errors"
	"fmt"
)

var (
	// ErrFrameTooLarge is returned for a frame whose length exceeds
	// MaxFrame.
	ErrFrameTooLarge = errors.New("ipc: frame too large")
	// ErrNoHandler is returned by a Handler for a delegated type nobody
	// registered; a Client's Delegate returns an error matching it.
	ErrNoHandler = errors.New("ipc: no handler for delegated type")
	// ErrShuttingDown is returned by a Handler that refuses work because
	// the primary is stopping; a Client's call returns an error matching it.
	ErrShuttingDown = errors.New("ipc: primary is shutting down")
	// ErrUnsupportedVersion matches the error of a Client whose protocol
	// version the primary does not speak, and of the primary's Conn.
	ErrUnsupportedVersion = errors.New("ipc: unsupported protocol version")
	// ErrNoIPC is returned by Dial when HERD_IPC is not set: the process
	// was not started by a herd primary.
	ErrNoIPC = errors.New("ipc: " + EnvFD + " is not set")
	// ErrClosed is returned for calls on a closed Conn or Client.
	ErrClosed = errors.New("ipc: connection closed")
	// ErrStuck ends a Conn whose worker does not read: its send queue
	// overflowed or a write did not complete in time.
	ErrStuck = errors.New("ipc: peer is not reading")
	// ErrQueueFull is returned by a Client whose send queue is full because
	// the primary does not read.
	ErrQueueFull = errors.New("ipc: send queue full")
	// ErrProtocol wraps a violation of the protocol by the peer other than a
	// malformed frame, such as a first frame that is not hello.
	ErrProtocol = errors.New("ipc: protocol error")
	// ErrLimit wraps what goes over one of the protocol's limits: a name
	// longer than MaxName, a text longer than MaxText, more than MaxTopics
	// subscriptions or MaxTopicBytes of topics, more than MaxGauges gauges.
	// The primary ends the connection of a worker that does so, with an
	// error matching both ErrProtocol and ErrLimit.
	ErrLimit = errors.New("over the limit")
)

// MalformedError reports a frame that is not a JSON object with a non-empty
// "t" field.
type MalformedError struct {
	Err error // why the frame was refused
}

// Error returns a lowercase description of the malformed frame.
func (e *MalformedError) Error() string {
	return "ipc: malformed frame: " + e.Err.Error()
}

// Unwrap returns the underlying cause.
func (e *MalformedError) Unwrap() error { return e.Err }

// RemoteError is an error reported by the primary in a reply or error
// frame. errors.Is matches it against ErrNoHandler, ErrShuttingDown,
// ErrUnsupportedVersion and context.DeadlineExceeded according to its Code.
type RemoteError struct {
	Code    string // one of the Code constants, or a code this client does not know
	Message string // the primary's description
}

// Error returns the code and the primary's message.
func (e *RemoteError) Error() string {
	if e.Message == "" {
		return "ipc: remote error: " + e.Code
	}
	return fmt.Sprintf("ipc: remote error %s: %s", e.Code, e.Message)
}

// Is reports whether the code corresponds to target.
func (e *RemoteError) Is(target error) bool {
	switch e.Code {
	case CodeNoHandler:
		return target == ErrNoHandler
	case CodeShuttingDown:
		return target == ErrShuttingDown
	case CodeUnsupportedVersion:
		return target == ErrUnsupportedVersion
	case CodeTimeout:
		return target == context.DeadlineExceeded
	case CodeProtocol:
		return target == ErrProtocol
	}
	return false
}

// remoteError returns the error a reply or error frame carries, or nil.
func remoteError(m *Message) error {
	if m.Code == "" && m.Error == "" {
		return nil
	}
	code := m.Code
	if code == "" {
		code = CodeHandlerError
	}
	return &RemoteError{Code: code, Message: m.Error}
}
