package control_test

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
	"github.com/herd-cluster/herd/internal/logs"
)

func TestClient(t *testing.T) {
	sink := newSink(t)
	fake := controltest.New(2, 1, 4)
	fake.AutoRestart = true
	s := serve(t, control.Config{Name: "c", Logs: sink, Port: 8080}, fake)
	c := s.client
	ctx := context.Background()

	if doc, err := c.Stats(ctx); err != nil || doc.Cluster.Workers != 2 {
		t.Fatalf("Stats = %+v, %v", doc, err)
	}
	if err := c.Restart(ctx, 1); err != nil {
		t.Errorf("Restart: %v", err)
	}
	if err := c.RestartWait(ctx, -1); err != nil {
		t.Errorf("RestartWait: %v", err)
	}
	if err := c.Scale(ctx, 3); err != nil {
		t.Errorf("Scale: %v", err)
	}
	var ae *control.APIError
	if err := c.Scale(ctx, 9); !errors.As(err, &ae) || ae.Code != 422 || !strings.Contains(ae.Message, "max-workers 4") {
		t.Errorf("Scale(9) = %v; want a 422 APIError", err)
	}
	if err := c.Signal(ctx, "HUP", 2); err != nil {
		t.Errorf("Signal: %v", err)
	}
	if err := c.SetECV(ctx, "", false); err != nil {
		t.Errorf("SetECV: %v", err)
	}
	if code, body, err := c.ECV(ctx, ""); err != nil || code != 400 || !strings.HasPrefix(body, "status=DISABLED") {
		t.Errorf("ECV = %d %q %v", code, body, err)
	}
	if err := c.SetECV(ctx, "", true); err != nil {
		t.Errorf("SetECV: %v", err)
	}
	if code, body, err := c.ECV(ctx, "/ecv"); err != nil || code != 200 || !strings.HasPrefix(body, "status=AVAILABLE") {
		t.Errorf("ECV = %d %q %v", code, body, err)
	}
	capture(t, sink, 1, logs.Stdout, "one\ntwo\n")
	var got []string
	err := c.Logs(ctx, control.LogsQuery{Slot: 1, Lines: 10}, func(l control.LogLine) error {
		got = append(got, l.Text)
		return nil
	})
	if err != nil || strings.Join(got, ",") != "one,two" {
		t.Errorf("Logs = %q, %v", got, err)
	}
	if err := c.Stop(ctx, 3*time.Second); err != nil {
		t.Errorf("Stop: %v", err)
	}
	want := "restart 1,restart -1,scale 3,scale 9,signal SIGHUP 2,stop 3s"
	if calls := strings.Join(fake.Calls(), ","); calls != want {
		t.Errorf("calls %q; want %q", calls, want)
	}
}

// TestClientEvents follows events until the stream ends with the server.
func TestClientEvents(t *testing.T) {
	fake := controltest.New(1, 1, 4)
	ctx, cancel := context.WithCancel(context.Background())
	sock := filepath.Join(t.TempDir(), "c.sock")
	srv, err := control.New(control.Config{Socket: sock}, fake)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	c, _ := control.NewClient(control.Target{Socket: sock})
	defer c.Close()
	got := make(chan error, 1)
	var types []string
	go func() {
		got <- c.Events(context.Background(), func() { fake.Scale(ctx, 2) }, func(e control.Event) error {
			types = append(types, e.Type)
			if e.Type == "scaled" {
				cancel() // the primary stops: the stream must end
			}
			return nil
		})
	}()
	if err := <-got; !errors.Is(err, io.EOF) {
		t.Errorf("Events at server stop = %v; want io.EOF", err)
	}
	if err := <-served; err != nil {
		t.Error(err)
	}
	if strings.Join(types, ",") != "scaled" {
		t.Errorf("events %q", types)
	}
}

func TestClientNoPrimary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sock")
	c, _ := control.NewClient(control.Target{Socket: missing})
	defer c.Close()
	_, err := c.Stats(context.Background())
	var np *control.NoPrimaryError
	if !errors.As(err, &np) || !errors.Is(err, syscall.ENOENT) || err.Error() != "no herd primary is running at "+missing {
		t.Errorf("Stats on a missing socket = %v", err)
	}
	tc, _ := control.NewClient(control.Target{Addr: "127.0.0.1:1"})
	defer tc.Close()
	if _, err := tc.Stats(context.Background()); !errors.As(err, &np) {
		t.Errorf("Stats on a closed port = %v; want NoPrimaryError", err)
	}
	if _, err := control.NewClient(control.Target{}); err == nil {
		t.Error("NewClient without a target succeeded")
	}
}
