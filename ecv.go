package herd

import "context"

// ecvState is the node's load-balancer rotation state, as workers see it
// over IPC: from the control plane when it runs, else healthy while at
// least one worker is ACTIVE and none is DISABLED.
func (c *Cluster) ecvState() (enabled, healthy bool, reason string) {
	if srv := c.control.Load(); srv != nil {
		if enabled, healthy, reason = srv.ECV(); !enabled || !healthy {
			return enabled, healthy, reason
		}
	}
	st, err := c.Stats(context.Background())
	switch {
	case err != nil:
		return true, false, err.Error()
	case st.Active == 0:
		return true, false, "no worker is ACTIVE"
	case st.Disabled > 0:
		return true, false, "a worker slot is DISABLED"
	}
	return true, true, ""
}
