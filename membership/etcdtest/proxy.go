package etcdtest

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Proxy forwards TCP connections to one address. Freeze stops all traffic
// through it without closing anything, as a network partition would, and
// Thaw lets it flow again. It counts the bytes it forwards each way.
type Proxy struct {
	l      net.Listener
	target string

	toServer, toClient atomic.Int64

	mu     sync.Mutex
	gate   chan struct{} // closed while traffic flows
	conns  map[net.Conn]struct{}
	closed bool
	down   bool // connections are refused
	wg     sync.WaitGroup
}

// NewProxy starts a proxy to target on a 127.0.0.1 port chosen by the
// system.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	p := &Proxy{l: l, target: target, gate: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Bytes returns how many bytes the proxy forwarded to the server and to
// its clients so far.
func (p *Proxy) Bytes() (toServer, toClient int64) { return p.toServer.Load(), p.toClient.Load() }

// Addr returns the host:port clients connect to.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Freeze holds every byte in both directions until Thaw.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

// Thaw lets traffic flow again.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// Reset closes every connection open now, as a network failure would; the
// clients connect again.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// Disconnect closes every connection open now and refuses new ones until
// Connect, as a server that went away would.
func (p *Proxy) Disconnect() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
	p.Reset()
}

// Connect accepts connections again after Disconnect.
func (p *Proxy) Connect() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Close closes the listener and every connection, and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.l.Close()
	p.Thaw()
	p.wg.Wait()
}

// accept forwards each accepted connection until the listener closes.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			return
		}
		p.wg.Add(2)
		go p.pipe(out, in, &p.toServer)
		go p.pipe(in, out, &p.toClient)
	}
}

// track records a connection pair for Close; it reports false, having
// closed them, if the proxy is already closed.
func (p *Proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		if p.closed {
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
	}
	return !p.closed
}

// pipe copies src to dst, waiting at the gate before each write, and
// counts the bytes in n.
func (p *Proxy) pipe(dst, src net.Conn, n *atomic.Int64) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			w, werr := dst.Write(buf[:k])
			n.Add(int64(w))
			if werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection alike
		}
	}
}
