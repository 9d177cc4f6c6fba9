package compat

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"text/template"
)

// server is one recipe of docs/servers.md: a server, run the way the page
// says, and the most failed requests a rolling restart may cost it.
type server struct {
	name    string
	variant string // "plain": the server as it comes; "graceful": with the app-side change the page gives
	master  bool   // herd's worker is the server's own master, with worker processes of its own
	bound   [2]int // most failed requests per rolling restart: keep-alive, Connection: close
	setup   func(t *testing.T, dir, addr string) recipe
}

// id names the subtest.
func (s server) id() string { return s.name + "/" + s.variant }

// recipe is how herd runs a server: herd's flags, the command and its
// extra environment.
type recipe struct {
	flags []string
	argv  []string
	env   []string
}

// commandLine is the recipe as a user would type it, with the test's
// directory dir named DIR.
func (r recipe) commandLine(dir string) string {
	parts := append([]string{"herd run --workers 2 --listen 127.0.0.1:PORT"}, r.flags...)
	parts = append(append(parts, "--"), r.argv...)
	s := strings.Join(parts, " ")
	if d, err := filepath.Abs("apps"); err == nil {
		s = strings.ReplaceAll(s, d+"/", "")
		s = strings.ReplaceAll(s, d, ".")
	}
	if d, err := filepath.Abs("node"); err == nil {
		s = strings.ReplaceAll(s, d, "node")
	}
	s = strings.ReplaceAll(s, dir, "DIR")
	if exe, err := os.Executable(); err == nil {
		s = strings.ReplaceAll(s, exe, "./goapp")
	}
	for i := len(r.env) - 1; i >= 0; i-- {
		k, v, _ := strings.Cut(r.env[i], "=")
		s = k + "=" + strconv.Quote(v) + " " + s
	}
	return s
}

// apps is the directory of the suite's apps.
func apps(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("apps")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// python is Debian's Python 3, which the Debian server packages install
// into, whatever python3 comes first in PATH.
const python = "/usr/bin/python3"

// needPython skips t unless Debian's Python has module mod.
func needPython(t *testing.T, mod, pkg string) {
	t.Helper()
	needFile(t, python, "Debian package python3")
	needFile(t, filepath.Join("/usr/lib/python3/dist-packages", mod), "Debian package "+pkg)
}

// needRuby skips t unless Ruby can require lib.
func needRuby(t *testing.T, lib, pkg string) {
	t.Helper()
	if err := exec.Command("ruby", "-e", "require '"+lib+"'").Run(); err != nil {
		msg := fmt.Sprintf("ruby cannot require %s (%s); test/compat/install.sh installs it", lib, pkg)
		if required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// servers is every recipe the suite checks, in the order of docs/servers.md.
var servers = []server{
	{name: "python-stdlib", variant: "graceful", bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			needFile(t, python, "Debian package python3")
			return recipe{flags: []string{"--ready", "notify"},
				argv: []string{python, filepath.Join(apps(t), "stdlib_server.py")}}
		}},
	{name: "uvicorn", variant: "plain", bound: [2]int{40, 30},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "uvicorn", "python3-uvicorn")
			return recipe{argv: []string{python, "-m", "uvicorn", "--fd", "3", "--app-dir", apps(t), "asgi:app"}}
		}},
	{name: "uvicorn", variant: "graceful", bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "uvicorn", "python3-uvicorn")
			return recipe{argv: []string{python, filepath.Join(apps(t), "uvicorn_graceful.py"), "asgi:app"},
				flags: []string{"--dir", apps(t)}}
		}},
	{name: "hypercorn", variant: "plain", bound: [2]int{100000, 30},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "hypercorn", "python3-hypercorn")
			return recipe{argv: []string{"hypercorn", "--bind", "fd://3", "asgi:app"}, flags: []string{"--dir", apps(t)}}
		}},
	{name: "hypercorn", variant: "graceful", bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "hypercorn", "python3-hypercorn")
			return recipe{argv: []string{python, "hypercorn_graceful.py", "asgi:app_close"}, flags: []string{"--dir", apps(t)}}
		}},
	{name: "gunicorn", variant: "plain", master: true, bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			need(t, "gunicorn", "Debian package gunicorn")
			return recipe{argv: []string{"gunicorn", "--workers", "1", "wsgi:app"}, flags: []string{"--dir", apps(t)}}
		}},
	{name: "waitress", variant: "plain", bound: [2]int{40, 30},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "waitress", "python3-waitress")
			return recipe{argv: []string{python, "waitress_fd.py", "wsgi:app"}, flags: []string{"--dir", apps(t)}}
		}},
	{name: "waitress", variant: "graceful", bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			needPython(t, "waitress", "python3-waitress")
			return recipe{argv: []string{python, "waitress_fd.py", "wsgi:app", "--graceful"}, flags: []string{"--dir", apps(t)}}
		}},
	nodeServer("node-http", "http", false), nodeServer("node-http", "http", true),
	nodeServer("express", "express", false), nodeServer("express", "express", true),
	nodeServer("fastify", "fastify", false), nodeServer("fastify", "fastify", true),
	{name: "puma", variant: "plain", master: true, bound: [2]int{40, 30},
		setup: func(t *testing.T, dir, addr string) recipe {
			need(t, "puma", "Debian package puma")
			needRuby(t, "sd_notify", "Debian package ruby-sd-notify")
			return recipe{argv: []string{"puma", "-C", "puma.rb", "config.ru"},
				flags: []string{"--dir", apps(t), "--ready", "notify"}}
		}},
	uwsgiServer(false), uwsgiServer(true),
	lighttpdServer(false), lighttpdServer(true),
	nginxServer(false), nginxServer(true),
	{name: "go-systemd", variant: "plain", bound: [2]int{40, 30},
		setup: func(t *testing.T, dir, addr string) recipe {
			return recipe{argv: []string{selfExe(t)}, env: []string{appSwitch + "=plain"}}
		}},
	{name: "go-systemd", variant: "graceful", bound: [2]int{0, 0},
		setup: func(t *testing.T, dir, addr string) recipe {
			return recipe{argv: []string{selfExe(t)}, env: []string{appSwitch + "=graceful"},
				flags: []string{"--ready", "notify"}}
		}},
}

