package logs

import (
	"slices"
	"sync"
)

// ring keeps the last size lines of one slot, both streams interleaved in
// arrival order.
type ring struct {
	mu    sync.Mutex
	size  int
	lines []Line // grows to size, then wraps
	next  int    // once full, index of the oldest line
}

// push adds l, overwriting the oldest line when the ring is full. The caller
// holds r.mu.
func (r *ring) push(l Line) {
	if len(r.lines) < r.size {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next++
	if r.next == r.size {
		r.next = 0
	}
}

// tail returns up to n of the most recent lines whose stream is in streams
// (any stream when streams is empty), oldest first.
func (r *ring) tail(n int, streams []Stream) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := len(r.lines)
	out := make([]Line, 0, min(n, total))
	// Walk from the newest line backwards, then reverse.
	for k := 0; k < total && len(out) < n; k++ {
		i := r.next - 1 - k
		if i < 0 {
			i += total
		}
		l := r.lines[i]
		if len(streams) == 0 || slices.Contains(streams, l.Stream) {
			out = append(out, l)
		}
	}
	slices.Reverse(out)
	return out
}
