package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Every way a value reaches a log line is masked: the message, string attributes, With
// attributes, groups, errors and other values printed as text; numbers and durations pass.
func TestHandlerMasksEveryValue(t *testing.T) {
	const secret = "s3cretValue42"
	var out bytes.Buffer
	log := slog.New(New(secret).Handler(slog.NewTextHandler(&out, nil))).With("step", "use[v="+secret+"]")
	log.WithGroup("g").Info("looked up "+secret,
		"url", "http://registry/v2/ci/manifests/"+secret,
		"err", errors.New("HEAD "+secret+": 503"),
		"refs", []string{"ok", "pre-" + secret},
		slog.Group("inner", "ref", "ci:"+secret),
		"n", 42, "took", 1500*time.Millisecond)
	got := out.String()
	if strings.Contains(got, secret) {
		t.Errorf("the log line holds the secret:\n%s", got)
	}
	for _, want := range []string{`step="use[v=***]"`, `msg="looked up ***"`, "g.url=http://registry/v2/ci/manifests/***", `g.err="HEAD ***: 503"`, "g.refs=\"[ok pre-***]\"", "g.inner.ref=ci:***", "g.n=42", "g.took=1.5s"} {
		if !strings.Contains(got, want) {
			t.Errorf("log line lacks %s:\n%s", want, got)
		}
	}
	if h := New().Handler(slog.DiscardHandler); h != slog.DiscardHandler {
		t.Errorf("a redactor without secrets wraps the handler: %T", h)
	}
}
