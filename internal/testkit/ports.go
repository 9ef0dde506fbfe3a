package testkit

import (
	"net"
	"strconv"
	"testing"
)

// FreePort asks the kernel for a free TCP port on 127.0.0.1. Another process may take it
// before the caller binds it; callers that start a server on it retry with a new port.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreeAddr is FreePort as a "127.0.0.1:PORT" listen address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
}
