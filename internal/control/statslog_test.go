package control_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/supervisor"
)

// recordHandler sends every record's text to a channel.
type recordHandler struct{ ch chan string }

func (h recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recordHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h recordHandler) WithGroup(string) slog.Handler            { return h }
func (h recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	select {
	case h.ch <- b.String():
	default:
	}
	return nil
}

func TestLogStats(t *testing.T) {
	fake := controltest.New(3, 1, 4)
	fake.SetStatus(2, supervisor.StatusDisabled)
	h := recordHandler{ch: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		control.LogStats(ctx, fake, slog.New(h), time.Millisecond)
		close(done)
	}()
	var line string
	select {
	case line = <-h.ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no stats line")
	}
	cancel()
	<-done
	for _, want := range []string{"cluster stats", "workers=3", "active=2", "disabled=1", "rss=2.0 MiB", "cpu_percent=3"} {
		if !strings.Contains(line, want) {
			t.Errorf("stats line %q lacks %q", line, want)
		}
	}
	control.LogStats(context.Background(), fake, slog.New(h), 0) // returns at once
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		12 << 20: "12.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := control.FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q; want %q", n, got, want)
		}
	}
}
