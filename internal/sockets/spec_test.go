package sockets

import (
	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
	}{
		{":8080", Spec{Network: "tcp", Addr: ":8080"}},
		{"127.0.0.1:0", Spec{Network: "tcp", Addr: "127.0.0.1:0"}},
		{"localhost:80", Spec{Network: "tcp", Addr: "localhost:80"}},
		{"[::1]:443", Spec{Network: "tcp", Addr: "[::1]:443"}},
		{"web=:8080", Spec{Name: "web", Network: "tcp", Addr: ":8080"}},
		{"tcp:0.0.0.0:80", Spec{Network: "tcp", Addr: "0.0.0.0:80"}},
		{"api=tcp:[::]:80", Spec{Name: "api", Network: "tcp", Addr: "[::]:80"}},
		{"udp::53", Spec{Network: "udp", Addr: ":53"}},
		{"dns=udp:127.0.0.1:5353", Spec{Name: "dns", Network: "udp", Addr: "127.0.0.1:5353"}},
		{"unix:/run/herd.sock", Spec{Network: "unix", Addr: "/run/herd.sock"}},
		{"unix:rel/x.sock", Spec{Network: "unix", Addr: "rel/x.sock"}},
		{"unix:@abstract", Spec{Network: "unix", Addr: "@abstract"}},
		{"adm=unix:/run/a=b.sock", Spec{Name: "adm", Network: "unix", Addr: "/run/a=b.sock"}},
		{"unix:/run/h.sock,mode=0660", Spec{Network: "unix", Addr: "/run/h.sock", Mode: 0o660}},
		{"unix:/run/h.sock,mode=600,owner=www,group=1000", Spec{
			Network: "unix", Addr: "/run/h.sock", Mode: 0o600, Owner: "www", Group: "1000"}},
		{"a.b-c_d=unix:/s,group=web", Spec{Name: "a.b-c_d", Network: "unix", Addr: "/s", Group: "web"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "empty address"},
		{"web=", "empty address"},
		{"=:80", "empty listener name"},
		{"a b=:80", `character ' ' not allowed`},
		{"unix:", "missing socket path"},
		{"x=unix:,mode=0600", "missing socket path"},
		{"unix:/" + strings.Repeat("a", 200), "limit is 107"},
		{"8080", "missing port in address"},
		{"localhost", "missing port in address"},
		{"tcp:", "missing host:port"},
		{":", "missing port"},
		{":http", `invalid port "http"`},
		{":65536", `invalid port "65536"`},
		{":-1", `invalid port "-1"`},
		{"udp:1.2.3.4:x", `invalid port "x"`},
		{"::1:80", "too many colons"},
		{"tcp:1.2.3.4:80,mode=0600", "only allowed on unix"},
		{"unix:/s,mode=0999", `invalid mode "0999"`},
		{"unix:/s,mode=rw", `invalid mode "rw"`},
		{"unix:/s,mode=0", `invalid mode "0"`},
		{"unix:/s,mode=01777", `invalid mode "01777"`},
		{"unix:/s,perm=0600", `unknown option "perm"`},
		{"unix:/s,mode", `invalid option "mode"`},
		{"unix:/s,owner=", `invalid option "owner="`},
		{"unix:/s,", "empty option"},
		{"unix:/s,mode=0600,mode=0644", `option "mode" given twice`},
		{"unix:@abs,mode=0600", "abstract"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.in)
		if err == nil {
			t.Errorf("Parse(%q): no error, want %q", tt.in, tt.want)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "invalid listen address") {
			t.Errorf("Parse(%q) error %q, want it to contain %q", tt.in, msg, tt.want)
		}
	}
}

func TestParseAll(t *testing.T) {
	specs, err := ParseAll([]string{":80", "admin=unix:/s", "udp::53"})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{specs[0].Name, specs[1].Name, specs[2].Name}
	if want := []string{"listen0", "admin", "listen2"}; strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("names %v, want %v", names, want)
	}
	if specs, err := ParseAll(nil); err != nil || len(specs) != 0 {
		t.Errorf("ParseAll(nil) = %v, %v", specs, err)
	}

	for _, in := range [][]string{
		{"a=:80", "a=:81"},
		{":80", "listen0=:81"},
	} {
		_, err := ParseAll(in)
		if err == nil || !strings.Contains(err.Error(), "duplicate listener name") {
			t.Errorf("ParseAll(%q) error %v, want duplicate name", in, err)
		}
	}
	if _, err := ParseAll([]string{":80", "unix:"}); err == nil || !strings.Contains(err.Error(), `"unix:"`) {
		t.Errorf("ParseAll with a bad value: error %v, want it to quote the value", err)
	}
}

func TestParseBalance(t *testing.T) {
	for _, s := range []string{"shared", "reuseport"} {
		if b, err := ParseBalance(s); err != nil || string(b) != s {
			t.Errorf("ParseBalance(%q) = %q, %v", s, b, err)
		}
	}
	if _, err := ParseBalance("roundrobin"); err == nil || !strings.Contains(err.Error(), `"roundrobin"`) {
		t.Errorf("ParseBalance(roundrobin) error %v", err)
	}
}

func TestBindErrorFormat(t *testing.T) {
	var err error = &BindError{Network: "tcp", Addr: "127.0.0.1:8080", Err: syscall.EADDRINUSE}
	if got, want := err.Error(), "listen tcp 127.0.0.1:8080: address already in use"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Error("errors.Is(err, EADDRINUSE) is false")
	}
}
