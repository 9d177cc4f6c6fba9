package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/herd-cluster/herd"
	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/logs"
)

// controlFlags holds the values of the flags of the management API, the
// ECV, the metrics listener and the log file.
type controlFlags struct {
	control       string
	controlAddr   string
	tokenFile     string
	ecvPath       string
	ecvReadOnly   bool
	ecvMonitor    string
	ecvAddr       string
	metricsAddr   string
	logFile       string
	logMaxSize    int64
	logMaxFiles   int
	logLines      int
	statsInterval time.Duration

	logWriter *logs.RotatingFile // opened by open, closed by close
}

// defaultLogLines is --log-lines when not given (herd.Config's default).
const defaultLogLines = 1000

// addLogFlags registers the log file and ring flags in the Logging section.
func (c *controlFlags) addLogFlags(fs *pflag.FlagSet) {
	g := "Logging"
	c.logMaxSize, c.logMaxFiles, c.logLines = logs.DefaultMaxSize, logs.DefaultMaxFiles, defaultLogLines
	add(fs, g, &stringValue{&c.logFile, nil}, "log-file", "`PATH`",
		"Write herd's log and the worker output to PATH instead of stderr and stdout, rotated by size: PATH becomes PATH.1, PATH.1 becomes PATH.2, and so on. While writing fails (a full disk), lines are dropped and counted, the failure is said once on stderr, and PATH is reopened after a backoff of up to 5s.")
	add(fs, g, &sizeValue{&c.logMaxSize}, "log-max-size", "`SIZE`",
		"Size at which --log-file is rotated: bytes, or with a unit such as 10MB, 100MiB or 1G. Default: 100MiB.")
	add(fs, g, &intValue{&c.logMaxFiles, 1}, "log-max-files", "`N`",
		"Rotated log files kept besides --log-file.")
	add(fs, g, &intValue{&c.logLines, 1}, "log-lines", "`N`",
		"Lines of output kept per slot for herd logs.")
	add(fs, g, &durationValue{p: &c.statsInterval, zeroOK: true}, "stats-interval", "`DURATION`",
		"Log a one-line cluster summary this often; 0 for never.")
}

// addControlFlags registers the Control section.
func (c *controlFlags) addControlFlags(fs *pflag.FlagSet) {
	g := "Control"
	c.ecvPath = control.DefaultECVPath
	add(fs, g, &stringValue{&c.control, checkSocketPath}, "control", "`PATH`",
		"Unix socket of the management API (herd status, reload, scale…), mode 0600 in a 0700 directory; - for none. Default: $XDG_RUNTIME_DIR/herd/NAME.sock, else /tmp/herd-UID/NAME.sock.")
	add(fs, g, &stringValue{&c.controlAddr, checkAddr}, "control-addr", "`HOST:PORT`",
		"Also serve the management API on TCP (a bare :PORT means 127.0.0.1); every request needs the bearer token of --token-file. herd warns when this is every interface (0.0.0.0, ::).")
	add(fs, g, &stringValue{&c.tokenFile, nil}, "token-file", "`FILE`",
		"File holding the bearer token of --control-addr; it should be readable by its owner only.")
	add(fs, g, &stringValue{&c.ecvPath, checkECVPath}, "ecv-path", "`PATH`",
		"Path of the ECV (load-balancer check) on the control listeners: 200 status=AVAILABLE while in rotation and healthy, 400 status=DISABLED otherwise.")
	fs.BoolVar(&c.ecvReadOnly, "ecv-read-only", false,
		"Refuse herd ecv enable and disable (POST ECV-PATH/enable, /disable).")
	annotate(fs, "ecv-read-only", g)
	add(fs, g, &stringValue{&c.ecvMonitor, checkMonitor}, "ecv-monitor", "`URL`",
		"App URL the primary probes every few seconds (a path like /health goes to the app's own port); while it fails the ECV reports the node unhealthy.")
	add(fs, g, &stringValue{&c.ecvAddr, checkAddr}, "ecv-addr", "`HOST:PORT`",
		"Also serve the ECV alone, without a token, on this address.")
	add(fs, g, &stringValue{&c.metricsAddr, checkAddr}, "metrics-addr", "`HOST:PORT`",
		"Serve Prometheus metrics (GET /metrics) alone, without a token, on this address.")
}

