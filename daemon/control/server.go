package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/refreshd/refreshd/plan"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/refreshd/refreshd/history"
	"github.com/refreshd/refreshd/internal/httpserve"
)

// Listen opens the control socket at path with mode 0660 and, if group is not empty, that
// group. A socket file left by a dead daemon is removed; one that still answers is an error,
// so two daemons never share a socket.
func Listen(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen on %s: another daemon is listening there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	gid := -1
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("socket group %q: %w", group, err)
		}
		if gid, err = strconv.Atoi(g.Gid); err != nil {
			return nil, fmt.Errorf("socket group %q: gid %q: %w", group, g.Gid, err)
		}
	}
	// The socket is made in a private (0700) directory next to path, given its mode and
	// group there, and only then renamed into place: nobody can connect before its
	// permissions are final, and the process umask (shared by every goroutine) is left alone.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".refreshd-sock-")
	if err != nil {
		return nil, fmt.Errorf("listen on %s: create private directory: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	staged := filepath.Join(tmp, "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: staged, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The file moves: the listener must not unlink the staged name on Close; socketListener
	// removes the final one instead.
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(staged, 0o660); err != nil {
		ul.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	if gid >= 0 {
		if err := os.Chown(staged, -1, gid); err != nil {
			ul.Close()
			return nil, fmt.Errorf("chown socket %s to group %s: %w", path, group, err)
		}
	}
	if err := os.Rename(staged, path); err != nil {
		ul.Close()
		return nil, fmt.Errorf("move socket into place at %s: %w", path, err)
	}
	return &socketListener{UnixListener: ul, path: path}, nil
}

// socketListener removes its socket file on Close, as a net.UnixListener does for the path
// it was created at.
type socketListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *socketListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("remove socket %s: %w", l.path, rerr)
		}
	})
	return err
}

// Handler serves svc's API.
func Handler(svc Service, log *slog.Logger) http.Handler {
	h := &handler{svc: svc, log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("GET /v1/plans", h.plans)
	mux.HandleFunc("POST /v1/plans/{plan}/run", h.trigger)
	mux.HandleFunc("GET /v1/runs", h.runs)
	mux.HandleFunc("GET /v1/runs/{id}", h.run)
	mux.HandleFunc("GET /v1/runs/{id}/logs", h.logs)
	mux.HandleFunc("POST /v1/runs/{id}/cancel", h.cancel)
	mux.HandleFunc("POST /v1/reload", h.reload)
	mux.HandleFunc("GET /v1/constraints", h.pins)
	mux.HandleFunc("GET /v1/caches", h.caches)
	mux.HandleFunc("GET /openapi.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(openAPIYAML)
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		v, err := openAPIValue()
		h.reply(w, r, v, err)
	})
	// Everything else: a known path asked with another method is 405 with Allow (what
	// ServeMux itself answers, but in the API's error shape); an unknown path is 404.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := allowedMethods(mux, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return cleanPaths(mux)
}

// cleanPaths answers a path that is not in its clean form (an empty segment as in
// /v1/runs//cancel, a "." or "..") with 404 and the API's error body. ServeMux would
// redirect it to the cleaned path: a 301 or 307 without a JSON body, which a client
// following it would turn into another request than the one it sent.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			writeError(w, http.StatusNotFound, fmt.Errorf("no endpoint %s %s: the path has an empty, \".\" or \"..\" segment", r.Method, r.URL.Path))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods mux serves r's path with, asking mux itself, so the
// answer cannot drift from the routes.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

type handler struct {
	svc Service
	log *slog.Logger
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.Status(r.Context())
	h.reply(w, r, st, err)
}

// plans answers the plans of the daemon: the same list, from the same call, as the plans
// of /v1/status (and so of refreshd status and the dashboard).
func (h *handler) plans(w http.ResponseWriter, r *http.Request) {
	st, err := h.svc.Status(r.Context())
	var plans []PlanStatus
	if st != nil {
		plans = st.Plans
	}
	if plans == nil {
		plans = []PlanStatus{}
	}
	h.reply(w, r, plans, err)
}

func (h *handler) trigger(w http.ResponseWriter, r *http.Request) {
	if err := noBody(r); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	params, err := queryParams(r.URL.Query()["param"])
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	t, err := h.svc.Trigger(r.Context(), r.PathValue("plan"), params)
	if err == nil {
		w.Header().Set("Location", "/v1/runs/"+t.Run)
	}
	h.reply(w, r, t, err)
}

