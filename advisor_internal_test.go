package herd

import (
	"slices"
	"testing"
)

// TestNamedPorts checks which bind failures of real servers name herd's
// port, another port, or none.
func TestNamedPorts(t *testing.T) {
	a := &advisor{ports: []int{8080}}
	for _, tc := range []struct {
		line string
		want []int
	}{
		{`nginx: [emerg] bind() to 0.0.0.0:8080 failed (98: Address already in use)`, []int{8080}},
		{`Error: listen EADDRINUSE: address already in use :::8080`, []int{8080}},
		{`listen tcp 127.0.0.1:8080: bind: address already in use`, []int{8080}},
		{`Address already in use - bind(2) for "0.0.0.0" port 8080 (Errno::EADDRINUSE)`, []int{8080}},
		{`ERROR:    [Errno 98] error while attempting to bind on address ('0.0.0.0', 8080): address already in use`, []int{8080}},
		{`OSError: [Errno 98] Address already in use`, []int{8080}},
		{`nginx: [emerg] bind() to 0.0.0.0:9090 failed (98: Address already in use)`, nil},
	} {
		if got := a.namedPorts(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("namedPorts(%q) = %v; want %v", tc.line, got, tc.want)
		}
	}
}
