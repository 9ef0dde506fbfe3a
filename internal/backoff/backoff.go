// Package backoff is the wait between the tries of refreshd's HTTP clients: the registry
// client (run steps, skip_if, the tag watcher) and the webhook sender.
package backoff

import (
	"net/http"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Capped is a retryablehttp.Backoff: retryablehttp.DefaultBackoff (doubling from min to
// max, and a 429 or 503 answer's Retry-After honoured), except that the wait is never
// longer than max. DefaultBackoff returns Retry-After as the server sent it, so one answer
// of "Retry-After: 3600" would hold a run's skip_if, a webhook or the tag watcher for an
// hour per try; a server asking for longer than max gets the next try after max, and the
// client's bound on tries ends the request as it ends any other failing one. A number of
// seconds too large for a time.Duration (DefaultBackoff returns it overflowed, negative)
// gets max too.
func Capped(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	wait := retryablehttp.DefaultBackoff(min, max, attempt, resp)
	if max > 0 && (wait > max || wait < 0) { // negative: a Retry-After that overflowed
		return max
	}
	return wait
}
