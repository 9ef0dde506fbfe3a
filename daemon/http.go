package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/internal/httpserve"
)

// httpListener is one TCP listener of the daemon and what it serves: /metrics, the
// dashboard, or both when --metrics-addr and --http name the same address.
type httpListener struct {
	l     net.Listener
	mux   *http.ServeMux
	serve []string // "metrics", "dashboard"
}

// listenHTTP opens the daemon's TCP listeners, one per distinct address. Nothing is
// opened when neither metrics nor the dashboard is asked for.
func (d *Daemon) listenHTTP() ([]*httpListener, error) {
	var out []*httpListener
	byAddr := map[string]*httpListener{}
	add := func(flag, addr, what string, register func(*http.ServeMux)) error {
		resolved, err := metrics.ResolveAddr(flag, addr)
		if err != nil {
			return err
		}
		hl := byAddr[resolved]
		if hl == nil {
			l, err := net.Listen("tcp", resolved)
			if err != nil {
				return fmt.Errorf("listen for %s on %s: %w", what, resolved, err)
			}
			hl = &httpListener{l: l, mux: http.NewServeMux()}
			byAddr[resolved] = hl
			out = append(out, hl)
		}
		register(hl.mux)
		hl.serve = append(hl.serve, what)
		return nil
	}
	closeAll := func() {
		for _, hl := range out {
			hl.l.Close()
		}
	}
	if d.metrics != nil {
		err := add("--metrics-addr", d.cfg.MetricsAddr, "metrics", func(m *http.ServeMux) { m.Handle("GET /metrics", d.metrics.Handler()) })
		if err != nil {
			closeAll()
			return nil, err
		}
	}
	if d.web != nil {
		if err := add("--http", d.cfg.HTTPAddr, "dashboard", d.web.Register); err != nil {
			closeAll()
			return nil, err
		}
	}
	return out, nil
}

// serveHTTP serves hl within httpserve's bounds until ctx is done. A live log being
// followed is an open request: the shutdown's grace ends it.
func serveHTTP(ctx context.Context, hl *httpListener, log *slog.Logger) error {
	what := strings.Join(hl.serve, " and ")
	log.Info("serving "+what, "addr", hl.l.Addr().String())
	return httpserve.Serve(ctx, hl.l, hl.mux, httpserve.DefaultLimits(), what+" on "+hl.l.Addr().String())
}
