package executor

import (
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// baseEnvNames are the variables a step inherits from refreshd's own environment. Everything
// else (the daemon's or the operator's shell's variables) stays out, so a step behaves the
// same under systemd and in a terminal, and nothing leaks into it by accident.
const baseEnvNames = "PATH HOME USER LOGNAME LANG LC_ALL TZ TMPDIR SSL_CERT_FILE SSL_CERT_DIR"

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stepEnv is the environment of an instance's processes, as "K=V": the clean base, then the
// plan and step env (already merged by expansion), then the secrets the step names (a run
// step's secrets:, nothing else: least privilege; built-in actions pass theirs in extra,
// from their own keys), then extra. Later entries win; the result has one entry per name,
// sorted.
func stepEnv(inst *plan.Instance, secrets map[string]string, dockerConfig string, extra []string) []string {
	env := make(map[string]string, len(inst.Env)+len(secrets)+10)
	for _, k := range strings.Fields(baseEnvNames) {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if env["PATH"] == "" {
		env["PATH"] = defaultPath
	}
	if dockerConfig != "" {
		env["DOCKER_CONFIG"] = dockerConfig
	}
	maps.Copy(env, inst.Env)
	if inst.Step != nil {
		for _, name := range inst.Step.Secrets {
			if v, ok := secrets[name]; ok {
				env[name] = v
			}
		}
	}
	for _, kv := range extra {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}