// selfExe is this test binary, which runs the Go app when appSwitch is set.
func selfExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// nodeServer is the recipe of a Node server of node/server.js, as it comes
// or with its graceful stop.
func nodeServer(name, kind string, graceful bool) server {
	s := server{name: name, variant: "plain", bound: [2]int{40, 30}}
	if graceful {
		s.variant, s.bound = "graceful", [2]int{0, 0}
	}
	s.setup = func(t *testing.T, dir, addr string) recipe {
		need(t, "node", "Debian package nodejs")
		d, err := filepath.Abs("node")
		if err != nil {
			t.Fatal(err)
		}
		if kind != "http" {
			needFile(t, filepath.Join(d, "node_modules", kind), "npm ci in test/compat/node")
		}
		r := recipe{argv: []string{"node", "server.js", kind}, flags: []string{"--dir", d}}
		if graceful {
			need(t, "systemd-notify", "Debian package systemd")
			r.argv = append(r.argv, "--graceful")
			r.flags = append(r.flags, "--ready", "notify")
		}
		return r
	}
	return s
}

// lighttpdConf serves "ok" on the socket herd passes.
const lighttpdConf = `server.systemd-socket-activation = "enable"
server.bind = "{{.Host}}"
server.port = {{.Port}}
server.document-root = "{{.Dir}}"
server.errorlog = "/dev/stderr"
index-file.names = ("ok.txt")
`

// nginxConf serves "ok" on the socket herd passes: NGINX="3;" hands it
// fd 3, and the listen directive must name the same address.
const nginxConf = `daemon off;
master_process on;
worker_processes 1;
pid {{.Dir}}/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
	access_log off;
	server {
		listen {{.Host}}:{{.Port}};
		location / { return 200 "ok\n"; }
	}
}
`

// writeConf writes the configuration template tmpl, filled in for dir and
// addr, to dir/name, with an ok.txt beside it, and returns its path.
func writeConf(t *testing.T, dir, name, tmpl, addr string) string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	err = template.Must(template.New(name).Parse(tmpl)).Execute(&b, map[string]string{"Dir": dir, "Host": host, "Port": port})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.txt"), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// uwsgiServer is uWSGI's recipe; graceful makes SIGTERM a graceful stop
// (uWSGI 2.0 reloads on SIGTERM, or with --die-on-term dies at once).
func uwsgiServer(graceful bool) server {
	s := server{name: "uwsgi", variant: "plain", master: true, bound: [2]int{40, 30}}
	if graceful {
		s.variant, s.bound = "graceful", [2]int{0, 0}
	}
	s.setup = func(t *testing.T, dir, addr string) recipe {
		need(t, "uwsgi", "Debian package uwsgi-core")
		needFile(t, "/usr/lib/uwsgi/plugins/python3_plugin.so", "Debian package uwsgi-plugin-python3")
		argv := []string{"uwsgi", "--plugin", "python3", "--master", "--processes", "1",
			"--protocol", "http", "--add-header", "Connection: close", "--wsgi-file", "wsgi.py"}
		if graceful {
			argv = append(argv, "--hook-master-start", "unix_signal:15 gracefully_kill_them_all")
		} else {
			argv = append(argv, "--die-on-term")
		}
		return recipe{argv: argv, flags: []string{"--dir", apps(t)}}
	}
	return s
}

// lighttpdServer is lighttpd's recipe; noKeepAlive turns keep-alive off,
// since lighttpd closes idle keep-alive connections when it stops.
func lighttpdServer(noKeepAlive bool) server {
	s := server{name: "lighttpd", variant: "plain", bound: [2]int{40, 30}}
	if noKeepAlive {
		s.variant, s.bound = "no-keep-alive", [2]int{0, 0}
	}
	s.setup = func(t *testing.T, dir, addr string) recipe {
		need(t, "lighttpd", "Debian package lighttpd")
		conf := lighttpdConf
		if noKeepAlive {
			conf += "server.max-keep-alive-requests = 0\n"
		}
		path := writeConf(t, dir, "lighttpd.conf", conf, addr)
		return recipe{argv: []string{"lighttpd", "-D", "-f", path}, flags: []string{"--stop-signal", "INT"}}
	}
	return s
}

// nginxServer is nginx's recipe; noKeepAlive turns keep-alive off, since
// nginx closes idle keep-alive connections when it stops.
func nginxServer(noKeepAlive bool) server {
	s := server{name: "nginx", variant: "plain", master: true, bound: [2]int{40, 30}}
	if noKeepAlive {
		s.variant, s.bound = "no-keep-alive", [2]int{0, 0}
	}
	s.setup = func(t *testing.T, dir, addr string) recipe {
		need(t, "nginx", "Debian package nginx-light")
		conf := nginxConf
		if noKeepAlive {
			conf = strings.Replace(conf, "access_log off;", "access_log off;\n\tkeepalive_timeout 0;", 1)
		}
		path := writeConf(t, dir, "nginx.conf", conf, addr)
		return recipe{argv: []string{"nginx", "-p", dir, "-c", path, "-e", "stderr"},
			env: []string{"NGINX=3;"}, flags: []string{"--stop-signal", "QUIT"}}
	}
	return s
}
