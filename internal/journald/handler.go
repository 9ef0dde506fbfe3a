// Package journald is a log/slog handler that writes to the systemd journal in its native
// protocol (through github.com/coreos/go-systemd/v22/journal): each record keeps its
// priority (so `journalctl -p err` lists exactly the errors) and its attributes become
// journal fields (PLAN=, RUN=, STEP=, ATTEMPT=, ...), which `journalctl PLAN=airflow-main`
// filters on. The MESSAGE is the record's message followed by its attributes in logfmt,
// as the text handler writes them minus time and level, which the journal keeps itself.
package journald

import (
	"bytes"
	"context"
	"log/slog"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"

	"github.com/coreos/go-systemd/v22/journal"
)

// SendFunc delivers one entry; journal.Send is the real one.
type SendFunc func(message string, priority journal.Priority, fields map[string]string) error

// Options configure a Handler.
type Options struct {
	Level slog.Leveler
	// Identifier is SYSLOG_IDENTIFIER ("refreshd").
	Identifier string
	// Send delivers entries (nil: journal.Send).
	Send SendFunc
	// Fallback receives the text form of a record the journal refused (socket gone, entry
	// too large for every transport), so that nothing is lost silently.
	Fallback slog.Handler
	// Module is the Go module path ("github.com/refreshd/refreshd"); CODE_FILE is given
	// relative to it ("executor/engine.go"), never as a path on the machine that built the
	// binary. Empty: the main module of the running binary's build information.
	Module string
}

// Handler is a slog.Handler writing journal entries.
type Handler struct {
	opts   Options
	fields []field // attributes from WithAttrs, already flattened and named
	group  string  // field-name prefix from WithGroup ("G1_G2_")
	// mainPkg is the import path of package main, whose functions are named "main.f".
	mainPkg string
	// text renders "msg k=v ..." for MESSAGE; it carries the same WithAttrs/WithGroup.
	text *slog.TextHandler
	buf  *lockedBuffer
}

type field struct{ name, value string }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) { return l.b.Write(p) }

// NewHandler returns a journal handler.
func NewHandler(opts Options) *Handler {
	if opts.Send == nil {
		opts.Send = journal.Send
	}
	if opts.Level == nil {
		opts.Level = slog.LevelInfo
	}
	mainPkg := "main"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if opts.Module == "" {
			opts.Module = bi.Main.Path
		}
		if bi.Path != "" {
			mainPkg = bi.Path // package main's import path ("github.com/refreshd/refreshd/cmd/refreshd")
		}
	}
	buf := &lockedBuffer{}
	return &Handler{opts: opts, mainPkg: mainPkg, buf: buf, text: slog.NewTextHandler(buf, &slog.HandlerOptions{
		Level: slog.LevelDebug, // the level is checked by Enabled
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && (a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey) {
				return slog.Attr{}
			}
			return a
		},
	})}
}

// StderrIsJournal reports whether stderr is connected to the journal: systemd sets
// JOURNAL_STREAM to the device and inode of the stream it gave the service, and only that
// stream counts (a child whose stderr was redirected inherits the variable too).
func StderrIsJournal() bool {
	ok, err := journal.StderrIsJournalStream()
	return err == nil && ok
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.opts.Level.Level() }

// Priority maps a slog level to a syslog priority.
func Priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]string, len(h.fields)+r.NumAttrs()+4)
	for _, f := range h.fields {
		fields[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		addField(fields, h.group, a)
		return true
	})
	if h.opts.Identifier != "" {
		fields["SYSLOG_IDENTIFIER"] = h.opts.Identifier
	}
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		fields["CODE_FILE"], fields["CODE_LINE"], fields["CODE_FUNC"] = codeFile(f, h.opts.Module, h.mainPkg), strconv.Itoa(f.Line), f.Function
	}
	msg := h.message(ctx, r)
	if err := h.opts.Send(msg, Priority(r.Level), fields); err != nil {
		if h.opts.Fallback != nil {
			return h.opts.Fallback.Handle(ctx, r)
		}
		return err
	}
	return nil
}

