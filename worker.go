package herd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/herd-cluster/herd/internal/envvar"
	"github.com/herd-cluster/herd/internal/ipc"
)

// listenFDsStart is the first fd of the systemd socket-passing protocol.
const listenFDsStart = 3

// Worker is a Go worker's view of the cluster: its identity, its sockets and
// the way to say it is ready.
type Worker struct {
	id, count, gen, primaryPID, port int
	name                             string
	notifySocket                     string

	files []*os.File // from fd 3 on, in --listen order
	names []string

	idleTimeout time.Duration // for the stream listeners; 0: none
	ipc         *ipc.Client   // the channel to the primary; nil: none
	cluster     clusterIndex  // the cluster-wide index, with membership
	local       *Cluster      // single-process mode: delegate in-process

	mu      sync.Mutex
	streams map[int]net.Listener   // by index into files
	packets map[int]net.PacketConn // by index into files
	ready   bool
}

// ID returns the worker's slot, 0..Count()-1, kept across respawns.
func (w *Worker) ID() int { return w.id }

// Count returns the number of slots when this worker started.
func (w *Worker) Count() int { return w.count }

// Generation returns how many times this slot has been started, from 1.
func (w *Worker) Generation() int { return w.gen }

// PrimaryPID returns the pid of the primary (this process in single-process
// mode).
func (w *Worker) PrimaryPID() int { return w.primaryPID }

// Name returns the cluster's name.
func (w *Worker) Name() string { return w.name }

// Port returns the port of the first TCP listener, or 0.
func (w *Worker) Port() int { return w.port }

// Names returns the names of the sockets passed to the worker, in order.
func (w *Worker) Names() []string { return append([]string(nil), w.names...) }

// Listener returns the stream listener (TCP or unix) passed under name; ""
// means the first stream listener. Every call returns the same listener.
func (w *Worker) Listener(name string) (net.Listener, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, f := range w.files {
		if (name != "" && w.names[i] != name) || sockType(f) != unix.SOCK_STREAM {
			continue
		}
		if l := w.streams[i]; l != nil {
			return l, nil
		}
		l, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("herd: listener %q: %w", w.names[i], err)
		}
		if w.idleTimeout > 0 {
			l = idleListener{Listener: l, timeout: w.idleTimeout}
		}
		w.streams[i] = l
		return l, nil
	}
	if name == "" {
		return nil, errors.New("herd: no stream listener was passed to this worker")
	}
	return nil, fmt.Errorf("herd: no stream listener named %q (have %s)", name, strings.Join(w.names, ", "))
}

// Listeners returns every stream listener passed to the worker, by name.
func (w *Worker) Listeners() (map[string]net.Listener, error) {
	m := make(map[string]net.Listener)
	for i, f := range w.files {
		if sockType(f) != unix.SOCK_STREAM {
			continue
		}
		l, err := w.Listener(w.names[i])
		if err != nil {
			return nil, err
		}
		m[w.names[i]] = l
	}
	return m, nil
}

// PacketConn returns the datagram socket (udp:) passed under name; ""
// means the first one. Every call returns the same connection.
func (w *Worker) PacketConn(name string) (net.PacketConn, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, f := range w.files {
		if (name != "" && w.names[i] != name) || sockType(f) != unix.SOCK_DGRAM {
			continue
		}
		if c := w.packets[i]; c != nil {
			return c, nil
		}
		c, err := net.FilePacketConn(f)
		if err != nil {
			return nil, fmt.Errorf("herd: packet socket %q: %w", w.names[i], err)
		}
		w.packets[i] = c
		return c, nil
	}
	return nil, fmt.Errorf("herd: no datagram socket named %q", name)
}

// Ready tells the primary this worker is ready to serve. A rolling restart
// stops the old worker of a slot only once the new one is ready. Calling it
// again does nothing.
func (w *Worker) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ready || w.notifySocket == "" {
		w.ready = true
		return nil
	}
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		return fmt.Errorf("herd: telling the primary we are ready: %w", err)
	}
	w.ready = true
	return nil
}

// closeAll closes the sockets this worker holds. They stay open in the
// primary and the other workers.
func (w *Worker) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.streams {
		l.Close()
	}
	for _, c := range w.packets {
		c.Close()
	}
	for _, f := range w.files {
		f.Close()
	}
}

func (w *Worker) initMaps() {
	w.streams = make(map[int]net.Listener)
	w.packets = make(map[int]net.PacketConn)
}

// dupFile returns a new descriptor for f's socket, close-on-exec.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("herd: dup %s: %w", f.Name(), err)
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func sockType(f *os.File) int {
	t, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return -1
	}
	return t
}

// workerFromEnv reads the worker's identity and sockets from the
// environment the primary set.
func workerFromEnv() (*Worker, error) {
	w := &Worker{
		name:         os.Getenv(envvar.Name),
		notifySocket: os.Getenv(envvar.NotifySocket),
	}
	w.initMaps()
	var err error
	for _, v := range []struct {
		key string
		dst *int
	}{{envvar.WorkerID, &w.id}, {envvar.WorkerCount, &w.count}, {envvar.Generation, &w.gen},
		{envvar.PrimaryPID, &w.primaryPID}, {envvar.Port, &w.port}} {
		if *v.dst, err = atoiEnv(v.key, 0); err != nil {
			return nil, err
		}
	}
	if err := w.cluster.fromEnv(); err != nil {
		return nil, err
	}
	n, err := atoiEnv(envvar.ListenFDs, 0)
	if err != nil {
		return nil, err
	}
	names := strings.Split(os.Getenv(envvar.ListenFDNames), ":")
	for i := range n {
		name := fmt.Sprintf("listen%d", i)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		fd := listenFDsStart + i
		unix.CloseOnExec(fd)
		w.files = append(w.files, os.NewFile(uintptr(fd), name))
		w.names = append(w.names, name)
	}
	// Code in the worker that reads the systemd variables itself (go-systemd's
	// activation package) checks that they are meant for this process.
	if n > 0 {
		os.Setenv(envvar.ListenPID, strconv.Itoa(os.Getpid()))
	}
	return w, nil
}

// runWorker runs the work until the primary's stop signal arrives.
func (c *Cluster) runWorker(ctx context.Context) error {
	w, err := workerFromEnv()
	if err != nil {
		return err
	}
	w.idleTimeout = c.cfg.IdleTimeout
	defer w.closeAll()
	if err := w.openChannel(ctx); err != nil {
		return err
	}
	if w.ipc != nil {
		defer w.ipc.Close()
	}
	ctx, stop := signal.NotifyContext(ctx, c.cfg.StopSignal, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return c.work(ctx, w)
}
