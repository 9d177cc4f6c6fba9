package supervisor

// steerableSockets is what Steer and Queued need of the sockets: per-slot
// reuseport sockets that can be steered.
type steerableSockets interface {
	Steer(serving []bool) error
	Queued(slot int) (n int, own bool)
}

var _ steering = (*ExecLauncher)(nil)

// Steer passes on to the sockets which slots should get new connections.
func (l *ExecLauncher) Steer(serving []bool) error {
	if s, ok := l.Sockets.(steerableSockets); ok {
		return s.Steer(serving)
	}
	return nil
}

// Queued returns how many connections wait on slot's own sockets, and
// whether it has any.
func (l *ExecLauncher) Queued(slot int) (int, bool) {
	if s, ok := l.Sockets.(steerableSockets); ok {
		return s.Queued(slot)
	}
	return 0, false
}
