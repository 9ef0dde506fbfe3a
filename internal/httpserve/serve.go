// Package httpserve serves refreshd's HTTP listeners (the control socket, metrics, the
// dashboard) with one set of bounds, so that no client, however many connections it opens
// or however long it keeps them idle, can take the daemon's file descriptors or keep a
// good request waiting: open connections are capped, and at the cap the one that has gone
// longest without a request in flight is closed to make room (conns); a connection that
// never sends a request is closed after ReadHeaderTimeout, and an idle keep-alive
// connection after IdleTimeout.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Limits bounds one listener.
type Limits struct {
	MaxConns          int           // connections open at once
	PerClient         int           // of them, from one remote IP (TCP listeners; 0: no share)
	ReadHeaderTimeout time.Duration // from accept (or the previous response) to a request's headers
	IdleTimeout       time.Duration // keep-alive connections with no request
	MaxHeaderBytes    int
	ShutdownGrace     time.Duration // open requests (log followers) may finish within it
}

// DefaultLimits are the bounds of refreshd's listeners: room for every operator and
// follower a build box has, far below the daemon's descriptor limit.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:          256,
		PerClient:         64,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ShutdownGrace:     2 * time.Second,
	}
}

// Serve serves h on l within lim until ctx is done, then shuts down, giving open requests
// lim.ShutdownGrace to finish before their connections are closed. what names the listener
// in errors ("control socket /run/refreshd/refreshd.sock").
func Serve(ctx context.Context, l net.Listener, h http.Handler, lim Limits, what string) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
	}
	if lim.MaxConns > 0 {
		c := newConns(lim.MaxConns, lim.PerClient)
		l = c.listener(l)
		srv.ConnState = c.state
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve %s: %w", what, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lim.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	return nil
}
