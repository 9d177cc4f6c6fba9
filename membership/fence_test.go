package membership_test

import (
	"context"
	"testing"
	"time"

	"github.com/herd-cluster/herd/membership/etcdtest"
)

// TestFencedPut runs the fenced write of the example against etcd: the
// first write, a newer epoch and the same epoch again are accepted; an
// older epoch is refused and changes nothing.
func TestFencedPut(t *testing.T) {
	e, err := etcdtest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cli, err := etcdtest.NewClient(e.Endpoints())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := "/" + t.Name() + "/" + time.Now().Format(time.RFC3339Nano) + "/results/3"
	for _, w := range []struct {
		epoch int64
		value string
		ok    bool
	}{
		{1796038305089105, "a", true},
		{1796038305089110, "b", true},
		{1796038305089110, "c", true},
		{1796038305089105, "stale", false},
		{99, "older, shorter", false},
	} {
		ok, err := fencedPut(ctx, cli, key, w.epoch, w.value)
		if err != nil || ok != w.ok {
			t.Errorf("write %q at epoch %d: %v, %v; want %v", w.value, w.epoch, ok, err, w.ok)
		}
	}
	resp, err := cli.Get(ctx, key)
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "c" {
		t.Errorf("stored %v, %v; want c", resp, err)
	}
}
