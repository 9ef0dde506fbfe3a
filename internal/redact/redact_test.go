package redact

import (
	"encoding/base64"
	"net/url"
	"testing"
)

func TestRedactor(t *testing.T) {
	const secret = "p@ss word/+="
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"verbatim", []string{secret}, "token " + secret + " end", "token *** end"},
		{"query escaped", []string{secret}, "https://h/x?t=" + url.QueryEscape(secret), "https://h/x?t=***"},
		{"path escaped", []string{secret}, "https://h/" + url.PathEscape(secret), "https://h/***"},
		{"basic auth base64", []string{secret}, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(secret)), "Authorization: Basic ***"},
		{"longest first", []string{"abc", "abcdef"}, "x abcdef y abc", "x *** y ***"},
		{"empty secret ignored", []string{""}, "nothing to hide", "nothing to hide"},
		{"no secrets", nil, "plain", "plain"},
		{"every occurrence", []string{"k"}, "k-k-k", "***-***-***"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := New(tt.secrets...).String(tt.in); got != tt.want {
				t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var nilR *Redactor
	if got := nilR.String("x"); got != "x" {
		t.Errorf("nil redactor changed %q", got)
	}
}
