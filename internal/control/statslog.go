package control

import (
	"context"
	"log/slog"
	"strconv"
	"time"
)

// LogStats logs a one-line summary of the cluster every interval until ctx
// is done: workers by state, restarts, crashes, and the workers' total
// memory and CPU. It returns at once when interval is not positive.
func LogStats(ctx context.Context, c Cluster, log *slog.Logger, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			logStatsOnce(ctx, c, log)
		}
	}
}

// logStatsOnce logs one summary line.
func logStatsOnce(ctx context.Context, c Cluster, log *slog.Logger) {
	st, err := c.Stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("cluster stats", "err", err)
		}
		return
	}
	var rss uint64
	var cpu float64
	for _, u := range c.Usage(workerPIDs(st), statsUsageAge) {
		rss += u.RSS
		cpu += u.CPUPercent
	}
	log.LogAttrs(ctx, slog.LevelInfo, "cluster stats",
		slog.Int("workers", st.Workers), slog.Int("active", st.Active),
		slog.Int("starting", st.Starting), slog.Int("crashed", st.Crashed),
		slog.Int("disabled", st.Disabled), slog.Uint64("restarts", st.TotalRestarts),
		slog.Uint64("crashes", st.TotalCrashes), slog.String("rss", FormatBytes(rss)),
		slog.Float64("cpu_percent", float64(int(cpu*10+0.5))/10),
		slog.Bool("restart_in_progress", st.RestartInProgress))
}

// FormatBytes formats n bytes the short way: 512 B, 12.3 MiB, 1.5 GiB.
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + " " + "KMGTP"[exp:exp+1] + "iB"
}
