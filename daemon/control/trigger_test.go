package control

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// triggerService records the params of each trigger that reaches it.
type triggerService struct {
	Service
	got []map[string]string
}

func (s *triggerService) Trigger(_ context.Context, plan string, params map[string]string) (*Triggered, error) {
	s.got = append(s.got, params)
	return &Triggered{Run: plan + "-1", Plan: plan, Params: params}, nil
}

// A trigger's params travel in the query; a body (JSON params, a form) is refused with 400,
// and the run is not started, rather than the body being ignored and the plan's defaults
// used.
func TestTriggerRefusesABody(t *testing.T) {
	tests := []struct {
		name, query, body, contentType string
		want                           int
	}{
		{"query params", "?param=ref=v2", "", "", http.StatusOK},
		{"no params", "", "", "", http.StatusOK},
		{"JSON params", "", `{"params": {"ref": "v2"}}`, "application/json", http.StatusBadRequest},
		{"JSON and query", "?param=ref=v2", `{"ref": "v3"}`, "application/json", http.StatusBadRequest},
		{"form", "", "param=ref%3Dv2", "application/x-www-form-urlencoded", http.StatusBadRequest},
		{"one byte", "", "x", "", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &triggerService{}
			srv := httptest.NewServer(Handler(svc, slog.New(slog.NewTextHandler(io.Discard, nil))))
			defer srv.Close()
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/v1/plans/p/run"+tt.query, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.want, answer)
			}
			started := len(svc.got) == 1
			if started != (tt.want == http.StatusOK) {
				t.Errorf("triggers that reached the daemon: %v; want one only when the answer is 200", svc.got)
			}
			if tt.want == http.StatusBadRequest && !strings.Contains(string(answer), "?param=NAME=VALUE") {
				t.Errorf("400 does not say where params go: %s", answer)
			}
		})
	}
}
