//go:build !linux

package proctree

// IsKeeper reports whether this process was started as a primary's keeper:
// never outside Linux, where no primary runs.
func IsKeeper() bool { return false }

// RunKeeper does nothing outside Linux.
func RunKeeper() error { return nil }
