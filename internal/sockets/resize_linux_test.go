package sockets

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestResizeReusePort(t *testing.T) {
	path := t.TempDir() + "/s.sock"
	s := mustBind(t, BalanceReusePort, 2, "127.0.0.1:0", "unix:"+path)
	port := s.Port()
	before0, _ := s.Files(0)

	if err := s.Resize(4); err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for i := range 4 {
		files, names := s.Files(i)
		if len(files) != 2 || strings.Join(names, ",") != "listen0,listen1" {
			t.Fatalf("Files(%d) = %v %v", i, files, names)
		}
		checkBlockingCloexec(t, files)
		inodes[inode(t, files[0])] = true
		if p, err := boundPort(int(files[0].Fd())); err != nil || p != port {
			t.Errorf("slot %d on port %d (%v), want %d", i, p, err, port)
		}
		if files[1] != before0[1] {
			t.Errorf("slot %d: unix socket not shared", i)
		}
	}
	if len(inodes) != 4 {
		t.Errorf("%d distinct TCP sockets for 4 slots", len(inodes))
	}
	if f, _ := s.Files(0); f[0] != before0[0] {
		t.Error("growing replaced slot 0's socket")
	}

	removed, _ := s.Files(3)
	if err := s.Resize(1); err != nil {
		t.Fatal(err)
	}
	if files, _ := s.Files(1); files != nil {
		t.Errorf("Files(1) after Resize(1) = %v, want nil", files)
	}
	if removed[0].Fd() != ^uintptr(0) {
		t.Error("Resize(1) left slot 3's socket open")
	}
	if removed[1].Fd() == ^uintptr(0) {
		t.Error("Resize(1) closed the shared unix socket")
	}
	// Every connection now reaches slot 0's socket.
	f0, _ := s.Files(0)
	roundTrip(t, "tcp", fmt.Sprintf("127.0.0.1:%d", port), fileListener(t, f0[0]))

	if err := s.Resize(3); err != nil {
		t.Fatal(err)
	}
	f2, _ := s.Files(2)
	if p, _ := boundPort(int(f2[0].Fd())); p != port {
		t.Errorf("regrown slot on port %d, want %d", p, port)
	}
	if err := s.Resize(0); err == nil {
		t.Error("Resize(0) succeeded")
	}
}

func TestResizeShared(t *testing.T) {
	s := mustBind(t, BalanceShared, 2, "127.0.0.1:0")
	f0, _ := s.Files(0)
	if err := s.Resize(5); err != nil {
		t.Fatal(err)
	}
	f4, _ := s.Files(4)
	if len(f4) != 1 || f4[0] != f0[0] {
		t.Errorf("shared Files(4) = %v, want the shared socket", f4)
	}
	if err := s.Resize(1); err != nil {
		t.Fatal(err)
	}
	if f0[0].Fd() == ^uintptr(0) {
		t.Error("shared Resize closed the socket")
	}
}

func TestClosedSet(t *testing.T) {
	specs, _ := ParseAll([]string{"127.0.0.1:0"})
	s, err := Bind(specs, BalanceReusePort, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := s.Files(0)
	addr := fmt.Sprintf("127.0.0.1:%d", s.Port())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if files[0].Fd() != ^uintptr(0) {
		t.Error("Close left a socket open")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("port still held after Close: %v", err)
	} else {
		_ = ln.Close()
	}
	if err := s.Resize(2); err == nil {
		t.Error("Resize on a closed Set succeeded")
	}
	if files, _ := s.Files(0); files != nil {
		t.Errorf("Files on a closed Set = %v", files)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
