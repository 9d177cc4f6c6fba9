package membership

import "errors"

var (
	// ErrBadRegistry is a registry URI ParseRegistry cannot use.
	ErrBadRegistry = errors.New("bad registry uri")
	// ErrBadName is an empty cluster key, environment or instance id, or
	// one with a slash in it.
	ErrBadName = errors.New("must be non-empty and have no slash")
	// ErrTTLTooShort is a TTL under MinTTL.
	ErrTTLTooShort = errors.New("shorter than the 2s etcd grants at least")
	// ErrDuplicateID is an instance id another live instance of the
	// cluster registered. A dynamic session logs it and tries again until
	// that instance leaves or expires.
	ErrDuplicateID = errors.New("instance id in use by another instance")
	// ErrClosed is a call on a session that has left or was closed.
	ErrClosed = errors.New("membership session closed")
	// ErrJoined is a second call of Join.
	ErrJoined = errors.New("membership session already joined")
)
