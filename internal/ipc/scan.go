package ipc

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// The lexical half of the decoder: whitespace, literals, numbers, strings
// and skipping (while validating) any value.

func (d *decoder) syntax(want string) error {
	if d.i >= len(d.b) {
		return fmt.Errorf("%w: unexpected end, want %s", errSyntax, want)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d, want %s", errSyntax, d.b[d.i], d.i, want)
}

// ws skips whitespace.
func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips c if it is next.
func (d *decoder) consume(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// null skips a null literal if it is next.
func (d *decoder) null() bool {
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// literal skips the literal lit, which must be next.
func (d *decoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) || string(d.b[d.i:d.i+len(lit)]) != lit {
		return d.syntax(lit)
	}
	d.i += len(lit)
	return nil
}

// number scans a JSON number and returns its text.
func (d *decoder) number() ([]byte, error) {
	start := d.i
	d.consume('-')
	switch {
	case d.consume('0'):
	case d.digits() == 0:
		return nil, d.syntax("a number")
	}
	if d.consume('.') && d.digits() == 0 {
		return nil, d.syntax("a digit after '.'")
	}
	if d.consume('e') || d.consume('E') {
		if !d.consume('+') {
			d.consume('-')
		}
		if d.digits() == 0 {
			return nil, d.syntax("a digit in the exponent")
		}
	}
	return d.b[start:d.i], nil
}

// digits skips decimal digits and returns how many.
func (d *decoder) digits() int {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i - start
}

// str scans a JSON string and returns its value.
func (d *decoder) str() (string, error) {
	b, err := d.strBytes()
	return string(b), err
}

// strBytes scans a JSON string and returns its value, which aliases the
// input when the string has no escapes and is valid UTF-8.
func (d *decoder) strBytes() ([]byte, error) {
	if !d.consume('"') {
		return nil, d.syntax("a string")
	}
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !utf8.Valid(s) {
				return unquote(s), nil
			}
			return s, nil
		case c == '\\':
			d.i = start
			return d.slowStr()
		case c < 0x20:
			return nil, d.syntax("a string character")
		}
		d.i++
	}
	return nil, d.syntax(`'"'`)
}

// slowStr scans the rest of a string with escapes, from just after its
// opening quote.
func (d *decoder) slowStr() ([]byte, error) {
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			return unquote(s), nil
		case c < 0x20:
			return nil, d.syntax("a string character")
		case c != '\\':
			d.i++
			continue
		}
		d.i++ // the backslash
		if d.i >= len(d.b) {
			break
		}
		switch d.b[d.i] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			d.i++
		case 'u':
			if len(d.b)-d.i < 5 || !isHex4(d.b[d.i+1:d.i+5]) {
				return nil, d.syntax("4 hex digits after \\u")
			}
			d.i += 5
		default:
			return nil, d.syntax("an escape character")
		}
	}
	return nil, d.syntax(`'"'`)
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unquote decodes the escapes of a scanned string body, turning invalid
// UTF-8 and unpaired surrogates into U+FFFD as encoding/json does.
func unquote(s []byte) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			var r rune
			r, i = unescape(s, i)
			out = utf8.AppendRune(out, r)
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			out = utf8.AppendRune(out, r) // RuneError for an invalid byte
			i += size
		}
	}
	return out
}

// unescape decodes the escape at s[i] (already validated) and returns the
// rune and the index after it.
func unescape(s []byte, i int) (rune, int) {
	switch s[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
	default:
		return rune(s[i+1]), i + 2
	}
	r := hex4(s[i+2 : i+6])
	if !utf16.IsSurrogate(r) {
		return r, i + 6
	}
	if i+12 <= len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
		if dec := utf16.DecodeRune(r, hex4(s[i+8:i+12])); dec != utf8.RuneError {
			return dec, i + 12
		}
	}
	return utf8.RuneError, i + 6
}

func hex4(b []byte) rune {
	v, _ := strconv.ParseUint(string(b), 16, 32)
	return rune(v)
}

// skip scans any JSON value, checking its syntax.
func (d *decoder) skip(depth int) error {
	if depth > maxDepth {
		return errors.New("exceeded max depth")
	}
	if d.i >= len(d.b) {
		return d.syntax("a value")
	}
	switch c := d.b[d.i]; {
	case c == '{' || c == '[':
		return d.skipComposite(depth)
	case c == '"':
		return d.rawStr()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	default:
		_, err := d.number()
		return err
	}
}

// skipComposite scans an object or array.
func (d *decoder) skipComposite(depth int) error {
	end := byte(']')
	object := d.b[d.i] == '{'
	if object {
		end = '}'
	}
	d.i++
	d.ws()
	if d.consume(end) {
		return nil
	}
	for {
		d.ws()
		if object {
			if err := d.rawStr(); err != nil {
				return err
			}
			d.ws()
			if !d.consume(':') {
				return d.syntax("':' after object key")
			}
			d.ws()
		}
		if err := d.skip(depth + 1); err != nil {
			return err
		}
		d.ws()
		if d.consume(',') {
			continue
		}
		if d.consume(end) {
			return nil
		}
		return d.syntax("',' or '" + string(end) + "'")
	}
}

// rawStr scans a string without decoding it.
func (d *decoder) rawStr() error {
	if !d.consume('"') {
		return d.syntax("a string")
	}
	i := d.i
	for i < len(d.b) && d.b[i] != '"' && d.b[i] != '\\' && d.b[i] >= 0x20 {
		i++
	}
	if i < len(d.b) && d.b[i] == '"' {
		d.i = i + 1
		return nil
	}
	_, err := d.slowStr()
	return err
}
