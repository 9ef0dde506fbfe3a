// Package web is refreshd's dashboard: read-only HTML pages of the plans, their runs and
// each run (a timeline of every step instance and attempt by builder node, the cache tags,
// the constraints commit), the logs of any attempt, and live output over server-sent
// events. Pages are rendered on the server with html/template and work without
// JavaScript; the one small script (embedded, like the stylesheet) follows live logs and
// keeps the other pages current without reloading them: on each event of one bounded
// stream of run changes (/events?scope=runs), it fetches the page again and swaps in its
// content.
// Nothing is fetched from anywhere else, and every page is built from what the daemon
// already serves on its control socket, whose records and logs carry no secret value.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/refreshd/refreshd/daemon/control"
	"github.com/refreshd/refreshd/history"
)

// Source is what the dashboard reads: the read-only part of control.Service, which the
// daemon implements.
//
// No method hands the dashboard a whole run: a run of 10,000 instances is megabytes of
// record, so pages read headers (the steps counted, history.StepSummary), one window of
// steps, or one step, and a page costs what it shows.
type Source interface {
	Status(ctx context.Context) (*control.Status, error)
	// Runs lists run headers (no steps, Summary counting them), newest first.
	Runs(ctx context.Context, plan string, limit int) ([]*history.Run, error)
	// RunHead is one run's header.
	RunHead(ctx context.Context, id string) (*history.Run, error)
	// RunPart is a run's header with Summary (its groups too) and at most limit of its
	// steps from index offset on.
	RunPart(ctx context.Context, id string, offset, limit int) (*history.Run, error)
	// RunStep is one step instance of a run and its index; nil when the run has none.
	RunStep(ctx context.Context, id, instance string) (int, *history.Step, error)
	Logs(ctx context.Context, id, step string, follow bool, w control.LineWriter) error
	// Pins is the constraint history: published package pins, newest first.
	Pins(ctx context.Context, q history.PinQuery) ([]history.Pin, error)
	// Caches are the watched cache tags.
	Caches(ctx context.Context) ([]control.CacheTag, error)
	// StepTimeouts are the attempt timeouts of plan's steps (the plan's own timeout for a
	// step without one), by step id; empty for a plan not loaded.
	StepTimeouts(ctx context.Context, plan string) (map[string]time.Duration, error)
}

// Config configures a Server.
type Config struct {
	Source  Source
	Logger  *slog.Logger
	Version string
	// Now is the clock of ages and of running bars (default time.Now).
	Now func() time.Time
	// PageSize is the number of runs on one page of a plan's runs (default 50).
	PageSize int
	// StepsPerPage is the number of step instances on one page of a run, in its steps
	// table and its timeline (default 200); StepGroups bounds the rows of the table of the
	// run's steps that a run of more than one page shows (default 200).
	StepsPerPage, StepGroups int
	// MaxStreams bounds the live log streams served at once (default 64), half of them
	// per client (remote IP; every SSH tunnel is 127.0.0.1): one more ends the oldest stream of the client holding the most, so
	// a flood of followers can neither pile up goroutines in the daemon nor keep a new
	// follower out.
	MaxStreams int
	// LogBytes bounds the attempt log shown on a page (default 2 MiB, the end of the
	// file); the whole file is always available as text.
	LogBytes int64
	// LiveGap is the least time between two events of the runs stream to one follower
	// (default 1 s): the changes within it are sent as one, so a page fetches itself again
	// at most once per gap however busy the runs.
	LiveGap time.Duration
}

//go:embed templates static
var assets embed.FS

// Server serves the dashboard. Build it with New; it is safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	pages  map[string]*template.Template
	static http.Handler
	slots  *streamSlots // the live streams being served
	feeds  *feeds       // what they follow, one reader per run and step
	// changes are the run changes the runs stream sends.
	changes *changes
}

