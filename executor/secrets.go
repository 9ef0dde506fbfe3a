package executor

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/refreshd/refreshd/plan"
)

// ReadSecrets reads every secret of p from its file or environment variable: the one way
// refreshd reads secrets, for runs (the engine) and for notifications (the daemon). They are
// read when needed and never stored. An error names each secret that has no value and where
// it was looked for, never a value; the values that were read are returned with it, so a
// caller that goes on without the others (the daemon, sending the webhooks that need none)
// can still mask them. A secret file's final newline is not part of the value (files
// written with echo have one).
func ReadSecrets(p *plan.Plan) (map[string]string, error) {
	out := make(map[string]string, len(p.Secrets))
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		v, err := readSecret(p.Secrets[name])
		if err != nil {
			missing = append(missing, fmt.Sprintf("secret %s (%s): %v", name, p.Secrets[name].Pos, err))
			continue
		}
		out[name] = v
	}
	if len(missing) > 0 {
		return out, errors.New(strings.Join(missing, "; "))
	}
	return out, nil
}

func readSecret(s plan.Secret) (string, error) {
	var v string
	switch {
	case s.File != "":
		data, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", s.File, unwrapPathError(err))
		}
		v = strings.TrimRight(string(data), "\r\n")
	case s.Env != "":
		var ok bool
		if v, ok = os.LookupEnv(s.Env); !ok {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
	}
	if v == "" {
		return "", errors.New("value is empty")
	}
	return v, nil
}

// unwrapPathError drops the *PathError's own copy of the path, already in our message.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
