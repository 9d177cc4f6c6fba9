package membership

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// TestStatic checks a static instance: its view at once on Join, epoch 0,
// Index -1 on Leave, and SetThreads within the total.
func TestStatic(t *testing.T) {
	var got []View
	s, err := New("app", WithStatic(3, 10), WithThreads(2), WithInstanceID("node1"),
		WithOnRebalance(func(v View) { got = append(got, v) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Join(ctx); err != nil {
		t.Fatal(err)
	}
	want := View{Index: 3, Threads: 2, Total: 10, Members: []Member{{ID: "node1", Base: 3, Threads: 2}}}
	if v := s.View(); !v.equal(want) {
		t.Errorf("view after Join = %+v; want %+v", v, want)
	}
	if v := <-s.Views(); !v.equal(want) {
		t.Errorf("Views() gave %+v; want %+v", v, want)
	}
	if err := s.SetThreads(ctx, 8); err == nil {
		t.Error("SetThreads(8) with base 3 of 10 succeeded; want an error")
	}
	if err := s.SetThreads(ctx, 7); err != nil || s.View().Threads != 7 {
		t.Errorf("SetThreads(7): %v, view %+v", err, s.View())
	}
	if err := s.Join(ctx); !errors.Is(err, ErrJoined) {
		t.Errorf("second Join: %v; want ErrJoined", err)
	}
	if err := s.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after Leave")
	}
	if last := got[len(got)-1]; last.Index != -1 || len(got) != 3 {
		t.Errorf("views %+v; want 3 ending with Index -1", got)
	}
	if err := s.Join(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Join after Leave: %v; want ErrClosed", err)
	}
}

// TestNewRefuses checks the configurations New refuses.
func TestNewRefuses(t *testing.T) {
	ep := WithEndpoints("127.0.0.1:1")
	tests := []struct {
		name string
		key  string
		opts []Option
		is   error
	}{
		{"no-mode", "app", nil, nil},
		{"both-modes", "app", []Option{ep, WithStatic(0, 1)}, nil},
		{"empty-key", "", []Option{ep}, ErrBadName},
		{"slash-in-env", "app", []Option{ep, WithEnv("a/b")}, ErrBadName},
		{"slash-in-id", "app", []Option{ep, WithInstanceID("x/y")}, ErrBadName},
		{"ttl-1s", "app", []Option{ep, WithTTL(time.Second)}, ErrTTLTooShort},
		{"zero-threads", "app", []Option{ep, WithThreads(0)}, nil},
		{"static-overflow", "app", []Option{WithStatic(5, 6), WithThreads(2)}, nil},
		{"bad-order", "app", []Option{ep, WithOrder("random")}, nil},
		{"bad-consistency", "app", []Option{ep, WithConsistency("weak")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.key, tt.opts...)
			if err == nil {
				s.Close()
				t.Fatal("New succeeded; want an error")
			}
			if s != nil {
				t.Errorf("New returned a session with error %v", err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("New: %v; want %v", err, tt.is)
			}
		})
	}
}

// TestParseRegistry checks registry URIs: etcd://, http:// and https://,
// one endpoint or several, in etcd's own comma-separated URL form too.
func TestParseRegistry(t *testing.T) {
	good := map[string][]string{
		"etcd://127.0.0.1:2379":                          {"127.0.0.1:2379"},
		"etcd://a:1,b:2/":                                {"a:1", "b:2"},
		"etcd://[::1]:2379,etcd.example:2380":            {"[::1]:2379", "etcd.example:2380"},
		"http://127.0.0.1:2379/":                         {"127.0.0.1:2379"},
		"http://a:1,http://b:2":                          {"a:1", "b:2"},
		"http://a:1/,etcd://b:2/,c:3":                    {"a:1", "b:2", "c:3"},
		"https://a.example:2379":                         {"https://a.example:2379"},
		"https://a.example:2379/,https://b.example:2379": {"https://a.example:2379", "https://b.example:2379"},
		"https://a:1,b:2":                                {"https://a:1", "https://b:2"},
	}
	for uri, want := range good {
		got, err := ParseRegistry(uri)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseRegistry(%q) = %q, %v; want %q", uri, got, err, want)
		}
	}
	for _, uri := range []string{"", "127.0.0.1:2379", "ftp://127.0.0.1:2379", "etcd://", "etcd://host", "etcd://h:0",
		"etcd://h:99999", "etcd://h:1/v2/keys", "etcd://u:p@h:1", "etcd://h:1,", "etcd://:1", "http://h:1?x=1",
		"https://a:1,http://b:2", "http://a:1,https://b:2", "http://a:1,ftp://b:2", "http://h:1//", "https://h"} {
		if got, err := ParseRegistry(uri); !errors.Is(err, ErrBadRegistry) {
			t.Errorf("ParseRegistry(%q) = %q, %v; want ErrBadRegistry", uri, got, err)
		}
	}
}

// TestAssign checks libcluster's example: instances with 2, 1 and 4
// threads get bases 0, 2 and 3 of 7, in join order or in id order.
func TestAssign(t *testing.T) {
	members := map[string]memberRecord{
		"node3": {Threads: 4, createRev: 10},
		"node1": {Threads: 2, createRev: 30},
		"node2": {Threads: 1, createRev: 20},
	}
	as, total := assign(members, OrderID)
	if total != 7 || as["node1"].Base != 0 || as["node2"].Base != 2 || as["node3"].Base != 3 {
		t.Errorf("by id: %v total %d; want node1 0, node2 2, node3 3 of 7", as, total)
	}
	as, total = assign(members, OrderJoin)
	if total != 7 || as["node3"].Base != 0 || as["node2"].Base != 4 || as["node1"].Base != 5 {
		t.Errorf("by join: %v total %d; want node3 0, node2 4, node1 5 of 7", as, total)
	}
	if v := as.view("node2", 0, 1, total, 9); v.Index != 4 || v.Total != 7 || len(v.Members) != 3 {
		t.Errorf("view of node2 = %+v", v)
	}
	if v := as.view("node2", 99, 1, total, 9); v.Index != -1 {
		t.Errorf("view of node2 on another lease = %+v; want Index -1", v)
	}
}

// TestListView checks that the eventual view of the member list agrees
// with the assignment's.
func TestListView(t *testing.T) {
	members := map[string]memberRecord{
		"node3": {Threads: 4, createRev: 10, lease: 3},
		"node1": {Threads: 2, createRev: 30, lease: 1, Addr: "a:1"},
		"node2": {Threads: 1, createRev: 20, lease: 2},
	}
	for _, order := range []Order{OrderJoin, OrderID} {
		as, total := assign(members, order)
		for _, id := range []string{"node1", "node2", "node3"} {
			for _, lease := range []int64{members[id].lease, 99} {
				want := as.view(id, lease, 5, total, 7)
				if got := listView(members, order, id, lease, 5, 7); !got.equal(want) {
					t.Errorf("%s %s lease %d: listView %+v; want %+v", order, id, lease, got, want)
				}
			}
		}
	}
}
