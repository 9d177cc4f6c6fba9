package control

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Defaults for the Config fields whose zero value means "the default".
const (
	DefaultECVPath     = "/ecv"
	DefaultECVInterval = 5 * time.Second
	DefaultECVTimeout  = 2 * time.Second
)

// Off, as Config.Socket, turns the unix socket off.
const Off = "-"

// Config describes a management API server. The zero value serves nothing
// but a unix socket named after an empty name, which New refuses: set Name
// or Socket.
type Config struct {
	// Name is the cluster's name: it names the default socket. It may be
	// empty when Socket is set.
	Name string
	// Version is reported in GET /stats. Empty means "dev".
	Version string

	// Socket is the unix socket of the API, mode 0600. Empty means
	// DefaultSocket(Name); Off ("-") means none. A socket of a primary
	// still running makes New fail with ErrInUse; a stale one is replaced.
	Socket string
	// TCPAddr, when set, also serves the API on TCP (host:port; a bare
	// :port means 127.0.0.1). Every request there needs the bearer token.
	TCPAddr string
	// Token is the bearer token TCP requests must carry. Empty means the
	// content of TokenFile; New refuses TCPAddr with neither.
	Token []byte
	// TokenFile is read for the token when Token is empty. A file others
	// may read gets a warning in the log.
	TokenFile string

	// ECVPath is the path of the ECV endpoint; enable and disable are
	// ECVPath+"/enable" and "/disable". Empty means DefaultECVPath.
	ECVPath string
	// ECVReadOnly refuses POST ECVPath/enable and /disable. The zero value
	// allows them.
	ECVReadOnly bool
	// ECVMonitor, when set, is probed with GET every ECVInterval; while
	// the probe fails the ECV reports the node unhealthy. A path ("/health")
	// is probed through the app's own port, http://127.0.0.1:Port/health;
	// an http(s) URL as it is.
	ECVMonitor string
	// ECVInterval and ECVTimeout time the monitor's probes. Zero means
	// DefaultECVInterval and DefaultECVTimeout.
	ECVInterval time.Duration
	ECVTimeout  time.Duration
	// ECVAddr, when set, serves only GET ECVPath, without a token, on a
	// TCP address of its own.
	ECVAddr string
	// Port is the app's port, reported by the ECV. Zero means none.
	Port int

	// MetricsAddr, when set, serves only GET /metrics, without a token, on
	// a TCP address of its own. It needs Metrics.
	MetricsAddr string
	// Metrics serves GET /metrics. Nil means 404.
	Metrics http.Handler
	// Logs serves GET /logs. Nil means 404.
	Logs Logs

	// Command and Dir are the workers' command line and working
	// directory, shown by GET /info (with the command's Go build
	// information when it is a Go program). An empty Command means this
	// program clusters itself (os.Args); an empty Dir, the primary's.
	Command []string
	Dir     string
	// HistoryInterval is how often the CPU and memory of every slot are
	// sampled for GET /history while a dashboard reads it (in the last
	// 30 s); six times less often otherwise. Zero means
	// DefaultHistoryInterval.
	HistoryInterval time.Duration
	// Logger receives the server's own messages. Nil means slog.Default().
	Logger *slog.Logger

	// MaxConns bounds the connections each listener holds open at once;
	// more are closed as soon as they are accepted. On the TCP API a
	// quarter of them may be waiting to show their token; past that the
	// oldest such connection is closed to make room. Zero means a share of
	// a quarter of the process's fd limit, at most 64 per listener.
	MaxConns int
}

// DefaultSocket returns the default socket of the cluster name:
// $XDG_RUNTIME_DIR/herd/<name>.sock, else /tmp/herd-<uid>/<name>.sock.
func DefaultSocket(name string) string {
	return filepath.Join(DefaultSocketDir(), name+".sock")
}

// DefaultSocketDir returns the directory of the default sockets:
// $XDG_RUNTIME_DIR/herd, else /tmp/herd-<uid>.
func DefaultSocketDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "herd")
	}
	return filepath.Join(os.TempDir(), "herd-"+strconv.Itoa(os.Getuid()))
}

// SocketDirs returns the directories where default sockets may be:
// DefaultSocketDir first, then /tmp/herd-<uid> when that differs (a
// primary started without XDG_RUNTIME_DIR, as by a service manager, puts
// its socket there). Clients look in both.
func SocketDirs() []string {
	dirs := []string{DefaultSocketDir()}
	if tmp := filepath.Join(os.TempDir(), "herd-"+strconv.Itoa(os.Getuid())); tmp != dirs[0] {
		dirs = append(dirs, tmp)
	}
	return dirs
}

// NormalizeAddr checks a TCP host:port and makes a bare :port loopback.
func NormalizeAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("address %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), nil
}

// withDefaults checks cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ECVPath == "" {
		cfg.ECVPath = DefaultECVPath
	}
	if cfg.ECVInterval <= 0 {
		cfg.ECVInterval = DefaultECVInterval
	}
	if cfg.ECVTimeout <= 0 {
		cfg.ECVTimeout = DefaultECVTimeout
	}
	switch {
	case cfg.Socket == "" && cfg.Name == "":
		return cfg, errors.New("control: neither a name nor a socket")
	case cfg.Socket == "" && strings.ContainsAny(cfg.Name, "/\x00"):
		return cfg, fmt.Errorf("control: name %q cannot be part of a file name", cfg.Name)
	case cfg.Socket == "":
		cfg.Socket = DefaultSocket(cfg.Name)
	}
	if !strings.HasPrefix(cfg.ECVPath, "/") || reserved[cfg.ECVPath] {
		return cfg, fmt.Errorf("control: ecv path %q must start with / and not be an API path", cfg.ECVPath)
	}
	for _, a := range []*string{&cfg.TCPAddr, &cfg.ECVAddr, &cfg.MetricsAddr} {
		if *a == "" {
			continue
		}
		n, err := NormalizeAddr(*a)
		if err != nil {
			return cfg, fmt.Errorf("control: %w", err)
		}
		*a = n
	}
	if cfg.MetricsAddr != "" && cfg.Metrics == nil {
		return cfg, errors.New("control: a metrics address but no metrics handler")
	}
	return cfg, nil
}

// monitorURL returns the URL the ECV monitor probes, or "" for none.
func (cfg Config) monitorURL() (string, error) {
	m := cfg.ECVMonitor
	switch {
	case m == "":
		return "", nil
	case strings.HasPrefix(m, "/"):
		if cfg.Port == 0 {
			return "", fmt.Errorf("control: ecv monitor %q is a path but the app has no TCP port", m)
		}
		return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port)) + m, nil
	}
	u, err := url.Parse(m)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("control: ecv monitor %q is neither a path nor an http(s) URL", m)
	}
	return m, nil
}

// reserved lists the API paths the ECV path must not take.
var reserved = map[string]bool{
	"/stats": true, "/health": true, "/restart": true, "/scale": true, "/signal": true,
	"/stop": true, "/events": true, "/logs": true, "/metrics": true, "/": true,
	"/history": true, "/info": true, "/ui": true, uiPath: true,
}
