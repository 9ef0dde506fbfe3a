package redact

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestRedactor(t *testing.T) {
	const secret = "p@ss word/+="
	const pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\nAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n"
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"verbatim", []string{secret}, "token " + secret + " end", "token *** end"},
		{"query escaped", []string{secret}, "https://h/x?t=" + url.QueryEscape(secret), "https://h/x?t=***"},
		{"path escaped", []string{secret}, "https://h/" + url.PathEscape(secret), "https://h/***"},
		{"every byte percent-encoded", []string{"a@b/c"}, "u=%61%40%62%2F%63.", "u=***."},
		{"lower-case percent-encoding", []string{"a@b/c"}, "u=a%40b%2fc.", "u=***."},
		{"basic auth base64", []string{secret}, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(secret)), "Authorization: Basic ***"},
		{"longest first", []string{"abc", "abcdef"}, "x abcdef y abc", "x *** y ***"},
		{"empty secret ignored", []string{""}, "nothing to hide", "nothing to hide"},
		{"blank secret ignored", []string{" \n"}, "nothing  to hide", "nothing  to hide"},
		{"no secrets", nil, "plain", "plain"},
		{"every occurrence", []string{"k"}, "k-k-k", "***-***-***"},
		{"surrounding white space", []string{"tok3n-value  \t"}, "auth tok3n-value;", "auth ***;"},
		{"a line of a multi-line secret", []string{pem}, "  AASCBKcwggSjAgEAAoIBAQC7", "  ***"},
		{"short lines of a multi-line secret stay", []string{"line-one-secret\nab\n"}, "ab line-one-secret", "ab ***"},
		{"go-quoted in an error", []string{"a\"b\\c"}, `parse "a\"b\\c": bad`, `parse "***": bad`},
		{"json-escaped", []string{"x<y>&z"}, `{"v":"x\u003cy\u003e\u0026z"}`, `{"v":"***"}`},
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

// TestURLInError checks the form net/http puts a URL in when a request fails: the secret URL
// (a webhook held in a secret) re-encoded by url.URL.String.
func TestURLInError(t *testing.T) {
	secret := "http://127.0.0.1:1/hooks/T0/B1?token=a b/c"
	_, err := http.Get(secret)
	if err == nil {
		t.Skip("port 1 answered")
	}
	got := New(secret).String(err.Error())
	if strings.Contains(got, "T0/B1") || strings.Contains(got, "token") {
		t.Errorf("the URL leaks from %q", got)
	}
}

// TestBase64AnyAlignment encodes secrets after prefixes of every length (as "user:" precedes
// a token in basic auth) and before suffixes, and checks that no decoding of what is left
// after redaction recovers the secret, nor a run of minPart of its bytes.
func TestBase64AnyAlignment(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	prefixes := []string{"", "u", "us", "user:", "x-access-token:", "AWS:", "oauth2accesstoken:"}
	for i := 0; i < 200; i++ {
		secret := randomSecret(rnd, 8+rnd.IntN(40))
		r := New(secret)
		for _, p := range prefixes {
			suffix := randomSecret(rnd, rnd.IntN(4))
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
				in := "auth " + enc.EncodeToString([]byte(p+secret+suffix)) + " end"
				out := r.String(in)
				if !strings.Contains(out, Mask) {
					t.Fatalf("prefix %q: nothing masked in %q", p, out)
				}
				if leak := recoverable(out, secret); leak != "" {
					t.Fatalf("prefix %q secret %q: %q still decodes to %q", p, secret, out, leak)
				}
			}
		}
	}
}

func randomSecret(rnd *rand.Rand, n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@:/+=-_."
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[rnd.IntN(len(chars))]
	}
	return string(b)
}

// recoverable decodes every piece of text between masks at every alignment, in both base64
// alphabets, and returns a run of minPart bytes of secret found in a decoding, or "".
func recoverable(text, secret string) string {
	for _, piece := range strings.Split(text, Mask) {
		for _, word := range strings.Fields(piece) {
			word = strings.TrimRight(word, "=")
			for off := 0; off < 4 && off < len(word); off++ {
				w := word[off:]
				w = w[:len(w)/4*4]
				for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
					dec, err := enc.DecodeString(w)
					if err != nil {
						continue
					}
					for j := 0; j+minPart <= len(secret); j++ {
						if strings.Contains(string(dec), secret[j:j+minPart]) {
							return secret[j : j+minPart]
						}
					}
				}
			}
		}
	}
	return ""
}

// TestEncodingsCoverJSONPayload shows a secret inside a JSON webhook payload is masked.
func TestEncodingsCoverJSONPayload(t *testing.T) {
	secret := `s3cr&t"<x>`
	b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf("login with %s failed", secret)})
	if got := New(secret).String(string(b)); strings.Contains(got, "s3cr") {
		t.Errorf("payload leaks: %s", got)
	}
}

func TestSafeCut(t *testing.T) {
	r := New("supersecret")
	buf := []byte("output line ending in super")
	if got := r.SafeCut(buf); got != len(buf)-len("super") {
		t.Errorf("SafeCut = %d, want %d", got, len(buf)-len("super"))
	}
	if got := (*Redactor)(nil).SafeCut(buf); got != len(buf) {
		t.Errorf("nil SafeCut = %d", got)
	}
}
