package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/refreshd/refreshd/plan"
)

// ReadSecrets reads every secret of p from its file, environment variable or systemd
// credential ($CREDENTIALS_DIRECTORY/NAME, a file with the same rules): the one way
// refreshd reads secrets, for runs (the engine) and for notifications (the daemon). They are
// read when needed and never stored. An error names each secret that has no value and where
// it was looked for, never a value; the values that were read are returned with it, so a
// caller that goes on without the others (the daemon, sending the webhooks that need none)
// can still mask them. A secret file's final newline is not part of the value (files
// written with echo have one).
//
// A value shorter than MinSecretLen is an error too.
//
// A secret file must be a regular file of at most maxSecretFile bytes, read within
// secretReadTimeout (or until ctx ends): a FIFO, a device or a file on a hung network file
// system fails the run with its name instead of hanging it. A file that users other than
// its owner and group may read or write is read, with a warning (returned, for the run's
// record and the log) naming it.
func ReadSecrets(ctx context.Context, p *plan.Plan) (values map[string]string, warnings []string, err error) {
	out := make(map[string]string, len(p.Secrets))
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(p.Secrets)) {
		v, warn, err := readSecret(ctx, p.Secrets[name])
		if warn != "" {
			warnings = append(warnings, fmt.Sprintf("secret %s: %s", name, warn))
		}
		if err != nil {
			missing = append(missing, fmt.Sprintf("secret %s (%s): %v", name, p.Secrets[name].Pos, err))
			continue
		}
		if n := len(strings.TrimSpace(v)); n > 0 && n < MinSecretLen {
			missing = append(missing, fmt.Sprintf("secret %s (%s): its value is %d characters long, too short to mask (at least %d): masked, it would hide those letters in every log line, name and page; unmasked, it would show", name, p.Secrets[name].Pos, n, MinSecretLen))
			continue
		}
		out[name] = v
	}
	if len(missing) > 0 {
		return out, warnings, errors.New(strings.Join(missing, "; "))
	}
	return out, warnings, nil
}

// MinSecretLen is the shortest secret value a run accepts (white space around it not
// counted). A secret is masked wherever it appears, in every field; one of 1 to 3
// characters would mask ordinary words and names, so such a value fails the run before it
// starts, naming the secret. An empty value is not a value (a webhook whose secret is
// empty is skipped).
const MinSecretLen = 4

const (
	maxSecretFile     = 64 << 10 // tokens, keys and certificates are far smaller
	secretReadTimeout = 5 * time.Second
)

func readSecret(ctx context.Context, s plan.Secret) (v, warning string, err error) {
	switch {
	case s.File != "" || s.Credential != "":
		path := s.File
		if s.Credential != "" {
			if path, err = credentialPath(s.Credential); err != nil {
				return "", "", err
			}
		}
		data, warning, err := readSecretFile(ctx, path)
		if s.Credential != "" && errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("credential %s: %w (the service got no credential of that name: its unit needs LoadCredential=%s with /etc/credstore/%s, LoadCredential=%s:/path or LoadCredentialEncrypted=%s:/path)", s.Credential, err, s.Credential, s.Credential, s.Credential, s.Credential)
		}
		if err != nil {
			return "", "", err
		}
		v = strings.TrimRight(string(data), "\r\n")
		if v == "" {
			return "", warning, errors.New("value is empty")
		}
		return v, warning, nil
	case s.Env != "":
		var ok bool
		if v, ok = os.LookupEnv(s.Env); !ok {
			return "", "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
	}
	if v == "" {
		return "", "", errors.New("value is empty")
	}
	return v, "", nil
}

// credentialPath is where systemd put the service's credential name: the directory it
// names in $CREDENTIALS_DIRECTORY for a unit with LoadCredential= or LoadCredentialEncrypted=
// (/run/credentials/UNIT, readable only by the service's user).
func credentialPath(name string) (string, error) {
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	switch {
	case name == "." || name == ".." || strings.ContainsRune(name, '/'):
		// The plan loader refuses these; a plan built otherwise must not escape either.
		return "", fmt.Errorf("credential %q: not a credential name", name)
	case dir == "":
		return "", fmt.Errorf("credential %s: $CREDENTIALS_DIRECTORY is not set: refreshd is not running under a systemd unit that loads credentials (LoadCredential=%s:/path or LoadCredentialEncrypted=%s:/path)", name, name, name)
	case !filepath.IsAbs(dir):
		return "", fmt.Errorf("credential %s: $CREDENTIALS_DIRECTORY %q is not an absolute path", name, dir)
	}
	return filepath.Join(dir, name), nil
}

// readSecretFile reads a secret file with the bounds ReadSecrets describes. Opening with
// O_NONBLOCK keeps a FIFO with no writer from blocking the open; fstat then refuses it.
func readSecretFile(ctx context.Context, path string) (data []byte, warning string, err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", path, unwrapPathError(err))
	}
	data, fi, err := readBounded(ctx, f, path, "a secret", maxSecretFile, secretReadTimeout)
	if fi != nil {
		if perm := fi.Mode().Perm(); perm&0o007 != 0 {
			warning = fmt.Sprintf("%s is readable or writable by every user (mode %04o); chmod o-rwx it", path, perm)
		}
	}
	return data, warning, err
}

// statReader is an open file as readBounded needs it: *os.File.
type statReader interface {
	io.ReadCloser
	Stat() (os.FileInfo, error)
}

// readBounded reads f, which the caller opened with O_NONBLOCK (so a FIFO without a writer
// did not block the open), by the rules of secret files, the rules of every file refreshd
// reads from what a plan or a step wrote: a regular file (not a FIFO, a device, a socket or a
// directory) of at most limit bytes, read within timeout or until ctx ends (a read on a hung
// network file system cannot be interrupted: it is abandoned). It closes f. path and what
// ("a secret") name the file and its use in errors. fi is f's, when fstat answered.
func readBounded(ctx context.Context, f statReader, path, what string, limit int64, timeout time.Duration) (data []byte, fi os.FileInfo, err error) {
	fi, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", path, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fi, fmt.Errorf("read %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	if fi.Size() > limit {
		f.Close()
		return nil, fi, fmt.Errorf("read %s: %d bytes, more than %s may hold (%d)", path, fi.Size(), what, limit)
	}
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, limit+1))
		done <- result{b, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fi, fmt.Errorf("read %s: %w", path, unwrapPathError(r.err))
		}
		if int64(len(r.data)) > limit {
			return nil, fi, fmt.Errorf("read %s: more than %s may hold (%d bytes)", path, what, limit)
		}
		return r.data, fi, nil
	case <-timer.C:
		return nil, fi, fmt.Errorf("read %s: no answer within %s", path, timeout)
	case <-ctx.Done():
		return nil, fi, fmt.Errorf("read %s: %w", path, context.Cause(ctx))
	}
}

// unwrapPathError drops the *PathError's own copy of the path, already in our message.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
