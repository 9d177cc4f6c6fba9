package ipc

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
)

// frame returns body with its length prefix.
func frame(body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := []*Message{
		{T: MsgHello, V: 1, PID: 42, Slot: 3, Gen: 7, Lang: "go"},
		{T: MsgWelcome, V: 1, HeartbeatMS: 1000},
		{T: MsgHeartbeat, Requests: math.MaxUint64, Gauges: map[string]float64{"queue": 3.5, "neg": -1e300, "zero": 0}},
		{T: MsgDelegate, ID: 1<<64 - 1, Type: "config", Payload: json.RawMessage(`{"key":[1,2,"three"]}`), TimeoutMS: 250},
		{T: MsgReply, ID: 9, Code: CodeHandlerError, Error: "quote \" backslash \\ newline \n nul \x00 \u2028 é 🐑"},
		{T: MsgPublish, Topic: "news/\t", Payload: json.RawMessage(`"hi"`)},
		{T: MsgRebalance, Index: -1, Total: 8, Epoch: 1234567890123},
		{T: MsgRecycle, Reason: "memory"},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := WriteFrame(&buf, m); err != nil {
			t.Fatalf("WriteFrame(%+v): %v", m, err)
		}
	}
	for _, want := range msgs {
		got, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("ReadFrame: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v; want %+v", got, want)
		}
	}
	if _, err := ReadFrame(&buf); err != io.EOF {
		t.Errorf("ReadFrame at end: got %v; want io.EOF", err)
	}
}

// TestEncoderMatchesJSON checks the hand-written encoder against
// encoding/json: both must decode to the same value.
func TestEncoderMatchesJSON(t *testing.T) {
	m := &Message{T: "x\x7f\xff", Type: "bad utf-8 \xc3", Topic: "<&>", Gauges: map[string]float64{"nan": math.NaN(), "ok": 1e21, "tiny": 5e-324}}
	b, err := appendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(b[headerLen:], &got); err != nil {
		t.Fatalf("hand-encoded frame is not json: %v: %s", err, b[headerLen:])
	}
	delete(m.Gauges, "nan") // encoding/json refuses NaN; the encoder drops it
	std, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(std, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
}

func TestReadFrameErrors(t *testing.T) {
	tooLarge := binary.BigEndian.AppendUint32(nil, MaxFrame+1)
	tests := []struct {
		name  string
		input []byte
		want  error // matched with errors.Is, or nil for *MalformedError
	}{
		{"too-large", tooLarge, ErrFrameTooLarge},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
		{"empty", frame(""), nil},
		{"not-json", frame("hello"), nil},
		{"array", frame(`[{"t":"hello"}]`), nil},
		{"null", frame(`null`), nil},
		{"missing-t", frame(`{"id":1}`), nil},
		{"empty-t", frame(`{"t":""}`), nil},
		{"t-not-string", frame(`{"t":1}`), nil},
		{"bad-field-type", frame(`{"t":"reply","id":"one"}`), nil},
		{"trailing", frame(`{"t":"reply"} {}`), nil},
		{"truncated-header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"truncated-body", frame(`{"t":"reply"}`)[:8], io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, read := range []func([]byte) error{
				func(b []byte) error { _, err := ReadFrame(bytes.NewReader(b)); return err },
				func(b []byte) error { _, err := newFrameReader(bytes.NewReader(b)).next(); return err },
			} {
				err := read(tt.input)
				var malformed *MalformedError
				switch {
				case tt.want == nil && !errors.As(err, &malformed):
					t.Errorf("got %v; want *MalformedError", err)
				case tt.want != nil && !errors.Is(err, tt.want):
					t.Errorf("got %v; want %v", err, tt.want)
				}
			}
		})
	}
}

func TestWriteFrameRefuses(t *testing.T) {
	tests := map[string]*Message{
		"no-t":        {ID: 1},
		"bad-payload": {T: MsgNotify, Payload: json.RawMessage(`{"a":`)},
		"too-large":   {T: MsgNotify, Payload: json.RawMessage(`"` + strings.Repeat("x", MaxFrame) + `"`)},
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteFrame(&buf, m); err == nil {
				t.Error("WriteFrame succeeded; want an error")
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes; want 0", buf.Len())
			}
		})
	}
}

