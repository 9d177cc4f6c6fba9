package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// appendFrame appends m as one frame (header and body) to b. It encodes the
// envelope by hand, without reflection: the fields in a fixed order, zero
// values left out, the payload verbatim after checking it is valid JSON.
func appendFrame(b []byte, m *Message) ([]byte, error) {
	if m.T == "" {
		return b, errors.New(`ipc: message without "t"`)
	}
	if len(m.Payload) > 0 && !validJSON(m.Payload) {
		return b, fmt.Errorf("ipc: %s payload is not valid json", m.T)
	}
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, `{"t":`...)
	b = appendString(b, m.T)
	b = appendInt(b, `,"v":`, int64(m.V))
	if m.ID != 0 {
		b = append(b, `,"id":`...)
		b = strconv.AppendUint(b, m.ID, 10)
	}
	b = appendField(b, `,"type":`, m.Type)
	b = appendField(b, `,"topic":`, m.Topic)
	b = appendField(b, `,"code":`, m.Code)
	b = appendField(b, `,"error":`, m.Error)
	b = appendInt(b, `,"timeout_ms":`, m.TimeoutMS)
	b = appendInt(b, `,"pid":`, int64(m.PID))
	b = appendInt(b, `,"slot":`, int64(m.Slot))
	b = appendInt(b, `,"gen":`, int64(m.Gen))
	b = appendField(b, `,"lang":`, m.Lang)
	b = appendInt(b, `,"heartbeat_ms":`, m.HeartbeatMS)
	if m.Requests != 0 {
		b = append(b, `,"requests":`...)
		b = strconv.AppendUint(b, m.Requests, 10)
	}
	b = appendGauges(b, m.Gauges)
	b = appendField(b, `,"reason":`, m.Reason)
	b = appendInt(b, `,"index":`, int64(m.Index))
	b = appendInt(b, `,"total":`, int64(m.Total))
	b = appendInt(b, `,"epoch":`, int64(m.Epoch))
	if len(m.Payload) > 0 {
		b = append(b, `,"payload":`...)
		b = append(b, m.Payload...)
	}
	b = append(b, '}')
	n := len(b) - start - headerLen
	if n > MaxFrame {
		return b[:start], fmt.Errorf("%w: %s message of %d bytes, limit %d", ErrFrameTooLarge, m.T, n, MaxFrame)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(n))
	return b, nil
}

// appendField appends key and s as a JSON string unless s is empty.
func appendField(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendInt appends key and v unless v is zero.
func appendInt(b []byte, key string, v int64) []byte {
	if v == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendGauges appends the gauges object, leaving out NaN and infinities,
// which JSON cannot represent.
func appendGauges(b []byte, g map[string]float64) []byte {
	if len(g) == 0 {
		return b
	}
	b = append(b, `,"gauges":{`...)
	first := true
	for k, v := range g {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped so the text is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendEscape(b, c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendEscape appends the JSON escape of an ASCII byte.
func appendEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
