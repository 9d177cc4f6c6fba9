package control

import (
	"debug/buildinfo"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// InfoDoc is the document of GET /info: what runs under this primary. It
// carries no environment value and no token: only the command line, the
// working directory and the build of the program.
type InfoDoc struct {
	Name      string    `json:"name"`
	Version   string    `json:"version"` // herd's
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	// Command is the workers' command line; Dir their working directory.
	Command []string `json:"command"`
	Dir     string   `json:"dir"`
	// Go is the build of the workers' program when it is a Go program
	// whose build information can be read; absent otherwise.
	Go  *GoBuild `json:"go,omitempty"`
	ECV ECVDoc   `json:"ecv"`
}

// GoBuild is what a Go binary says of its own build.
type GoBuild struct {
	GoVersion string `json:"go_version"`
	Path      string `json:"path"` // the main package
	Module    Module `json:"module"`
	// Settings are the build settings that describe the build without
	// revealing what was passed to it: the target, cgo, the race
	// detector, build tags and the version control state. Linker and
	// compiler flags are left out (-ldflags -X may carry secrets).
	Settings map[string]string `json:"settings"`
	Deps     []Module          `json:"deps"`
}

// Module is one module of a build.
type Module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum,omitempty"`
}

// ECVDoc is the ECV's configuration and state: whether operators left the
// node in rotation, whether the monitor's last probe passed, and whether
// POST Path/enable and /disable are refused.
type ECVDoc struct {
	Path     string `json:"path"`
	ReadOnly bool   `json:"read_only"`
	Enabled  bool   `json:"enabled"`
	Healthy  bool   `json:"healthy"`
	Reason   string `json:"reason,omitempty"`
}

// safeSettings are the build settings GET /info shows.
var safeSettings = map[string]bool{
	"GOOS": true, "GOARCH": true, "GOAMD64": true, "GOARM": true, "GOARM64": true, "CGO_ENABLED": true,
	"-race": true, "-tags": true, "-trimpath": true, "-buildmode": true, "-compiler": true,
	"vcs": true, "vcs.revision": true, "vcs.time": true, "vcs.modified": true,
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	if !noQuery(w, r) {
		return
	}
	enabled, healthy, reason := s.ecv.state()
	doc := InfoDoc{
		Name: s.cfg.Name, Version: s.cfg.Version, PID: pid, StartedAt: s.started,
		Command: s.cfg.Command, Dir: s.cfg.Dir,
		ECV: ECVDoc{Path: s.cfg.ECVPath, ReadOnly: s.cfg.ECVReadOnly, Enabled: enabled, Healthy: healthy, Reason: reason},
	}
	if len(doc.Command) == 0 {
		doc.Command = os.Args // a Go program clustering itself
	}
	if doc.Dir == "" {
		doc.Dir, _ = os.Getwd()
	}
	doc.Go = s.ui.builds.of(s.cfg.Command, doc.Dir)
	writeJSON(w, http.StatusOK, doc)
}

// builds reads the build information of the workers' program: this
// program's own when it clusters itself, else that of the command's
// executable, read again only when the file changed (a deploy replaces it
// and a rolling restart runs the new one).
type builds struct {
	mu   sync.Mutex
	path string
	mod  time.Time
	size int64
	last *GoBuild
}

// of returns the build of command run in dir, or nil when it is not a Go
// program or cannot be read.
func (b *builds) of(command []string, dir string) *GoBuild {
	if len(command) == 0 {
		bi, ok := debug.ReadBuildInfo()
		if !ok {
			return nil
		}
		return goBuild(bi)
	}
	path := executable(command[0], dir)
	fi, err := os.Stat(path)
	if path == "" || err != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if path == b.path && fi.ModTime().Equal(b.mod) && fi.Size() == b.size {
		return b.last
	}
	b.path, b.mod, b.size, b.last = path, fi.ModTime(), fi.Size(), nil
	if bi, err := buildinfo.ReadFile(path); err == nil {
		b.last = goBuild(bi)
	}
	return b.last
}

// executable finds the file name runs: a path with a slash relative to
// dir, else a name looked up in PATH.
func executable(name, dir string) string {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && dir != "" {
			return filepath.Join(dir, name)
		}
		return name
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return path
}

// goBuild keeps what GET /info shows of bi.
func goBuild(bi *debug.BuildInfo) *GoBuild {
	g := &GoBuild{
		GoVersion: bi.GoVersion, Path: bi.Path,
		Module:   Module{Path: bi.Main.Path, Version: bi.Main.Version, Sum: bi.Main.Sum},
		Settings: make(map[string]string), Deps: make([]Module, 0, len(bi.Deps)),
	}
	for _, s := range bi.Settings {
		if safeSettings[s.Key] {
			g.Settings[s.Key] = s.Value
		}
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		g.Deps = append(g.Deps, Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return g
}
