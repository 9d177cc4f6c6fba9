package herd_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-cluster/herd"
)

// TestWorkerECV: the app's own /ecv follows the primary's ECV state, which
// operators flip through the control socket, and the app's validator.
func TestWorkerECV(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "c.sock")
	tc := startCluster(t, herd.Config{Workers: 1, Listen: []string{"127.0.0.1:0"}, Control: sock}, "", "ecv")
	tc.ev.waitN(t, 0, 1, "ready", is(herd.EventReady))
	port := tc.stats(t).Slots[0].Port
	api := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	probe := func() (int, string) {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ecv", port))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control %q; want no-cache", cc)
		}
		return resp.StatusCode, string(b)
	}
	post := func(path string) {
		t.Helper()
		resp, err := api.Post("http://herd"+path, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("POST %s: %s; want 204", path, resp.Status)
		}
	}
	for _, step := range []struct {
		do     func()
		code   int
		prefix string
		reason string
	}{
		{func() {}, 200, "status=AVAILABLE&ServeTraffic=true&ip=", ""},
		{func() { post("/ecv/disable") }, 400, "status=DISABLED&ServeTraffic=false&", "disabled+by+an+operator"},
		{func() { post("/ecv/enable") }, 200, "status=AVAILABLE&ServeTraffic=true&", ""},
		{func() { os.WriteFile(tc.out+"/sick", nil, 0o644) }, 400, "status=DISABLED&", "database+unreachable"},
	} {
		step.do()
		code, body := probe()
		if code != step.code || !strings.HasPrefix(body, step.prefix) || !strings.Contains(body, step.reason) ||
			!strings.Contains(body, fmt.Sprintf("&port=%d&", port)) {
			t.Errorf("GET /ecv = %d %q; want %d %q… with %q and the port", code, body, step.code, step.prefix, step.reason)
		}
	}
}