func (h *handler) runs(w http.ResponseWriter, r *http.Request) {
	limit := 20
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("query parameter limit=%q: want a number of runs, 0 for all", s))
			return
		}
		limit = n
	}
	runs, err := h.svc.Runs(r.Context(), r.URL.Query().Get("plan"), limit)
	h.reply(w, r, runs, err)
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	run, err := h.svc.RunRecord(r.Context(), r.PathValue("id"))
	h.reply(w, r, run, err)
}

func (h *handler) cancel(w http.ResponseWriter, r *http.Request) {
	err := h.svc.Cancel(r.Context(), r.PathValue("id"))
	h.reply(w, r, map[string]string{"cancelled": r.PathValue("id")}, err)
}

// pins answers the constraint history: ?package= (a name or its prefix, compared as PEP 503
// does), ?branch=, ?limit= (1 to 1,000, default 100).
func (h *handler) pins(w http.ResponseWriter, r *http.Request) {
	q := history.PinQuery{Package: r.URL.Query().Get("package"), Branch: r.URL.Query().Get("branch")}
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("query parameter limit=%q: want a number of pins from 1 to 1000", s))
			return
		}
		q.Limit = n
	}
	pins, err := h.svc.Pins(r.Context(), q)
	if pins == nil {
		pins = []history.Pin{}
	}
	h.reply(w, r, pins, err)
}

func (h *handler) caches(w http.ResponseWriter, r *http.Request) {
	tags, err := h.svc.Caches(r.Context())
	if tags == nil {
		tags = []CacheTag{}
	}
	h.reply(w, r, tags, err)
}

func (h *handler) reload(w http.ResponseWriter, r *http.Request) {
	res, err := h.svc.Reload(r.Context())
	h.reply(w, r, res, err)
}

func (h *handler) logs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	follow := false
	if s := q.Get("follow"); s != "" {
		var err error
		if follow, err = strconv.ParseBool(s); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("query parameter follow=%q: want 1 or 0", s))
			return
		}
	}
	// Check the run exists before committing to a 200 and a stream.
	if _, err := h.svc.RunRecord(r.Context(), r.PathValue("id")); err != nil && !errors.Is(err, ErrConflict) {
		h.reply(w, r, nil, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	lw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	if follow {
		// A follower gets the headers now: steps may print nothing for a long time (a
		// thousand quiet /bin/true instances), and the client bounds its wait for them.
		w.WriteHeader(http.StatusOK)
		if err := lw.rc.Flush(); err != nil {
			return
		}
		lw.started = true
	}
	if err := h.svc.Logs(r.Context(), r.PathValue("id"), q.Get("step"), follow, lw); err != nil {
		if !lw.started {
			h.reply(w, r, nil, err)
			return
		}
		h.log.Warn("log stream ended early", "run", r.PathValue("id"), "err", err)
	}
}

type flushWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (f *flushWriter) WriteLine(line string) error {
	f.started = true
	if _, err := io.WriteString(f.w, strings.TrimRight(line, "\n")+"\n"); err != nil {
		return err
	}
	return f.rc.Flush()
}

func (h *handler) reply(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, ErrConflict):
			code = http.StatusConflict
		case errors.Is(err, ErrInvalid):
			code = http.StatusBadRequest
		case errors.Is(err, ErrStopping), errors.Is(err, context.Canceled):
			code = http.StatusServiceUnavailable
		}
		if code == http.StatusInternalServerError {
			h.log.Error("control request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, code, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		h.log.Warn("write control response", "path", r.URL.Path, "err", err)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

// Serve serves the API on l until ctx is done, within httpserve's bounds, then shuts down,
// giving open requests (log followers) a moment to finish.
func Serve(ctx context.Context, l net.Listener, svc Service, log *slog.Logger) error {
	return httpserve.Serve(ctx, l, Handler(svc, log), httpserve.DefaultLimits(), "control socket "+l.Addr().String())
}

// noBody refuses a trigger with a request body. A run's params travel in the query
// (?param=NAME=VALUE); a client posting them as JSON would otherwise get a run with the
// plan's defaults and believe its params were used. One byte is read, whatever the body's
// size or Content-Type.
func noBody(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if n, _ := r.Body.Read(make([]byte, 1)); n == 0 && r.ContentLength <= 0 {
		return nil
	}
	return errors.New("a run trigger takes no request body: give params in the query, ?param=NAME=VALUE (repeatable)")
}

// queryParams reads a trigger's ?param=NAME=VALUE (repeatable) into NAME -> VALUE.
func queryParams(args []string) (map[string]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(args))
	for _, a := range args {
		k, v, err := plan.ParseParamArg(a)
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("param %s given twice", k)
		}
		out[k] = v
	}
	return out, nil
}
