package logs

import (
	"encoding/json"
	"strconv"
	"time"
)

// appendText appends "[<slot>] <text>\n".
func appendText(dst []byte, slot int, text []byte) []byte {
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(slot), 10)
	dst = append(dst, "] "...)
	dst = append(dst, text...)
	return append(dst, '\n')
}

// appendJSON appends one JSON object and a newline; ts is the time already
// formatted as RFC 3339 with nanoseconds.
func appendJSON(dst, ts []byte, slot, pid int, stream Stream, text []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = append(dst, ts...)
	dst = append(dst, `","slot":`...)
	dst = strconv.AppendInt(dst, int64(slot), 10)
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(pid), 10)
	dst = append(dst, `,"stream":"`...)
	dst = append(dst, stream.String()...)
	dst = append(dst, `","msg":`...)
	dst = appendJSONString(dst, text)
	return append(dst, "}\n"...)
}

// appendNotice appends the drop notice in the sink's format. In JSON it has
// no slot or pid: it comes from herd, not from a worker.
func appendNotice(dst []byte, asJSON bool, n uint64) []byte {
	msg := "herd: dropped " + strconv.FormatUint(n, 10) + " lines of worker output"
	if !asJSON {
		dst = append(dst, msg...)
		return append(dst, '\n')
	}
	dst = append(dst, `{"time":"`...)
	dst = time.Now().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","stream":"stderr","msg":`...)
	dst = appendJSONString(dst, []byte(msg))
	return append(dst, "}\n"...)
}

// appendJSONString appends s as a JSON string. Plain printable ASCII is
// copied as is; anything else is escaped by encoding/json, so control
// characters, HTML characters and invalid UTF-8 come out exactly as
// encoding/json writes them.
func appendJSONString(dst, s []byte) []byte {
	if isPlain(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	q, err := json.Marshal(string(s))
	if err != nil { // cannot happen for a string
		return append(dst, `""`...)
	}
	return append(dst, q...)
}

// isPlain reports whether s needs no escaping in JSON (including the HTML
// escaping encoding/json applies).
func isPlain(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