// check refuses combinations no single flag can judge: TCP control without
// a usable token.
func (c *controlFlags) check() error {
	if c.controlAddr == "" {
		return nil
	}
	if c.tokenFile == "" {
		return usageErrorf("--control-addr needs --token-file: every TCP request must carry its bearer token")
	}
	if _, err := control.ReadTokenFile(c.tokenFile); err != nil {
		return usageErrorf("--token-file: %s", strings.TrimPrefix(err.Error(), "control: token file"))
	}
	return nil
}

// apply copies the values into cfg.
func (c *controlFlags) apply(cfg *herd.Config) {
	cfg.Control, cfg.ControlAddr, cfg.TokenFile = c.control, c.controlAddr, c.tokenFile
	cfg.ECVPath, cfg.ECVReadOnly, cfg.ECVMonitor, cfg.ECVAddr = c.ecvPath, c.ecvReadOnly, c.ecvMonitor, c.ecvAddr
	cfg.MetricsAddr = c.metricsAddr
	cfg.LogFile, cfg.LogMaxSize, cfg.LogMaxFiles, cfg.LogLines = c.logFile, c.logMaxSize, c.logMaxFiles, c.logLines
	cfg.StatsInterval = c.statsInterval
}

// openLog opens --log-file.
func (c *controlFlags) openLog() (io.Writer, error) {
	w, err := logs.OpenRotating(c.logFile, c.logMaxSize, c.logMaxFiles)
	if err != nil {
		return nil, usageErrorf("--log-file: %s", strings.TrimPrefix(err.Error(), "logs: open log file: "))
	}
	c.logWriter = w
	return w, nil
}

// closeLog closes the log file, if one was opened.
func (c *controlFlags) closeLog() {
	if c.logWriter != nil {
		c.logWriter.Close()
	}
}

// checkSocketPath validates --control: "-" or a path.
func checkSocketPath(s string) error {
	switch {
	case s == "" || s == control.Off:
		return nil
	case strings.IndexByte(s, 0) >= 0:
		return errors.New("contains a NUL byte")
	case len(s) > 107:
		return errors.New("a unix socket path must be at most 107 bytes")
	}
	return nil
}

// checkAddr validates a TCP host:port.
func checkAddr(s string) error {
	if s == "" {
		return nil
	}
	if _, err := control.NormalizeAddr(s); err != nil {
		return errors.New("must be host:port or :port")
	}
	return nil
}

// checkECVPath requires an absolute URL path.
func checkECVPath(s string) error {
	if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, "?# ") {
		return errors.New("must be a path such as /ecv")
	}
	return nil
}

// checkMonitor accepts a path on the app's port or an http(s) URL.
func checkMonitor(s string) error {
	if s == "" || strings.HasPrefix(s, "/") {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("must be a path such as /health or an http:// URL")
	}
	return nil
}

// sizeValue is a byte size: a number of bytes, or with a unit (k, KB,
// KiB, M, MB, MiB, G, GB, GiB; KB-style units are powers of 1000, the
// others of 1024).
type sizeValue struct {
	p *int64
}

// Set parses s with parseSize.
func (v *sizeValue) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

// String returns the size the short way, as 100MiB.
func (v *sizeValue) String() string { return formatSize(*v.p) }

// Type names the value kind for help output.
func (v *sizeValue) Type() string { return "size" }

// sizeUnits maps the unit suffixes, lower-case, to their factor.
var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
}

// parseSize reads a positive size in bytes such as 1048576, 10MB or 100MiB.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, ok := sizeUnits[unit]
	n, err := strconv.ParseFloat(num, 64)
	switch {
	case !ok || err != nil || num == "":
		return 0, errors.New("not a size such as 1048576, 10MB or 100MiB")
	case n*float64(f) < 1:
		return 0, errors.New("must be at least 1 byte")
	case n*float64(f) > math.MaxInt64/2:
		return 0, errors.New("too large")
	}
	return int64(n * float64(f)), nil
}

// formatSize writes n with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		f    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n != 0 && n%u.f == 0 {
			return fmt.Sprintf("%d%s", n/u.f, u.name)
		}
	}
	return strconv.FormatInt(n, 10)
}
