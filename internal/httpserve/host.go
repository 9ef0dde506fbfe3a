package httpserve

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
)

// Hosts is the set of names a TCP listener answers to (its Host header), the defence
// against DNS rebinding: a page of evil.example whose name an attacker points at 127.0.0.1
// makes the browser send "Host: evil.example:PORT", and is refused, so it can read no
// page, log or metric through the victim's browser.
//
// Allowed are: the address the listener was asked for as written (127.0.0.1:8080,
// localhost:8080, build-box:9464), the address it really listens on, localhost when it
// listens on a loopback or wildcard address, any IP literal of the machine when it listens
// on a wildcard address (0.0.0.0, [::]: rebinding needs a name, so an IP literal is never
// an attacker's), and the names given (--http-host), each with the listener's port (a Host
// without a port means 80). Names compare case-insensitively, a trailing dot ignored.
type Hosts struct {
	port     string
	names    map[string]bool // lower case, no trailing dot
	anyIP    bool
	loopback bool
}

// NewHosts is the set for a listener at listening (its Addr) asked for as configured
// (host:port, as the flag gave it after defaults), plus extra names (host or host:port; a
// name with a port is allowed with that port only).
func NewHosts(configured string, listening net.Addr, extra []string) *Hosts {
	h := &Hosts{names: map[string]bool{}}
	add := func(host string) { h.names[normHost(host)] = true }
	if host, port, err := net.SplitHostPort(configured); err == nil {
		h.port = port
		add(host)
	}
	if host, port, err := net.SplitHostPort(listening.String()); err == nil {
		h.port = port
		add(host)
		if ip, err := netip.ParseAddr(host); err == nil {
			h.anyIP = ip.IsUnspecified()
			h.loopback = ip.IsLoopback()
		}
	}
	if h.anyIP || h.loopback {
		add("localhost")
	}
	for _, e := range extra {
		if host, port, err := net.SplitHostPort(e); err == nil {
			h.names[normHost(host)+":"+port] = true
			continue
		}
		add(e)
	}
	return h
}

// Allows says whether a request with this Host header is for this listener.
func (h *Hosts) Allows(hostHeader string) bool {
	host, port := hostHeader, "80"
	if i := strings.LastIndexByte(hostHeader, ':'); i >= 0 && !strings.HasSuffix(hostHeader, "]") {
		host, port = hostHeader[:i], hostHeader[i+1:]
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
	}
	host = normHost(host)
	if host == "" {
		return false
	}
	if h.names[host+":"+port] {
		return true
	}
	if port != h.port {
		return false
	}
	if h.names[host] {
		return true
	}
	if h.anyIP {
		_, err := netip.ParseAddr(host)
		return err == nil
	}
	return false
}

func normHost(host string) string {
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(host, "]"), "["), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String()
	}
	return strings.ToLower(host)
}

// CheckHost answers 421 Misdirected Request to a request whose Host is not one of hosts,
// and passes the others to next. 421 rather than 403: nothing is wrong with the client's
// rights, the request reached a server that does not serve that name, which is exactly
// what 421 says (RFC 9110, 15.5.20); a client that meant another server retries there.
func CheckHost(hosts *Hosts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hosts.Allows(r.Host) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusMisdirectedRequest)
			w.Write([]byte("421 misdirected request: this server does not answer to the name " +
				strconv.Quote(r.Host) + "; refreshd daemon --http-host NAME allows another name\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
