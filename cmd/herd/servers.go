package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/herd-cluster/herd"
)

// maxConfigPeek bounds how much of a server's own configuration file
// serverWarnings reads.
const maxConfigPeek = 1 << 20

// serverWarnings returns what cfg gets wrong for a server herd knows, told
// from its command line: each a line that names the setting and the fix
// (docs/servers.md has the recipes). It never stops the start: a server
// may be configured in ways the command line does not show.
func serverWarnings(cfg herd.Config) []string {
	name, args := serverOf(cfg.Command)
	stop := cfg.StopSignal
	if stop == 0 {
		stop = syscall.SIGTERM
	}
	var w []string
	say := func(cond bool, msg string) {
		if cond {
			w = append(w, msg)
		}
	}
	switch name {
	case "nginx":
		say(!strings.Contains(envValue(cfg.Env, "NGINX"), "3;"),
			`nginx takes herd's socket only with NGINX="3;" in its environment (--env 'NGINX=3;') and a listen directive for the same address; without it, it binds the port itself`)
		say(stop != syscall.SIGQUIT, "nginx stops gracefully on SIGQUIT and drops its connections on SIGTERM: use --stop-signal QUIT")
		say(!argsOrFile(cfg.Dir, args, "-c", "/etc/nginx/nginx.conf", "daemon off"), "nginx forks into the background unless its configuration says daemon off; (or -g 'daemon off;'): herd would see it exit at once")
	case "gunicorn":
		say(hasFlag(args, "-b", "--bind"), "gunicorn --bind makes gunicorn bind the port itself: leave it out, gunicorn takes herd's sockets from LISTEN_FDS")
	case "puma":
		say(hasFlag(args, "-b", "--bind", "-p", "--port"), "puma --bind/--port makes puma bind the port itself: leave them out and put bind_to_activated_sockets 'only' in its configuration")
		say(!argsOrFile(cfg.Dir, args, "-C", "config/puma.rb", "bind_to_activated_sockets"), "puma takes herd's socket only with bind_to_activated_sockets 'only' in its configuration (-C FILE)")
	case "uvicorn":
		say(!hasFlag(args, "--fd"), "uvicorn binds its own port unless given --fd 3, herd's socket")
	case "hypercorn":
		say(!slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "fd://") }),
			"hypercorn binds its own port unless given --bind fd://3, herd's socket")
	case "uwsgi", "uwsgi-core":
		say(hasFlag(args, "--http"), "uwsgi --http starts a router that binds its own port: use --protocol http, and uWSGI takes herd's socket from LISTEN_FDS")
		say(!hasFlag(args, "--http") && !hasFlag(args, "--protocol", "--http-socket"),
			"uWSGI speaks its own uwsgi protocol on herd's socket unless given --protocol http")
	case "lighttpd":
		say(stop != syscall.SIGINT, "lighttpd stops gracefully on SIGINT and drops its connections on SIGTERM: use --stop-signal INT")
		say(!argsOrFile(cfg.Dir, args, "-f", "", "systemd-socket-activation"), `lighttpd takes herd's socket only with server.systemd-socket-activation = "enable" in its configuration`)
		say(!hasFlag(args, "-D"), "lighttpd forks into the background unless given -D: herd would see it exit at once")
	case "waitress-serve":
		w = append(w, "waitress-serve binds its own port and cannot take herd's socket: serve the app from a few lines of Python with waitress.serve(app, sockets=[socket.socket(fileno=3)]) (docs/servers.md)")
	}
	return w
}

// serverOf returns the server a command runs and the arguments it gets:
// the program's base name, or the module of "python3 -m MODULE".
func serverOf(argv []string) (string, []string) {
	if len(argv) == 0 {
		return "", nil
	}
	name := filepath.Base(argv[0])
	if strings.HasPrefix(name, "python") {
		if i := slices.Index(argv, "-m"); i > 0 && i+1 < len(argv) {
			return argv[i+1], argv[i+2:]
		}
		if len(argv) > 1 {
			return strings.TrimSuffix(filepath.Base(argv[1]), ".py"), argv[2:]
		}
	}
	if name == "bundle" && len(argv) > 2 && argv[1] == "exec" {
		return filepath.Base(argv[2]), argv[3:]
	}
	return name, argv[1:]
}

// hasFlag reports whether args hold one of the flags, alone or as
// --flag=value.
func hasFlag(args []string, flags ...string) bool {
	for _, a := range args {
		for _, f := range flags {
			if a == f || strings.HasPrefix(a, f+"=") {
				return true
			}
		}
	}
	return false
}

// argsOrFile reports whether want is in the arguments or in the server's
// configuration file: the one that follows flag, else def (relative to
// dir). When the file cannot be read, it says yes: a warning must not be a
// guess.
func argsOrFile(dir string, args []string, flag, def, want string) bool {
	if slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, want) }) {
		return true
	}
	path := def
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		path = args[i+1]
	}
	if path == "" {
		return false
	}
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigPeek))
	return err != nil || bytes.Contains(b, []byte(want))
}

// envValue returns the value of key in env, else in herd's environment,
// which workers inherit.
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return os.Getenv(key)
}
