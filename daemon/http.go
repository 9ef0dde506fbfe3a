package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/daemon/metrics"
	"github.com/refreshd/refreshd/internal/httpserve"
)

// httpListener is one TCP listener of the daemon and what it serves: /metrics, the
// dashboard, or both when --metrics-addr and --http name the same address.
type httpListener struct {
	l     net.Listener
	addr  string // the address as configured (after defaults), one of the names it answers to
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
			hl = &httpListener{l: l, addr: resolved, mux: http.NewServeMux()}
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
// followed is an open request: the shutdown's grace ends it. Every path of every TCP
// listener, /metrics included, answers only to the listener's own names and those of
// --http-host (httpserve.Hosts), and the machine's host name on a listener other machines
// reach: a scraper that names the target by IP and port, or by
// the name the address was given with, is served; a DNS-rebinding page is not.
func serveHTTP(ctx context.Context, hl *httpListener, extraHosts []string, log *slog.Logger) error {
	what := strings.Join(hl.serve, " and ")
	log.Info("serving "+what, "addr", hl.l.Addr().String())
	if ap, err := netip.ParseAddrPort(hl.l.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		// Reachable from other machines: the machine's own name is one they may use, and
		// no attacker can point it elsewhere for this machine's browser.
		if name, err := os.Hostname(); err == nil && name != "" {
			extraHosts = append(slices.Clip(extraHosts), name)
		}
	}
	h := httpserve.CheckHost(httpserve.NewHosts(hl.addr, hl.l.Addr(), extraHosts), hl.mux)
	return httpserve.Serve(ctx, hl.l, h, httpserve.DefaultLimits(), what+" on "+hl.l.Addr().String())
}
