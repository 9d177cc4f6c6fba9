package ipc

import (
	"io"
	"syscall"
	"testing"
	"time"
)

// FuzzConn feeds arbitrary bytes to a primary-side Conn, as a worker would
// write them, then ends the stream: the Conn must not panic, must end with
// an error and must release all its goroutines.
func FuzzConn(f *testing.F) {
	hello := string(rawHello)
	for _, s := range []string{
		"",
		hello,
		hello + string(frame(`{"t":"delegate","id":1,"type":"echo","payload":[1,2]}`)),
		hello + string(frame(`{"t":"delegate","id":2,"type":"block","timeout_ms":1}`)),
		hello + string(frame(`{"t":"delegate","id":3,"type":"stall"}`)),
		hello + string(frame(`{"t":"notify","type":"log","payload":"x"}`)),
		hello + string(frame(`{"t":"subscribe","topic":"a"}`)) + string(frame(`{"t":"unsubscribe","topic":"a"}`)),
		hello + string(frame(`{"t":"heartbeat","requests":3,"gauges":{"a":1}}`)),
		hello + string(frame(`{"t":"stats","id":4}`)) + string(frame(`{"t":"ecv","id":5}`)),
		hello + string(frame(`{"t":"prepared","epoch":1,"error":"x"}`)) + string(frame(`{"t":"recycle"}`)),
		hello + string(frame(`{"t":"mystery"}`)) + string(frame(`{"t":"status","id":6,"timeout_ms":5}`)),
		hello + "\x00\x00\x00\x03abc",
		hello + "\xff\xff\xff\xff",
		string(frame(`{"t":"hello","v":2}`)),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h := newTestHandler()
		close(h.release)
		conn, w := serve(t, h, ConnOptions{HelloTimeout: time.Second, Logger: discardLogger()})
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			_, _ = io.Copy(io.Discard, w)
		}()
		if len(b) > 0 {
			_, _ = w.Write(b)
		}
		_ = syscall.Shutdown(int(w.Fd()), syscall.SHUT_WR)
		waitDone(t, conn.Done())
		<-drained
		if conn.Err() == nil {
			t.Error("Err() = nil after the worker's stream ended")
		}
	})
}
