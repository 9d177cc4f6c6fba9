package herd_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hostileAttacks are what the hostile helper's slots 1, 2, … send once
// HERD_TEST_OUT/go exists; slot 0 is a polite worker.
var hostileAttacks = []string{"subscribe-big", "subscribe-many", "gauges", "recycle-big"}

func init() {
	helpers["hostile"] = hostileWorker
}

// hostileWorker speaks the IPC protocol in raw frames: slot 0 politely,
// the other slots with an attack of hostileAttacks each. Each reports how
// its channel ended.
func hostileWorker() int {
	fd, err := strconv.Atoi(os.Getenv("HERD_IPC"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostile: no HERD_IPC")
		return 3
	}
	_ = syscall.SetNonblock(fd, true) // in the poller: reads take deadlines
	ch := os.NewFile(uintptr(fd), "ipc")
	slot, _ := strconv.Atoi(os.Getenv("HERD_WORKER_ID"))
	r := bufio.NewReader(ch)
	writeRaw(ch, fmt.Sprintf(`{"t":"hello","v":1,"pid":%d,"slot":%d,"lang":"raw"}`, os.Getpid(), slot))
	if m, err := readRaw(r); err != nil || m["t"] != "welcome" {
		fmt.Fprintln(os.Stderr, "hostile: no welcome:", m, err)
		return 4
	}
	out := os.Getenv(outEnv)
	report(map[string]any{"pid": os.Getpid(), "slot": slot, "welcome": true})
	waitFile(filepath.Join(out, "go"))
	if slot == 0 {
		waitFile(filepath.Join(out, "check"))
		writeRaw(ch, `{"t":"stats","id":1}`)
		m, err := readRaw(r)
		report(map[string]any{"pid": os.Getpid(), "slot": 0, "stats": fmt.Sprint(m["t"], " ", m["id"], " ", err)})
	} else {
		attack := hostileAttacks[slot-1]
		go attackWith(ch, attack)
		code, closed := "", false
		_ = ch.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			m, err := readRaw(r)
			if err != nil { // EOF, or a reset when the primary left frames unread
				closed = !errors.Is(err, os.ErrDeadlineExceeded)
				break
			}
			if m["t"] == "error" {
				code = fmt.Sprint(m["code"])
			}
		}
		report(map[string]any{"pid": os.Getpid(), "slot": slot, "attack": attack, "code": code, "closed": closed})
	}
	sig := make(chan os.Signal, 1)
	signalNotify(sig)
	for s := range sig {
		if s == syscall.SIGTERM {
			return 0
		}
	}
	return 0
}

// attackWith sends the frames of attack, stopping at the first failed
// write.
func attackWith(w io.Writer, attack string) {
	send := func(body string) bool { return writeRaw(w, body) == nil }
	switch attack {
	case "subscribe-big": // 300 topics of 512 KiB: ~150 MB if kept
		pad := strings.Repeat("t", 512<<10)
		for i := 0; i < 300 && send(fmt.Sprintf(`{"t":"subscribe","topic":"%d%s"}`, i, pad)); i++ {
		}
	case "subscribe-many": // 200,000 small topics
		for i := 0; i < 200000 && send(fmt.Sprintf(`{"t":"subscribe","topic":"topic-%034d"}`, i)); i++ {
		}
	case "gauges": // heartbeats of ~1 MiB of gauges each
		var b strings.Builder
		b.WriteString(`{"t":"heartbeat","gauges":{`)
		for i := 0; b.Len() < 1000<<10; i++ {
			fmt.Fprintf(&b, `"g%d":1,`, i)
		}
		body := strings.TrimSuffix(b.String(), ",") + "}}"
		for i := 0; i < 50 && send(body); i++ {
		}
	case "recycle-big": // a reason of 1 MB for the event log
		send(`{"t":"recycle","reason":"` + strings.Repeat("r", 1000<<10) + `"}`)
	}
}

// writeRaw writes one frame: the body's length, big endian, then body.
func writeRaw(w io.Writer, body string) error {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

// readRaw reads one frame into a map.
func readRaw(r io.Reader) (map[string]any, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(body, &m)
}

// waitFile waits until path exists.
func waitFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rssOf returns the resident memory of pid, in bytes.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// reports reads every worker report in dir.
func reports(dir string) []map[string]any {
	var all []map[string]any
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				all = append(all, m)
			}
		}
	}
	return all
}

// TestHostileWorker runs a real primary whose workers attack it through
// their channels with frames that used to make it keep memory without
// bound: each is cut off with a protocol error, the primary's memory stays
// flat, and the polite worker is served as before.
func TestHostileWorker(t *testing.T) {
	workers := 1 + len(hostileAttacks)
	pp := startPrimary(t, primaryConfig{Workers: workers, Helper: "hostile"})
	find := func(key string) map[int]map[string]any {
		by := map[int]map[string]any{}
		for _, m := range reports(pp.out) {
			if _, ok := m[key]; ok {
				by[int(m["slot"].(float64))] = m
			}
		}
		return by
	}
	waitFor(t, "every worker's welcome", func() bool { return len(find("welcome")) == workers })
	pids := pp.workerPIDs()
	before := rssOf(t, pp.cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(pp.out, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every attack's outcome", func() bool { return len(find("attack")) == len(hostileAttacks) })
	after := rssOf(t, pp.cmd.Process.Pid)
	t.Logf("primary RSS %.1f MiB before the attacks, %.1f MiB after (%+.1f MiB)",
		float64(before)/(1<<20), float64(after)/(1<<20), float64(after-before)/(1<<20))
	for slot, m := range find("attack") {
		if m["code"] != "protocol_error" || m["closed"] != true {
			t.Errorf("slot %d, %s: error %q, closed %v; want a protocol_error and the channel closed",
				slot, m["attack"], m["code"], m["closed"])
		}
	}
	if grew := after - before; grew > 32<<20 {
		t.Errorf("the primary's RSS grew by %d MiB; want less than 32", grew>>20)
	}
	if err := os.WriteFile(filepath.Join(pp.out, "check"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the polite worker's stats", func() bool { return len(find("stats")) == 1 })
	if got := find("stats")[0]["stats"]; got != "reply 1 <nil>" {
		t.Errorf("polite worker's stats request: %v; want its reply", got)
	}
	if now := pp.workerPIDs(); fmt.Sprint(now) != fmt.Sprint(pids) {
		t.Errorf("workers changed during the attacks: %v, then %v", pids, now)
	}
}
