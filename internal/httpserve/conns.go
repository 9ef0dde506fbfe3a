package httpserve

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// conns caps the connections a listener holds open without ever letting idle ones keep a
// new client out: when the cap (or a client's share of it) is reached, the connection that
// has sat longest without a request in flight (silent since accept, or idle between
// keep-alive requests) is closed to make room. Only when every held connection has a
// request in flight does a new one wait in the kernel's backlog, and requests end (their
// handlers are bounded), so accept is never held off for ever by clients that send
// nothing. A flood of silent or idle connections thus costs the daemon at most the cap in
// descriptors and delays a good request by no more than one accept.
type conns struct {
	max       int
	perClient int // per remote IP (TCP); 0 or a Unix socket: no per-client share

	mu     sync.Mutex
	held   map[net.Conn]*heldConn
	per    map[string]int
	freed  chan struct{} // a token when a connection closes
	closed chan struct{}
	once   sync.Once
}

type heldConn struct {
	client string
	busy   bool      // a request is in flight (http.StateActive)
	since  time.Time // accepted, or idle since
}

func newConns(max, perClient int) *conns {
	return &conns{max: max, perClient: perClient, held: map[net.Conn]*heldConn{}, per: map[string]int{},
		freed: make(chan struct{}, 1), closed: make(chan struct{})}
}

// listener wraps l so that Accept admits each connection within the caps.
func (c *conns) listener(l net.Listener) net.Listener { return &capListener{Listener: l, c: c} }

type capListener struct {
	net.Listener
	c *conns
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.c.admit(conn) {
			return conn, nil
		}
	}
}

func (l *capListener) Close() error {
	l.c.once.Do(func() { close(l.c.closed) })
	return l.Listener.Close()
}

// clientOf is the remote IP of a TCP connection; "" (no per-client share) otherwise.
func clientOf(conn net.Conn) string {
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return ""
}

// admit makes room for conn and holds it, or closes it when its client already has its
// whole share busy with requests. It waits while every held connection is busy.
func (c *conns) admit(conn net.Conn) bool {
	client := clientOf(conn)
	for {
		c.mu.Lock()
		if client != "" && c.perClient > 0 && c.per[client] >= c.perClient && !c.evictLocked(client) {
			c.mu.Unlock()
			conn.Close() // its own requests hold its share: it waits for none of them
			return false
		}
		if len(c.held) < c.max || c.evictLocked("") {
			c.held[conn] = &heldConn{client: client, since: time.Now()}
			c.per[client]++
			c.mu.Unlock()
			return true
		}
		c.mu.Unlock()
		select {
		case <-c.freed:
		case <-c.closed:
			conn.Close()
			return false
		}
	}
}

// evictLocked closes the held connection (of client, or of anyone for "") that has gone
// longest without a request in flight, and says whether there was one.
func (c *conns) evictLocked(client string) bool {
	var victim net.Conn
	var oldest time.Time
	for conn, h := range c.held {
		if h.busy || (client != "" && h.client != client) {
			continue
		}
		if victim == nil || h.since.Before(oldest) {
			victim, oldest = conn, h.since
		}
	}
	if victim == nil {
		return false
	}
	c.dropLocked(victim)
	victim.Close()
	return true
}

func (c *conns) dropLocked(conn net.Conn) {
	h, ok := c.held[conn]
	if !ok {
		return
	}
	delete(c.held, conn)
	if c.per[h.client]--; c.per[h.client] <= 0 {
		delete(c.per, h.client)
	}
	select {
	case c.freed <- struct{}{}:
	default:
	}
}

// state is the server's ConnState hook: it tracks which connections have a request in
// flight and forgets closed (or hijacked) ones.
func (c *conns) state(conn net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateActive:
		if h := c.held[conn]; h != nil {
			h.busy = true
		}
	case http.StateIdle:
		if h := c.held[conn]; h != nil {
			h.busy, h.since = false, time.Now()
		}
	case http.StateClosed, http.StateHijacked:
		c.dropLocked(conn)
	}
}
