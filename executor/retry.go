package executor

import (
	"math/rand/v2"
	"regexp"
	"slices"
	"time"

	"github.com/refreshd/refreshd/plan"
)

// retryPatterns are the output patterns that make a failed attempt retryable: the step's
// retry_on output patterns, or, when it lists neither exit codes nor patterns,
// plan.TransientPatterns (buildx and registry failures a later attempt usually survives).
// Listing only exit codes means exactly those are retried.
func retryPatterns(r plan.Retry) []*regexp.Regexp {
	if len(r.Output) > 0 {
		return r.Output
	}
	if len(r.ExitCodes) > 0 {
		return nil
	}
	return plan.TransientPatterns()
}

// retryable says why a failed attempt may be retried ("" when it may not): its exit code is
// listed, or a line of its output (matchedLine) or its error matched a pattern.
func retryable(r plan.Retry, pats []*regexp.Regexp, st ExitStatus, matchedLine, errText string) string {
	if st.Signal == "" && st.Code > 0 && slices.Contains(r.ExitCodes, st.Code) {
		return "exit code listed in retry_on"
	}
	if matchedLine != "" {
		return "output matched: " + matchedLine
	}
	for _, re := range pats {
		if errText != "" && re.MatchString(errText) {
			return "error matched " + re.String()
		}
	}
	return ""
}

// backoff is the wait before attempt n+1 (n >= 1): Backoff doubled per attempt, capped at
// MaxBackoff, spread by ±Jitter so runs retrying against the same registry do not retry in
// lockstep, and capped again.
func backoff(r plan.Retry, n int, rnd func() float64) time.Duration {
	d := r.Backoff
	for i := 1; i < n && (r.MaxBackoff <= 0 || d < r.MaxBackoff); i++ {
		d *= 2
	}
	if r.MaxBackoff > 0 && d > r.MaxBackoff {
		d = r.MaxBackoff
	}
	if r.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + r.Jitter*(2*rnd()-1)))
	}
	if r.MaxBackoff > 0 && d > r.MaxBackoff {
		d = r.MaxBackoff
	}
	return max(d, 0)
}

// defaultRand is the jitter source: math/rand/v2's, seeded by the runtime.
func defaultRand() float64 { return rand.Float64() }
