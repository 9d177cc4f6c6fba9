package control_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herd-cluster/herd/internal/control"
	"github.com/herd-cluster/herd/internal/control/controltest"
)

// writeToken writes a token file with the given mode.
func writeToken(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTCPAuth(t *testing.T) {
	token := writeToken(t, "s3cret-token\n", 0o600)
	s := serve(t, control.Config{Name: "a", TCPAddr: "127.0.0.1:0", TokenFile: token, Port: 8080}, controltest.New(1, 1, 1))
	base := "http://" + s.srv.Addrs()["tcp"].String()
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	for _, tt := range []struct {
		name, auth string
		code       int
	}{
		{"none", "", 401},
		{"wrong", "Bearer s3cret-tokeN", 401},
		{"prefix", "Bearer s3cret", 401},
		{"basic", "Basic czNjcmV0LXRva2Vu", 401},
		{"empty", "Bearer ", 401},
		{"right", "Bearer s3cret-token", 200},
		{"lower scheme", "bearer s3cret-token", 200},
	} {
		for _, path := range []string{"/stats", "/ecv"} {
			var a answer
			if tt.auth == "" {
				a = request(t, hc, base, "GET", path, "")
			} else {
				a = request(t, hc, base, "GET", path, "", "Authorization", tt.auth)
			}
			if a.code != tt.code {
				t.Errorf("%s: GET %s = %d %s; want %d", tt.name, path, a.code, a.body, tt.code)
			}
			if a.code == 401 {
				errorOf(t, a)
				if a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
				}
			}
		}
	}
	// Writes need the token too.
	if a := request(t, hc, base, "POST", "/ecv/disable", ""); a.code != 401 {
		t.Errorf("POST /ecv/disable without token = %d", a.code)
	}
	if enabled, _, _ := s.srv.ECV(); !enabled {
		t.Error("an unauthenticated request disabled the ECV")
	}
	if strings.Contains(s.log.String(), "readable by group") {
		t.Errorf("warning for a private token file: %s", s.log.String())
	}

	c, err := control.NewClient(control.Target{Addr: s.srv.Addrs()["tcp"].String(), Token: []byte("s3cret-token")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(context.Background()); err != nil {
		t.Errorf("client with token: %v", err)
	}
	bad, _ := control.NewClient(control.Target{Addr: s.srv.Addrs()["tcp"].String(), Token: []byte("nope")})
	defer bad.Close()
	var ae *control.APIError
	if _, err := bad.Stats(context.Background()); !errors.As(err, &ae) || ae.Code != 401 {
		t.Errorf("client with a wrong token: %v; want a 401 APIError", err)
	}
}

func TestTokenRequired(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  control.Config
		want string
	}{
		{"no token", control.Config{Name: "x", Socket: control.Off, TCPAddr: ":0"}, "needs a token"},
		{"missing file", control.Config{Name: "x", Socket: control.Off, TCPAddr: ":0", TokenFile: "/nonexistent/t"}, "token file"},
		{"empty file", control.Config{Name: "x", Socket: control.Off, TCPAddr: ":0", TokenFile: writeToken(t, " \n", 0o600)}, "empty"},
		{"two words", control.Config{Name: "x", Socket: control.Off, TCPAddr: ":0", TokenFile: writeToken(t, "a b", 0o600)}, "one word"},
	} {
		if _, err := control.New(tt.cfg, controltest.New(1, 1, 1)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: New = %v; want an error with %q", tt.name, err, tt.want)
		}
	}
}

func TestTokenFileWarning(t *testing.T) {
	token := writeToken(t, "tok", 0o644)
	s := serve(t, control.Config{Name: "w", TCPAddr: ":0", TokenFile: token, Socket: control.Off}, controltest.New(1, 1, 1))
	if !strings.Contains(s.log.String(), "readable by group or others") {
		t.Errorf("no warning for a 0644 token file; log: %s", s.log.String())
	}
	if addr := s.srv.Addrs()["tcp"].String(); !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("a bare :0 bound %s; want loopback", addr)
	}
}