// TestLargeFrame reads a frame larger than the reader's buffer.
func TestLargeFrame(t *testing.T) {
	m := &Message{T: MsgPublish, Payload: json.RawMessage(`"` + strings.Repeat("y", MaxFrame-40) + `"`)}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := newFrameReader(&buf).next()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Payload, m.Payload) {
		t.Error("payload changed")
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{
		`{"t":"hello","v":1,"pid":1,"slot":0,"gen":1,"lang":"go"}`,
		`{"t":"delegate","id":7,"type":"x","payload":{"a":[1,null,true]},"timeout_ms":10}`,
		`{"t":"heartbeat","requests":5,"gauges":{"a":1.5}}`,
		`{"t":"reply","id":1,"error":"e","code":"no_handler"}`,
		`{"t":1}`, `[]`, `{"t":"x","gauges":{"a":"b"}}`, "{\"t\":\"\xff\"}",
	} {
		f.Add(frame(s))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadFrame(bytes.NewReader(b))
		m2, err2 := newFrameReader(bytes.NewReader(b)).next()
		if (err == nil) != (err2 == nil) {
			t.Fatalf("ReadFrame: %v; frameReader: %v", err, err2)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("ReadFrame: %+v; frameReader: %+v", m, m2)
		}
		// What was accepted re-encodes, and decodes to the same message.
		var buf bytes.Buffer
		if err := WriteFrame(&buf, m); err != nil {
			if errors.Is(err, ErrFrameTooLarge) {
				return
			}
			t.Fatalf("WriteFrame(%+v): %v", m, err)
		}
		again, err := ReadFrame(&buf)
		if err != nil {
			t.Fatalf("ReadFrame of re-encoded %+v: %v", m, err)
		}
		normalize(m)
		normalize(again)
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("re-encoded: got %+v; want %+v", again, m)
		}
	})
}

// normalize makes decoded messages comparable: payloads compacted, NaN-free
// gauges, empty maps nil.
func normalize(m *Message) {
	if len(m.Payload) > 0 {
		var buf bytes.Buffer
		_ = json.Compact(&buf, m.Payload)
		m.Payload = buf.Bytes()
	}
	if len(m.Gauges) == 0 {
		m.Gauges = nil
	}
}

// FuzzDecode checks the frame decoder against encoding/json: both accept
// the same bodies and decode them to the same Message, except for keys that
// match a field only case-insensitively, which the decoder ignores.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"t":"hello","v":1,"pid":1,"slot":0,"gen":1,"lang":"go"}`,
		`{"t":"delegate","id":7,"type":"x","payload":{"a":[1,null,true,false,-0.5e+3,"\u00e9\ud83d\udc11"]},"timeout_ms":10}`,
		`{"t":"heartbeat","requests":5,"gauges":{"a":1.5,"b":null,"a":2}}`,
		` {"t" : "reply" , "id":1,"error":"e\n\"\\\/\b\f\r\t\u0000\ud800x\udc00","code":null} `,
		`{"t":"x","v":1,"v":null,"v":0,"epoch":-9223372036854775808,"id":18446744073709551615}`,
		`{"t":"x","id":-1}`, `{"t":"x","v":1.0}`, `{"t":"x","v":1e2}`, `{"t":"x","gauges":{"a":1e400}}`,
		`{"t":"x","payload":[[[[]]]],"extra":{"k":[{}]}}`, `{"T":"x"}`, `{"t":"\xff\xfe"}`, `{"t":"x",}`,
		`{"t":"x"}x`, `{"t":"x","payload":01}`, `{"t":"x","payload":"\x01"}`, `{"t":"x","payload":tru}`,
	} {
		f.Add([]byte(s))
	}
	known := []string{"t", "v", "id", "type", "topic", "code", "error", "timeout_ms", "pid", "slot", "gen",
		"lang", "heartbeat_ms", "requests", "gauges", "reason", "index", "total", "epoch", "payload"}
	f.Fuzz(func(t *testing.T, b []byte) {
		var keys map[string]json.RawMessage
		if json.Unmarshal(b, &keys) == nil {
			for k := range keys {
				for _, name := range known {
					if k != name && strings.EqualFold(k, name) {
						return
					}
				}
			}
		}
		want := new(Message)
		wantErr := json.Unmarshal(b, want)
		if wantErr == nil && !bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{")) {
			wantErr = errors.New("not an object")
		}
		got, err := decodeMessage(b, 0)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("decodeMessage(%q): %v; encoding/json: %v", b, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeMessage(%q) = %+v; encoding/json: %+v", b, got, want)
		}
	})
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2,{"b":null}]}`, ` "x\u00e9" `, `01`, `[1,]`, `-`, `1e`, `{"a" 1}`, "\"\x01\"", `tru`, ``, `[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v; json.Valid: %v", b, got, want)
		}
	})
}
