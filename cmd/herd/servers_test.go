package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/herd-cluster/herd"
)

func TestServerWarnings(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nginxGood := conf("nginx.conf", "daemon off;\nevents {}\n")
	nginxBad := conf("nginx-bg.conf", "events {}\n")
	pumaGood := conf("puma.rb", "bind_to_activated_sockets 'only'\n")
	lighty := conf("lighttpd.conf", `server.systemd-socket-activation = "enable"`)
	for _, tc := range []struct {
		name string
		cfg  herd.Config
		want []string // a word of each warning, in order; none: no warning
	}{
		{"nginx right", herd.Config{Command: []string{"nginx", "-c", nginxGood}, Env: []string{"NGINX=3;"}, StopSignal: syscall.SIGQUIT}, nil},
		{"nginx wrong", herd.Config{Command: []string{"/usr/sbin/nginx", "-c", nginxBad}}, []string{`NGINX="3;"`, "SIGQUIT", "daemon off"}},
		{"gunicorn right", herd.Config{Command: []string{"gunicorn", "-w", "2", "app:app"}}, nil},
		{"gunicorn --bind", herd.Config{Command: []string{"gunicorn", "--bind=0.0.0.0:8000", "app:app"}}, []string{"--bind"}},
		{"puma right", herd.Config{Command: []string{"bundle", "exec", "puma", "-C", pumaGood}}, nil},
		{"puma wrong", herd.Config{Command: []string{"puma", "-p", "9292"}, Dir: dir}, []string{"--port", "bind_to_activated_sockets"}},
		{"uvicorn right", herd.Config{Command: []string{"python3", "-m", "uvicorn", "--fd", "3", "app:app"}}, nil},
		{"uvicorn wrong", herd.Config{Command: []string{"uvicorn", "--port", "8000", "app:app"}}, []string{"--fd 3"}},
		{"hypercorn wrong", herd.Config{Command: []string{"hypercorn", "-b", "0.0.0.0:8000", "app:app"}}, []string{"fd://3"}},
		{"uwsgi router", herd.Config{Command: []string{"uwsgi", "--http", ":8000"}}, []string{"--protocol http"}},
		{"uwsgi native", herd.Config{Command: []string{"uwsgi", "--wsgi-file", "app.py"}}, []string{"--protocol http"}},
		{"lighttpd right", herd.Config{Command: []string{"lighttpd", "-D", "-f", lighty}, StopSignal: syscall.SIGINT}, nil},
		{"lighttpd wrong", herd.Config{Command: []string{"lighttpd", "-f", lighty}}, []string{"SIGINT", "-D"}},
		{"waitress-serve", herd.Config{Command: []string{"waitress-serve", "app:app"}}, []string{"sockets=[socket.socket(fileno=3)]"}},
		{"unknown server", herd.Config{Command: []string{"./server", "--port", "8000"}}, nil},
		{"unreadable config is no guess", herd.Config{Command: []string{"nginx", "-c", dir}, Env: []string{"NGINX=3;"}, StopSignal: syscall.SIGQUIT}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := serverWarnings(tc.cfg)
			if len(got) != len(tc.want) {
				t.Fatalf("serverWarnings = %q; want %d warnings naming %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q; want it to name %q", i, got[i], w)
				}
			}
		})
	}
}

// TestServerWarningAtStart runs herd run with a command named nginx and
// the wrong settings: herd starts it all the same and says, in one line
// each, what is wrong.
func TestServerWarningAtStart(t *testing.T) {
	dir := t.TempDir()
	nginx := filepath.Join(dir, "nginx")
	if err := os.WriteFile(nginx, []byte("#!/bin/sh\ntrap 'exit 0' TERM QUIT\nwhile :; do sleep 1 & wait $!; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "c.sock")
	p := startPrimary(t, sock, 1, nil, "run", "--workers", "1", "--control", sock, "--ready-delay", "10ms",
		"--", nginx, "-g", "daemon off;")
	log := p.stderr.String()
	for _, want := range []string{`level=WARN msg="nginx takes herd's socket only with NGINX=`, `level=WARN msg="nginx stops gracefully on SIGQUIT`} {
		if !strings.Contains(log, want) {
			t.Errorf("herd's log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "daemon off") {
		t.Errorf("warned about daemon off, which the command line gives:\n%s", log)
	}
}
