package ipc

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawHello is a valid hello frame.
var rawHello = frame(`{"t":"hello","v":1,"pid":1,"lang":"raw"}`)

// readAll reads the frames the primary sends until it closes the socket.
func readAll(t *testing.T, w *os.File) []*Message {
	t.Helper()
	fr := newFrameReader(w)
	var ms []*Message
	for {
		m, err := fr.next()
		if err != nil {
			return ms
		}
		ms = append(ms, m)
	}
}

func TestConnRefusesBadInput(t *testing.T) {
	tests := []struct {
		name  string
		input []byte
		want  error // nil: *MalformedError
	}{
		{"too-large", binary32(MaxFrame + 1), ErrFrameTooLarge},
		{"not-json", frame("{nope"), nil},
		{"not-object", frame(`"hello"`), nil},
		{"missing-t", frame(`{"v":1}`), nil},
		{"empty-frame", frame(""), nil},
		{"hello-then-garbage", append(append([]byte{}, rawHello...), frame(`{"id":1,"t":`)...), nil},
		{"hello-then-too-large", append(append([]byte{}, rawHello...), binary32(1<<31)...), ErrFrameTooLarge},
		{"not-hello-first", frame(`{"t":"delegate","id":1,"type":"echo"}`), ErrProtocol},
		{"second-hello", append(append([]byte{}, rawHello...), rawHello...), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newTestHandler()
			conn, w := serve(t, h, ConnOptions{})
			if _, err := w.Write(tt.input); err != nil {
				t.Fatal(err)
			}
			ms := readAll(t, w) // returns when the primary closes
			waitDone(t, conn.Done())
			err := conn.Err()
			var malformed *MalformedError
			if tt.want == nil && !errors.As(err, &malformed) || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Err() = %v; want %v", err, tt.want)
			}
			if n := h.calls.Load(); n != 0 {
				t.Errorf("handler called %d times; want 0", n)
			}
			if len(ms) == 0 || ms[len(ms)-1].T != MsgError || ms[len(ms)-1].Code != CodeProtocol {
				t.Errorf("primary sent %+v; want an error frame with code %s last", ms, CodeProtocol)
			}
		})
	}
}

func binary32(n uint32) []byte {
	return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

func TestVersionMismatch(t *testing.T) {
	conn, w := serve(t, newTestHandler(), ConnOptions{})
	_, err := NewClient(ctxT(t), w, 0, 1, withVersion(2))
	if !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("NewClient: got %v; want ErrUnsupportedVersion", err)
	}
	const want = "protocol version 2 not supported: this primary speaks 1"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("NewClient: got %q; want it to contain %q", err, want)
	}
	waitDone(t, conn.Done())
	if err := conn.Err(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("Conn.Err() = %v; want ErrUnsupportedVersion", err)
	}
}

func TestHelloTimeout(t *testing.T) {
	conn, _ := serve(t, newTestHandler(), ConnOptions{HelloTimeout: 50 * time.Millisecond})
	waitDone(t, conn.Done())
	if err := conn.Err(); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "no hello") {
		t.Errorf("Err() = %v; want a protocol error about the hello", err)
	}
}

func TestDialTimeout(t *testing.T) {
	p, w, err := Pair() // nobody serves the primary's end
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := NewClient(ctx, w, 0, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("NewClient: got %v; want context.DeadlineExceeded", err)
	}
}

func TestWorkerCloses(t *testing.T) {
	t.Run("after-hello", func(t *testing.T) {
		conn, cl := connect(t, newTestHandler(), ConnOptions{})
		if lang, ok := conn.Hello(); !ok || lang != "go" {
			t.Errorf("Hello() = %q, %v; want go, true", lang, ok)
		}
		if err := cl.Notify("bye", nil); err != nil {
			t.Fatal(err)
		}
		_ = cl.Close()
		waitDone(t, conn.Done())
		if err := conn.Err(); !errors.Is(err, io.EOF) {
			t.Errorf("Err() = %v; want io.EOF", err)
		}
	})
	t.Run("before-hello", func(t *testing.T) {
		conn, w := serve(t, newTestHandler(), ConnOptions{})
		_ = w.Close()
		waitDone(t, conn.Done())
		if err := conn.Err(); !errors.Is(err, io.EOF) {
			t.Errorf("Err() = %v; want io.EOF", err)
		}
	})
}

func TestPrimaryCloses(t *testing.T) {
	h := newTestHandler()
	conn, cl := connect(t, h, ConnOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := cl.Delegate(context.Background(), "block", nil)
		errc <- err
	}()
	for h.calls.Load() == 0 { // wait until the handler runs
		if _, err := cl.Delegate(ctxT(t), "echo", 1); err != nil {
			t.Fatal(err)
		}
	}
	_ = conn.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Delegate: got %v; want ErrClosed", err)
	}
	waitDone(t, cl.Done())
	waitDone(t, conn.Done())
	if err := conn.Err(); !errors.Is(err, ErrClosed) {
		t.Errorf("Conn.Err() = %v; want ErrClosed", err)
	}
	if _, err := cl.Delegate(ctxT(t), "echo", 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Delegate after close: got %v; want ErrClosed", err)
	}
}

