package ipc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// headerLen is the size of the length prefix of every frame.
const headerLen = 4

// WriteFrame writes m to w as one frame: the body's length as 4 bytes big
// endian, then m as a JSON object. It refuses a Payload that is not valid
// JSON and a body larger than MaxFrame, writing nothing.
func WriteFrame(w io.Writer, m *Message) error {
	b, err := appendFrame(nil, m)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("ipc: write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one frame from r. It returns io.EOF when r ends cleanly
// before a frame, io.ErrUnexpectedEOF when it ends inside one, an error
// matching ErrFrameTooLarge when the announced length exceeds MaxFrame
// (the body is not read), and a *MalformedError when the body is not a JSON
// object with a non-empty "t" field. ReadFrame reads exactly one frame's
// bytes from r.
func ReadFrame(r io.Reader) (*Message, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n, err := frameLen(hdr[:])
	if err != nil {
		return nil, err
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decode(body, 0)
}

// frameLen checks the length in a frame header.
func frameLen(hdr []byte) (int, error) {
	n := binary.BigEndian.Uint32(hdr)
	if n > MaxFrame {
		return 0, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxFrame)
	}
	if n == 0 {
		return 0, &MalformedError{Err: errors.New("empty frame")}
	}
	return int(n), nil
}

// decode parses a frame body, with at most maxGauges gauges when it is not
// 0. The Message does not retain body.
func decode(body []byte, maxGauges int) (*Message, error) {
	m, err := decodeMessage(body, maxGauges)
	if errors.Is(err, ErrLimit) {
		return nil, err
	}
	if err != nil {
		return nil, &MalformedError{Err: err}
	}
	if m.T == "" {
		return nil, &MalformedError{Err: errors.New(`missing "t"`)}
	}
	return m, nil
}

// frameReader reads frames from a buffered stream, decoding small frames in
// place in the buffer.
type frameReader struct {
	br      *bufio.Reader
	scratch []byte
	// maxGauges bounds the gauges of a frame; 0: no bound.
	maxGauges int
}

// readBuffer is the size of a frameReader's buffer; smaller frames are
// decoded without a copy.
const readBuffer = 64 << 10

// maxScratch is the largest buffer a frameReader keeps for frames larger
// than readBuffer; larger frames get a buffer of their own, dropped after
// them, so that one large frame does not leave a connection holding
// MaxFrame bytes.
const maxScratch = 256 << 10

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{br: bufio.NewReaderSize(r, readBuffer)}
}

// next reads one frame, with ReadFrame's errors.
func (fr *frameReader) next() (*Message, error) {
	hdr, err := fr.br.Peek(headerLen)
	if err != nil {
		if len(hdr) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	n, err := frameLen(hdr)
	if err != nil {
		return nil, err
	}
	_, _ = fr.br.Discard(headerLen)
	if n <= fr.br.Size() {
		body, err := fr.br.Peek(n)
		if err != nil {
			return nil, unexpected(err)
		}
		m, err := decode(body, fr.maxGauges)
		_, _ = fr.br.Discard(n)
		return m, err
	}
	body := fr.scratch
	switch {
	case n > maxScratch: // rare: not worth keeping a buffer this large
		body = make([]byte, n)
	case cap(body) < n:
		fr.scratch = make([]byte, maxScratch)
		body = fr.scratch
	}
	body = body[:n]
	if _, err := io.ReadFull(fr.br, body); err != nil {
		return nil, unexpected(err)
	}
	return decode(body, fr.maxGauges)
}

// unexpected turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// bufPool recycles the buffers frames are encoded into.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooled is the largest buffer returned to bufPool.
const maxPooled = 64 << 10

// getBuf returns an empty buffer from the pool.
func getBuf() *[]byte {
	b := bufPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// putBuf returns a buffer to the pool unless it grew too large.
func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		bufPool.Put(b)
	}
}
