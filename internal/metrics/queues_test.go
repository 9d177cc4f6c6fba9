package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/herd-cluster/herd/internal/saturation"
)

func TestQueues(t *testing.T) {
	c := NewQueues(func() []saturation.Listener {
		return []saturation.Listener{
			{Name: "web", Depth: 3, Limit: 2048, Drops: 7, Stuck: true},
			{Name: "api", Depth: 0, Limit: 512},
		}
	})
	want := `
# HELP herd_listen_queue_depth Connections the kernel completed that no worker has accepted yet.
# TYPE herd_listen_queue_depth gauge
herd_listen_queue_depth{listener="api"} 0
herd_listen_queue_depth{listener="web"} 3
# HELP herd_listen_queue_limit Connections that may wait in the accept queue before new ones are dropped.
# TYPE herd_listen_queue_limit gauge
herd_listen_queue_limit{listener="api"} 512
herd_listen_queue_limit{listener="web"} 2048
# HELP herd_listen_overflows_total Connections the listener's sockets dropped since the primary started, chiefly for a full accept queue.
# TYPE herd_listen_overflows_total counter
herd_listen_overflows_total{listener="api"} 0
herd_listen_overflows_total{listener="web"} 7
# HELP herd_listen_queue_stuck 1 while connections wait on the listener and none has been accepted for 2s.
# TYPE herd_listen_queue_stuck gauge
herd_listen_queue_stuck{listener="api"} 0
herd_listen_queue_stuck{listener="web"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"herd_listen_queue_depth", "herd_listen_queue_limit", "herd_listen_overflows_total", "herd_listen_queue_stuck"); err != nil {
		t.Error(err)
	}
	// The namespace's counters come from /proc/self/net/netstat.
	if n := testutil.CollectAndCount(c, "herd_netns_listen_overflows_total", "herd_netns_listen_drops_total"); n != 2 {
		t.Errorf("%d namespace counters; want 2", n)
	}
}
