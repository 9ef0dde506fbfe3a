package httpserve

import (
	"net"
	"testing"
)

// TestHostsAllows: the names a listener answers to, for each kind of listen address; the
// forged names a DNS-rebinding page sends are refused.
func TestHostsAllows(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		name       string
		configured string
		listening  string
		extra      []string
		allow      []string
		refuse     []string
	}{
		{"loopback v4", "127.0.0.1:8080", "127.0.0.1:8080", nil,
			[]string{"127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "localhost.:8080"},
			[]string{"attacker.example.com:8080", "attacker.example.com", "127.0.0.1:8081", "localhost", "127.0.0.2:8080",
				"", ":8080", "127.0.0.1:x", "127.0.0.1:99999", "localhost:8080@evil", "10.0.0.1:8080", "[::1]:8080"}},
		{"loopback v6", "[::1]:9464", "[::1]:9464", nil,
			[]string{"[::1]:9464", "localhost:9464"},
			[]string{"127.0.0.1:9464", "[::1]:80", "evil.example:9464"}},
		{"asked as localhost", "localhost:8080", "127.0.0.1:8080", nil,
			[]string{"localhost:8080", "127.0.0.1:8080"},
			[]string{"localhost.evil.example:8080"}},
		{"port 80 without a port", "127.0.0.1:80", "127.0.0.1:80", nil,
			[]string{"127.0.0.1", "localhost", "localhost:80", "[127.0.0.1]"},
			[]string{"evil.example"}},
		{"wildcard: any IP literal, named hosts", "0.0.0.0:9464", "0.0.0.0:9464", []string{"build-box", "dash.example.com:443"},
			[]string{"10.1.2.3:9464", "192.168.0.7:9464", "[fe80::1]:9464", "build-box:9464", "BUILD-BOX:9464", "dash.example.com:443", "localhost:9464"},
			[]string{"build-box:9465", "dash.example.com:9464", "evil.example:9464", "10.1.2.3:80", "build-box.evil.example:9464"}},
		{"specific address", "192.0.2.10:8080", "192.0.2.10:8080", nil,
			[]string{"192.0.2.10:8080"},
			[]string{"192.0.2.11:8080", "localhost:8080", "evil.example:8080"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHosts(tt.configured, tcp(tt.listening), tt.extra)
			for _, host := range tt.allow {
				if !h.Allows(host) {
					t.Errorf("Host %q refused, want allowed", host)
				}
			}
			for _, host := range tt.refuse {
				if h.Allows(host) {
					t.Errorf("Host %q allowed, want refused", host)
				}
			}
		})
	}
}
