package registry

import (
	"maps"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		in     string
		scheme string
		params map[string]string
	}{
		{`Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:apache/airflow:pull"`, "bearer",
			map[string]string{"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:apache/airflow:pull"}},
		{`Basic realm="refreshd-test"`, "basic", map[string]string{"realm": "refreshd-test"}},
		{`Bearer realm="https://auth.docker.io/token", service="registry.docker.io", scope="repository:a:pull,push"`, "bearer",
			map[string]string{"realm": "https://auth.docker.io/token", "service": "registry.docker.io", "scope": "repository:a:pull,push"}},
		{`Bearer realm=https://t.example/token,service=t`, "bearer", map[string]string{"realm": "https://t.example/token", "service": "t"}},
		{`Bearer realm="a\"b"`, "bearer", map[string]string{"realm": `a"b`}},
		{``, "", map[string]string{}},
	}
	for _, tt := range tests {
		ch := parseChallenge(tt.in)
		if ch.Scheme != tt.scheme || !maps.Equal(ch.Params, tt.params) {
			t.Errorf("parseChallenge(%q) = %q %v; want %q %v", tt.in, ch.Scheme, ch.Params, tt.scheme, tt.params)
		}
	}
}
