package plan

import "testing"

// TestWebhookRenderURL: a notify URL is rendered by the plan's template engine; a value is
// inserted as is (never rendered again), and a secret without a value is an error naming it.
func TestWebhookRenderURL(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		secrets   map[string]string
		want, err string
	}{
		{"plain", "https://hooks.example/a", nil, "https://hooks.example/a", ""},
		{"whole url", "{{ .secrets.URL }}", map[string]string{"URL": "https://hooks.example/T"}, "https://hooks.example/T", ""},
		{"in the query", "https://h.example/x?key={{.secrets.KEY}}", map[string]string{"KEY": "k"}, "https://h.example/x?key=k", ""},
		{"a value is not a template", "https://h.example/{{ .secrets.KEY }}", map[string]string{"KEY": "{{ .secrets.OTHER }}"}, "https://h.example/{{ .secrets.OTHER }}", ""},
		{"missing", "https://h.example/{{ .secrets.GONE }}", map[string]string{"KEY": "k"}, "", `notify url at f.yaml:3:9: template: t:1:29: executing "t" at <.secrets.GONE>: map has no entry for key "GONE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := Webhook{Pos: Pos{File: "f.yaml", Line: 3, Col: 9}, URL: tc.url}
			got, err := w.RenderURL(tc.secrets)
			if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
				t.Errorf("RenderURL = %q, %v; want %q, %q", got, err, tc.want, tc.err)
			}
		})
	}
}