// codeFile names f's source file by its package's import path, relative to module when the
// package is in it ("executor/engine.go"). The frame's own File is where the file was on
// the build machine (unless built with -trimpath): of no use on the box that reads the
// journal, and a leak of the build machine's layout.
func codeFile(f runtime.Frame, module, mainPkg string) string {
	pkg := f.Function
	slash := strings.LastIndexByte(pkg, '/') + 1
	if dot := strings.IndexByte(pkg[slash:], '.'); dot >= 0 {
		pkg = pkg[:slash+dot]
	}
	if pkg == "main" {
		pkg = mainPkg
	}
	base := path.Base(filepath.ToSlash(f.File))
	if module != "" {
		if pkg == module {
			return base
		}
		if rel, ok := strings.CutPrefix(pkg, module+"/"); ok {
			return rel + "/" + base
		}
	}
	if pkg == "" {
		return base
	}
	return pkg + "/" + base
}

// message is "MSG k=v ..." in the text handler's quoting.
func (h *Handler) message(ctx context.Context, r slog.Record) string {
	h.buf.mu.Lock()
	defer h.buf.mu.Unlock()
	h.buf.b.Reset()
	if err := h.text.Handle(ctx, r); err != nil {
		return r.Message
	}
	attrs := strings.TrimSuffix(h.buf.b.String(), "\n")
	if attrs == "" {
		return r.Message
	}
	return r.Message + " " + attrs
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	m := map[string]string{}
	for _, a := range attrs {
		addField(m, h.group, a)
	}
	h2.fields = append(append([]field(nil), h.fields...), fieldList(m)...)
	h2.text = h.text.WithAttrs(attrs).(*slog.TextHandler)
	if h.opts.Fallback != nil {
		h2.opts.Fallback = h.opts.Fallback.WithAttrs(attrs)
	}
	return &h2
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + fieldName(name) + "_"
	h2.text = h.text.WithGroup(name).(*slog.TextHandler)
	if h.opts.Fallback != nil {
		h2.opts.Fallback = h.opts.Fallback.WithGroup(name)
	}
	return &h2
}

func fieldList(m map[string]string) []field {
	out := make([]field, 0, len(m))
	for k, v := range m {
		out = append(out, field{k, v})
	}
	return out
}

// addField adds a (groups flattened with "_") under its journal field name.
func addField(m map[string]string, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if a.Key == "" && v.Kind() != slog.KindGroup {
		return
	}
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldName(a.Key) + "_"
		}
		for _, g := range v.Group() {
			addField(m, p, g)
		}
		return
	}
	name := prefix + fieldName(a.Key)
	if name == "" {
		return
	}
	m[name] = v.String()
}

// fieldName makes a journal field name of a key: upper case, [A-Z0-9_] only, not starting
// with "_" (reserved for trusted fields) or a digit; "plan" -> "PLAN", "exit-code" ->
// "EXIT_CODE". Keys that would collide with the journal's own fields (MESSAGE, PRIORITY,
// ...) get a "REFRESHD_" prefix.
func fieldName(key string) string {
	var b strings.Builder
	for _, c := range key {
		switch {
		case c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	n := strings.TrimLeft(b.String(), "_")
	if n == "" {
		return ""
	}
	if n[0] >= '0' && n[0] <= '9' || reserved(n) {
		n = "REFRESHD_" + n
	}
	if len(n) > 64 { // journald's limit on field names
		n = n[:64]
	}
	return n
}

// reserved are the journal's own field names, which a log key must not overwrite.
func reserved(name string) bool {
	switch name {
	case "MESSAGE", "MESSAGE_ID", "PRIORITY", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
		"SYSLOG_FACILITY", "SYSLOG_IDENTIFIER", "SYSLOG_PID", "SYSLOG_TIMESTAMP", "SYSLOG_RAW",
		"DOCUMENTATION", "TID", "UNIT", "USER_UNIT", "INVOCATION_ID", "USER_INVOCATION_ID":
		return true
	}
	return false
}
