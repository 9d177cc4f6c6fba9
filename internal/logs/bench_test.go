package logs

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
)

// lineSource yields n copies of a fixed-length line, like a chatty worker.
type lineSource struct {
	block []byte // whole lines
	left  int    // bytes still to yield
	off   int
}

func newLineSource(n int) *lineSource {
	line := fmt.Sprintf("%-79s\n", "GET /api/v1/items?id=12345 200 1.234ms remote=10.0.0.1:54321")
	block := []byte(strings.Repeat(line, 512))
	return &lineSource{block: block, left: n * len(line)}
}

func (r *lineSource) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.left)], r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= n
	return n, nil
}

// BenchmarkCapture measures lines per second from Capture through to an
// io.Discard writer; one op is one 80-byte line.
func BenchmarkCapture(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		b.Run(format, func(b *testing.B) {
			s := New(Config{Stdout: io.Discard, Format: format})
			defer s.Close()
			b.ReportAllocs()
			b.SetBytes(80)
			b.ResetTimer()
			<-s.Capture(0, 1234, Stdout, newLineSource(b.N))
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if d := s.Dropped(); d != 0 {
				b.Logf("dropped %d lines", d)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