// TestStuckWorker: a worker that never reads cannot block Publish, Send or
// the Handler; its connection is closed as stuck.
func TestStuckWorker(t *testing.T) {
	big := json.RawMessage(`"` + bigString + `"`)
	t.Run("queue-full", func(t *testing.T) {
		conn, w := serve(t, newTestHandler(), ConnOptions{QueueBytes: MaxFrame})
		if _, err := w.Write(rawHello); err != nil {
			t.Fatal(err)
		}
		waitHello(t, conn)
		for i := 0; conn.Publish("", big); i++ {
			if i > 1000 {
				t.Fatal("Publish kept succeeding")
			}
		}
		waitDone(t, conn.Done())
		if err := conn.Err(); !errors.Is(err, ErrStuck) {
			t.Errorf("Err() = %v; want ErrStuck", err)
		}
	})
	t.Run("write-timeout", func(t *testing.T) {
		conn, w := serve(t, newTestHandler(), ConnOptions{QueueBytes: 1 << 30, WriteTimeout: 50 * time.Millisecond})
		if _, err := w.Write(rawHello); err != nil {
			t.Fatal(err)
		}
		waitHello(t, conn)
		for range 40 { // 10 MiB: more than the socket buffers hold
			if !conn.Publish("", big) {
				break
			}
		}
		waitDone(t, conn.Done())
		if err := conn.Err(); !errors.Is(err, ErrStuck) {
			t.Errorf("Err() = %v; want ErrStuck", err)
		}
	})
	t.Run("replies", func(t *testing.T) {
		h := newTestHandler()
		conn, w := serve(t, h, ConnOptions{QueueBytes: MaxFrame})
		in := append([]byte{}, rawHello...)
		for i := range 16 {
			in = append(in, frame(`{"t":"delegate","type":"big","id":`+strconv.Itoa(i+1)+`}`)...)
		}
		if _, err := w.Write(in); err != nil {
			t.Fatal(err)
		}
		waitDone(t, conn.Done()) // every handler call has returned
		if err := conn.Err(); !errors.Is(err, ErrStuck) {
			t.Errorf("Err() = %v; want ErrStuck", err)
		}
	})
}

// waitHello waits until conn has accepted a hello.
func waitHello(t *testing.T, conn *Conn) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := conn.Hello(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no hello after 10s")
		}
		select {
		case <-conn.Done():
			t.Fatalf("connection ended: %v", conn.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// TestUnknownMessage: a message of an unknown kind is ignored.
func TestUnknownMessage(t *testing.T) {
	conn, w := serve(t, newTestHandler(), ConnOptions{})
	in := append(append([]byte{}, rawHello...), frame(`{"t":"from-the-future","x":[1]}`)...)
	in = append(in, frame(`{"t":"delegate","id":5,"type":"echo","payload":"ok"}`)...)
	if _, err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(w)
	for _, want := range []string{MsgWelcome, MsgReply} {
		m, err := fr.next()
		if err != nil || m.T != want {
			t.Fatalf("got %+v, %v; want %s", m, err, want)
		}
	}
	if conn.Err() != nil {
		t.Errorf("Err() = %v; want nil", conn.Err())
	}
}

// TestServeNotSocket: Serve on a file that is not a socket returns a
// closed Conn.
func TestServeNotSocket(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	conn := Serve(f, 0, 0, newTestHandler(), ConnOptions{})
	waitDone(t, conn.Done())
	if conn.Err() == nil || conn.Publish("", nil) {
		t.Errorf("Err() = %v; want an error, and Publish false", conn.Err())
	}
}

// TestSendBeforeHello: messages sent before the hello follow the welcome.
func TestSendBeforeHello(t *testing.T) {
	conn, w := serve(t, newTestHandler(), ConnOptions{})
	if err := conn.Rebalance(1, 2, 3); err != nil {
		t.Fatal(err)
	}
	if !conn.Publish("", json.RawMessage(`"early"`)) {
		t.Fatal("broadcast before hello: false")
	}
	if _, err := w.Write(rawHello); err != nil {
		t.Fatal(err)
	}
	fr := newFrameReader(w)
	for _, want := range []string{MsgWelcome, MsgRebalance, MsgPublish} {
		if m, err := fr.next(); err != nil || m.T != want {
			t.Fatalf("got %+v, %v; want %s", m, err, want)
		}
	}
}