// New builds a Server, parsing its embedded templates.
func New(cfg Config) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("web config: no Source")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.StepsPerPage <= 0 {
		cfg.StepsPerPage = 200
	}
	if cfg.StepGroups <= 0 {
		cfg.StepGroups = 200
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 64
	}
	if cfg.LogBytes <= 0 {
		cfg.LogBytes = 2 << 20
	}
	if cfg.LiveGap <= 0 {
		cfg.LiveGap = time.Second
	}
	s := &Server{cfg: cfg, log: cfg.Logger, pages: map[string]*template.Template{},
		slots: newStreamSlots(cfg.MaxStreams), feeds: newFeeds(cfg.Source, cfg.Logger), changes: newChanges()}
	for _, name := range []string{"plans", "runs", "run", "log", "error", "constraints", "caches"} {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse dashboard template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	s.static = http.StripPrefix("/static/", http.FileServerFS(static))
	return s, nil
}

// Register adds the dashboard's routes to mux, which may serve /metrics too. Only GET
// (and HEAD) is routed: the dashboard changes nothing.
func (s *Server) Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", s.secure(s.plansPage))
	mux.Handle("GET /plans/{plan...}", s.secure(s.runsPage))
	mux.Handle("GET /runs/{id...}", s.secure(s.runPage))
	mux.Handle("GET /log", s.secure(s.logPage))
	mux.Handle("GET /constraints", s.secure(s.constraintsPage))
	mux.Handle("GET /caches", s.secure(s.cachesPage))
	mux.Handle("GET /events", s.secure(s.events))
	mux.Handle("GET /static/", s.secure(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache") // assets change with the binary; revalidate
		s.static.ServeHTTP(w, r)
	}))
}

// Handler is a mux with only the dashboard's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.Register(mux)
	return mux
}

// contentSecurity allows only the dashboard's own stylesheet, script and event stream:
// even text from a log that slipped past escaping could not load or run anything.
const contentSecurity = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) secure(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurity)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h(w, r)
	})
}

// renderBuffer is how much of a page is held before the first byte is sent: a template
// error within it is still answered 500; the rest of a page streams to the client as it
// is rendered, so no page is ever whole in memory.
const renderBuffer = 64 << 10

// render writes a page, streamed (see renderBuffer). A template error after the first
// bytes went out is logged and the connection aborted, so the client sees a cut response,
// never a page that looks whole.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	pw := &pageWriter{w: w, status: status}
	err := s.pages[name].ExecuteTemplate(pw, "layout", data)
	if err == nil {
		err = pw.flush()
	}
	if err == nil {
		return
	}
	s.log.Error("render dashboard page", "page", name, "path", r.URL.Path, "err", err)
	if pw.started {
		panic(http.ErrAbortHandler)
	}
	http.Error(w, "internal error rendering the page (see the daemon's log)", http.StatusInternalServerError)
}

// pageWriter holds the first renderBuffer bytes of a page, then sends the headers and
// writes through.
type pageWriter struct {
	w       http.ResponseWriter
	status  int
	buf     []byte
	started bool
}

func (p *pageWriter) Write(b []byte) (int, error) {
	if !p.started && len(p.buf)+len(b) <= renderBuffer {
		p.buf = append(p.buf, b...)
		return len(b), nil
	}
	if err := p.flush(); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

func (p *pageWriter) flush() error {
	if !p.started {
		p.started = true
		p.w.Header().Set("Content-Type", "text/html; charset=utf-8")
		p.w.Header().Set("Cache-Control", "no-store")
		p.w.WriteHeader(p.status)
	}
	if len(p.buf) == 0 {
		return nil
	}
	_, err := p.w.Write(p.buf)
	p.buf = nil
	return err
}

// fail answers an error page: 404 for what does not exist, 503 while the daemon stops,
// 500 otherwise (logged).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, control.ErrNotFound), errors.Is(err, history.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, control.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, control.ErrStopping), errors.Is(err, context.Canceled):
		status = http.StatusServiceUnavailable
	case errors.Is(err, control.ErrConflict):
		status = http.StatusConflict
	default:
		s.log.Error("dashboard request", "path", r.URL.Path, "err", err)
	}
	p := errorPage{page: s.page(http.StatusText(status)), Status: status, Message: err.Error()}
	p.Live = ""
	s.render(w, r, status, "error", p)
}

// Errors the dashboard's own checks wrap, mapped to 400 and 404 like the control API's.
var (
	errInvalid  = control.ErrInvalid
	errNotFound = control.ErrNotFound
)
