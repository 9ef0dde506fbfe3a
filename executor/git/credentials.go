package git

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// remote is a repository address split into what may be shown and what must not.
type remote struct {
	URL      string // without any password; safe for argv, logs, history and .git/config
	User     string // user name from the URL or "x-access-token" for a plan token
	Password string // the token; only ever passed to git through the environment
}

// parseRemote removes credentials from repo. A password in the URL
// (https://user:token@host/...), or an HTTP(S) user name alone (GitHub accepts
// https://TOKEN@github.com/...), becomes the credential; token, when set, wins over both.
// scp-like SSH addresses (git@host:path) and local paths are returned unchanged.
func parseRemote(repo, token string) (remote, error) {
	r := remote{URL: repo}
	if strings.Contains(repo, "://") {
		u, err := url.Parse(repo)
		if err != nil {
			// url.Parse errors quote the input: never show it.
			return remote{}, fmt.Errorf("parse repository URL %q: invalid URL", RedactURLs(repo))
		}
		if u.User != nil {
			pw, hasPW := u.User.Password()
			httpish := u.Scheme == "http" || u.Scheme == "https"
			switch {
			case hasPW:
				r.User, r.Password = u.User.Username(), pw
				u.User = nil
			case httpish:
				r.User, r.Password = "x-access-token", u.User.Username()
				u.User = nil
			}
			r.URL = u.String()
		}
	}
	if token != "" {
		if r.User == "" {
			r.User = "x-access-token"
		}
		r.Password = token
	}
	return r, nil
}

// env returns the environment that hands the credential to git: a credential helper that
// answers from an environment variable, so the token is never in argv (visible in ps), in a
// file or in .git/config. The empty helper first clears the user's helpers: with a token, the
// plan's credential is the one used.
func (r remote) env() []string {
	if r.Password == "" {
		return nil
	}
	const helper = `!f() { test "$1" = get || exit 0; echo "username=$REFRESHD_GIT_USER"; echo "password=$REFRESHD_GIT_TOKEN"; }; f`
	return []string{
		"REFRESHD_GIT_USER=" + r.User,
		"REFRESHD_GIT_TOKEN=" + r.Password,
		"GIT_CONFIG_COUNT=2",
		"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0=",
		"GIT_CONFIG_KEY_1=credential.helper", "GIT_CONFIG_VALUE_1=" + helper,
	}
}

// redactor scrubs URL credentials and the token itself (in any escaping) from s.
func (r remote) redactor() func(string) string {
	var secrets []string
	if len(r.Password) >= 4 { // shorter "secrets" would shred ordinary words
		secrets = append(secrets, r.Password, url.QueryEscape(r.Password), url.PathEscape(r.Password))
	}
	return func(s string) string {
		s = RedactURLs(s)
		for _, sec := range secrets {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
		return s
	}
}

// TokenEnv returns the environment that makes git authenticate to HTTPS remotes with token,
// for callers that run git themselves (pass it to LastCommitTime). Empty token: nil.
func TokenEnv(token string) []string {
	return remote{User: "x-access-token", Password: token}.env()
}

var urlUserinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.-]*://)([^/?#@\s]*)@`)

// RedactURLs removes credentials from every URL in s: the whole user information of
// http(s) URLs (a bare user name there is often a token), the password of others.
func RedactURLs(s string) string {
	return urlUserinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlUserinfo.FindStringSubmatch(m)
		scheme, info := sub[1], sub[2]
		ls := strings.ToLower(scheme)
		if ls == "http://" || ls == "https://" {
			return scheme
		}
		if i := strings.IndexByte(info, ':'); i >= 0 {
			return scheme + info[:i] + "@"
		}
		return m
	})
}
