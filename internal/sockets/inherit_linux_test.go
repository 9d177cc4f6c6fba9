package sockets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
)

func TestListenEnv(t *testing.T) {
	const pid = 1234
	tests := []struct {
		name    string
		env     map[string]string
		want    []string
		present bool
		err     string
	}{
		{"absent", nil, nil, false, ""},
		{"fds only", map[string]string{envvar.ListenFDs: "2"}, nil, true, ""},
		{"other pid", map[string]string{envvar.ListenPID: "99", envvar.ListenFDs: "2"}, nil, true, ""},
		{"zero", map[string]string{envvar.ListenPID: "1234", envvar.ListenFDs: "0"}, []string{}, true, ""},
		{"unnamed", map[string]string{envvar.ListenPID: "1234", envvar.ListenFDs: "2"},
			[]string{"listen0", "listen1"}, true, ""},
		{"named", map[string]string{envvar.ListenPID: "1234", envvar.ListenFDs: "3", envvar.ListenFDNames: "web::adm:extra"},
			[]string{"web", "listen1", "adm"}, true, ""},
		{"few names", map[string]string{envvar.ListenPID: "1234", envvar.ListenFDs: "2", envvar.ListenFDNames: "web"},
			[]string{"web", "listen1"}, true, ""},
		{"bad pid", map[string]string{envvar.ListenPID: "x", envvar.ListenFDs: "1"}, nil, true, "invalid LISTEN_PID"},
		{"bad fds", map[string]string{envvar.ListenPID: "1234", envvar.ListenFDs: "-1"}, nil, true, "invalid LISTEN_FDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			names, present, err := listenEnv(pid, lookup)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || present != tt.present || !slices.Equal(names, tt.want) {
				t.Errorf("listenEnv = %q, %v, %v; want %q, %v", names, present, err, tt.want, tt.present)
			}
		})
	}
}

func TestInheritedNotForUs(t *testing.T) {
	t.Setenv(envvar.ListenPID, strconv.Itoa(os.Getpid()+1))
	t.Setenv(envvar.ListenFDs, "1")
	t.Setenv(envvar.ListenFDNames, "web")
	s, ok, err := Inherited()
	if s != nil || ok || err != nil {
		t.Fatalf("Inherited() = %v, %v, %v; want nil, false, nil", s, ok, err)
	}
	for _, k := range []string{envvar.ListenPID, envvar.ListenFDs, envvar.ListenFDNames} {
		if v, set := os.LookupEnv(k); set {
			t.Errorf("%s=%q still set", k, v)
		}
	}
}

// TestInheritFD wraps a non-blocking, inheritable socket in-process.
func TestInheritFD(t *testing.T) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	l, err := inherit(fd, "web")
	if err != nil {
		_ = unix.Close(fd)
		t.Fatal(err)
	}
	defer l.close()
	checkBlockingCloexec(t, []*os.File{l.shared})
	port, _ := boundPort(fd)
	if want := (Spec{Name: "web", Network: "tcp", Addr: fmt.Sprint("127.0.0.1:", port)}); l.spec != want {
		t.Errorf("spec %+v, want %+v", l.spec, want)
	}

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	lp, err := inherit(p[0], "pipe")
	if err != nil {
		t.Fatal(err)
	}
	defer lp.close()
	if lp.spec.Network != "" || lp.spec.Addr != strconv.Itoa(p[0]) {
		t.Errorf("pipe spec %+v", lp.spec)
	}

	if _, err := inherit(1<<20, "gone"); err == nil || !strings.Contains(err.Error(), "bad file descriptor") {
		t.Errorf("inherit(closed fd) error %v", err)
	}
}

// childReport is what the "inherited" helper prints.
type childReport struct {
	OK, Blocking, Cloexec bool
	Err                   string
	Names, Addrs, EnvLeft []string
	Port                  int
}

// inheritedChild runs in a re-executed test binary: it claims the
// LISTEN_FDS its parent set up and reports what Inherited made of them.
func inheritedChild() int {
	os.Setenv(envvar.ListenPID, strconv.Itoa(os.Getpid()))
	var r childReport
	s, ok, err := Inherited()
	r.OK = ok
	if err != nil {
		r.Err = err.Error()
	}
	for _, k := range []string{envvar.ListenPID, envvar.ListenFDs, envvar.ListenFDNames} {
		if _, set := os.LookupEnv(k); set {
			r.EnvLeft = append(r.EnvLeft, k)
		}
	}
	if s != nil {
		files, names := s.Files(0)
		r.Names, r.Addrs, r.Port = names, s.Addrs(), s.Port()
		r.Blocking, r.Cloexec = true, true
		for _, f := range files {
			fl, _ := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0)
			fd, _ := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
			r.Blocking = r.Blocking && fl&unix.O_NONBLOCK == 0
			r.Cloexec = r.Cloexec && fd&unix.FD_CLOEXEC != 0
		}
		_ = s.Close()
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

func TestInheritedReexec(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	s := mustBind(t, BalanceShared, 1, "web=127.0.0.1:0", "unix:"+path, "udp:127.0.0.1:0")
	files, _ := s.Files(0)

	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		helperEnv+"=inherited",
		envvar.ListenFDs+"=3",
		envvar.ListenFDNames+"=web::dns",
		"GORACE=atexit_sleep_ms=0") // a -race child otherwise lingers 1s at exit
	cmd.ExtraFiles = files
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	wait := startChild(t, cmd)
	if err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.Bytes())
	}
	var r childReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("child output %q: %v", out.Bytes(), err)
	}
	if !r.OK || r.Err != "" {
		t.Fatalf("child Inherited: ok=%v err=%q", r.OK, r.Err)
	}
	if want := []string{"web", "listen1", "dns"}; !slices.Equal(r.Names, want) {
		t.Errorf("child names %q, want %q", r.Names, want)
	}
	parent := s.Addrs()
	parent[2] = strings.Replace(parent[2], "listen2=", "dns=", 1)
	if !slices.Equal(r.Addrs, parent) {
		t.Errorf("child Addrs %q, want %q", r.Addrs, parent)
	}
	if r.Port != s.Port() || !r.Blocking || !r.Cloexec || len(r.EnvLeft) != 0 {
		t.Errorf("child port %d (want %d), blocking %v, cloexec %v, env left %q",
			r.Port, s.Port(), r.Blocking, r.Cloexec, r.EnvLeft)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("the child's Close removed a socket file it did not create: %v", err)
	}
}

// startChild starts cmd, kills and waits for it when the test ends, and
// returns a function that waits for it (once).
func startChild(t *testing.T, cmd *exec.Cmd) (wait func() error) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait = sync.OnceValue(cmd.Wait)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = wait()
	})
	return wait
}
