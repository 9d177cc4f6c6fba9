package ipc

import (
	"errors"
	"fmt"
	"strconv"
)

// maxDepth bounds the nesting of a payload, as encoding/json does.
const maxDepth = 10000

// decoder parses a frame body into a Message without reflection. It accepts
// exactly the JSON that encoding/json accepts, decodes like json.Unmarshal
// into a Message (null leaves a field zero, invalid UTF-8 becomes U+FFFD,
// the last of repeated keys wins), except that keys match field names
// exactly, not case-insensitively.
type decoder struct {
	b []byte
	i int
	// maxGauges, when not 0, stops the decoding of more gauges than that
	// with an error matching ErrLimit, before they are all in memory.
	maxGauges int
}

var errSyntax = errors.New("invalid json")

// decodeMessage parses body, a JSON object, into a Message, refusing more
// than maxGauges gauges when maxGauges is not 0.
func decodeMessage(body []byte, maxGauges int) (*Message, error) {
	d := decoder{b: body, maxGauges: maxGauges}
	m := new(Message)
	d.ws()
	if !d.consume('{') {
		return nil, errors.New("not a json object")
	}
	d.ws()
	if !d.consume('}') {
		for {
			d.ws()
			key, err := d.strBytes()
			if err != nil {
				return nil, err
			}
			d.ws()
			if !d.consume(':') {
				return nil, d.syntax("':' after object key")
			}
			d.ws()
			if err := d.field(m, key); err != nil {
				return nil, err
			}
			d.ws()
			if d.consume(',') {
				continue
			}
			if d.consume('}') {
				break
			}
			return nil, d.syntax("',' or '}' in object")
		}
	}
	d.ws()
	if d.i != len(d.b) {
		return nil, d.syntax("end of input")
	}
	return m, nil
}

// validJSON reports whether b is one JSON value, like json.Valid.
func validJSON(b []byte) bool {
	d := decoder{b: b}
	d.ws()
	if d.skip(0) != nil {
		return false
	}
	d.ws()
	return d.i == len(b)
}

// field decodes the value of key into m.
func (d *decoder) field(m *Message, key []byte) error {
	var err error
	switch string(key) {
	case "t":
		err = d.kindField(&m.T)
	case "type":
		err = d.strField(&m.Type)
	case "topic":
		err = d.strField(&m.Topic)
	case "code":
		err = d.strField(&m.Code)
	case "error":
		err = d.strField(&m.Error)
	case "lang":
		err = d.strField(&m.Lang)
	case "reason":
		err = d.strField(&m.Reason)
	case "id":
		err = d.uintField(&m.ID)
	case "requests":
		err = d.uintField(&m.Requests)
	case "timeout_ms":
		err = d.intField(&m.TimeoutMS)
	case "heartbeat_ms":
		err = d.intField(&m.HeartbeatMS)
	case "v", "pid", "slot", "gen", "index", "total", "epoch":
		p := intFieldOf(m, string(key))
		v := int64(*p)
		err = d.intField(&v)
		*p = int(v)
	case "gauges":
		err = d.gauges(m)
	case "payload":
		start := d.i
		if err = d.skip(0); err == nil {
			m.Payload = append([]byte(nil), d.b[start:d.i]...)
		}
	default:
		err = d.skip(0)
	}
	if err != nil && !errors.Is(err, ErrLimit) {
		return fmt.Errorf("field %q: %w", key, err)
	}
	return err
}

// intFieldOf returns the int field of m named key.
func intFieldOf(m *Message, key string) *int {
	switch key {
	case "v":
		return &m.V
	case "pid":
		return &m.PID
	case "slot":
		return &m.Slot
	case "gen":
		return &m.Gen
	case "index":
		return &m.Index
	case "total":
		return &m.Total
	}
	return &m.Epoch
}

// gauges decodes an object of numbers (or null).
func (d *decoder) gauges(m *Message) error {
	if d.null() {
		return nil
	}
	if !d.consume('{') {
		return errors.New("not an object")
	}
	if m.Gauges == nil {
		m.Gauges = make(map[string]float64)
	}
	d.ws()
	if d.consume('}') {
		return nil
	}
	for {
		d.ws()
		key, err := d.str()
		if err != nil {
			return err
		}
		d.ws()
		if !d.consume(':') {
			return d.syntax("':' after object key")
		}
		d.ws()
		var v float64 // null stores 0, as encoding/json does
		if !d.null() {
			if v, err = d.float(); err != nil {
				return err
			}
		}
		m.Gauges[key] = v
		if d.maxGauges > 0 && len(m.Gauges) > d.maxGauges {
			return limitError("more than %d gauges", d.maxGauges)
		}
		d.ws()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			return nil
		}
		return d.syntax("',' or '}' in object")
	}
}

// kindField decodes the "t" field, without allocating for known kinds.
func (d *decoder) kindField(p *string) error {
	if d.null() {
		return nil
	}
	b, err := d.strBytes()
	if err != nil {
		return err
	}
	for _, k := range kinds {
		if string(b) == k {
			*p = k
			return nil
		}
	}
	*p = string(b)
	return nil
}

// kinds are the known values of "t", most frequent first.
var kinds = [...]string{MsgDelegate, MsgReply, MsgNotify, MsgPublish, MsgHeartbeat, MsgStats, MsgStatus, MsgECV,
	MsgSubscribe, MsgUnsubscribe, MsgRecycle, MsgRebalance, MsgPrepare, MsgPrepared, MsgHello, MsgWelcome, MsgError}

func (d *decoder) strField(p *string) error {
	if d.null() {
		return nil
	}
	s, err := d.str()
	*p = s
	return err
}

func (d *decoder) uintField(p *uint64) error {
	if d.null() {
		return nil
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	v, err := strconv.ParseUint(string(lit), 10, 64)
	if err != nil {
		return fmt.Errorf("number %s is not an unsigned integer", lit)
	}
	*p = v
	return nil
}

func (d *decoder) intField(p *int64) error {
	if d.null() {
		return nil
	}
	lit, err := d.number()
	if err != nil {
		return err
	}
	v, err := strconv.ParseInt(string(lit), 10, 64)
	if err != nil {
		return fmt.Errorf("number %s is not an integer", lit)
	}
	*p = v
	return nil
}

func (d *decoder) float() (float64, error) {
	lit, err := d.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return 0, fmt.Errorf("number %s out of range", lit)
	}
	return v, nil
}
