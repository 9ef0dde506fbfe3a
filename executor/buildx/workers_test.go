package buildx

import (
	"slices"
	"testing"
)

// TestBuildctlTarget checks how the emulation guard addresses each kind of node: TLS flags
// from a remote node's driver options, and the docker host of a docker-container node. No
// docker engine runs here, so the docker-container cases are checked as argv and env only.
func TestBuildctlTarget(t *testing.T) {
	tests := []struct {
		name          string
		driver        string
		node          NodeState
		args, env     []string
		unaddressable bool
	}{
		{name: "remote plain", driver: "remote", node: NodeState{Name: "n0", Endpoint: "tcp://127.0.0.1:1234"},
			args: []string{"--addr=tcp://127.0.0.1:1234"}},
		{name: "remote tls", driver: "remote", node: NodeState{Name: "n0", Endpoint: "tcp://10.0.0.5:1234", DriverOpts: map[string]string{
			"cacert": "/etc/bk/ca.pem", "cert": "/etc/bk/cert.pem", "key": "/etc/bk/key.pem", "servername": "bk.example", "default-load": "true",
		}}, args: []string{"--addr=tcp://10.0.0.5:1234", "--tlscacert=/etc/bk/ca.pem", "--tlscert=/etc/bk/cert.pem",
			"--tlskey=/etc/bk/key.pem", "--tlsservername=bk.example"}},
		{name: "remote ca only", driver: "remote", node: NodeState{Name: "n0", Endpoint: "tcp://h:1", DriverOpts: map[string]string{"cacert": "/ca.pem"}},
			args: []string{"--addr=tcp://h:1", "--tlscacert=/ca.pem"}},
		{name: "docker-container on a docker host", driver: "docker-container", node: NodeState{Name: "arm", Endpoint: "ssh://ci@arm-host"},
			args: []string{"--addr=docker-container://buildx_buildkit_arm"}, env: []string{"DOCKER_HOST=ssh://ci@arm-host"}},
		{name: "docker-container on a context", driver: "docker-container", node: NodeState{Name: "arm", Endpoint: "arm builder"},
			args: []string{"--addr=docker-container://buildx_buildkit_arm?context=arm+builder"}},
		{name: "docker-container local", driver: "docker-container", node: NodeState{Name: "b0"},
			args: []string{"--addr=docker-container://buildx_buildkit_b0"}},
		{name: "kubernetes", driver: "kubernetes", node: NodeState{Name: "k0", Endpoint: "kubernetes:///b?deployment=x"}, unaddressable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, env, ok := buildctlTarget(tt.driver, tt.node)
			if ok == tt.unaddressable {
				t.Fatalf("addressable = %v, want %v", ok, !tt.unaddressable)
			}
			if !slices.Equal(args, tt.args) || !slices.Equal(env, tt.env) {
				t.Errorf("args %q env %q\nwant %q env %q", args, env, tt.args, tt.env)
			}
		})
	}
}
