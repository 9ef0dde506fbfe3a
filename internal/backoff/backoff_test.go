package backoff

import (
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestCapped(t *testing.T) {
	answer := func(code int, retryAfter string) *http.Response {
		r := &http.Response{StatusCode: code, Header: http.Header{}}
		if retryAfter != "" {
			r.Header.Set("Retry-After", retryAfter)
		}
		return r
	}
	const lo, hi = 500 * time.Millisecond, 15 * time.Second
	tests := []struct {
		name    string
		attempt int
		resp    *http.Response
		want    time.Duration
	}{
		{"no answer: doubling from min", 0, nil, lo},
		{"no answer, third try", 2, nil, 2 * time.Second},
		{"doubling stops at max", 10, nil, hi},
		{"short Retry-After honoured", 0, answer(http.StatusServiceUnavailable, "3"), 3 * time.Second},
		{"an hour on 503 is capped", 0, answer(http.StatusServiceUnavailable, "3600"), hi},
		{"an hour on 429 is capped", 3, answer(http.StatusTooManyRequests, "3600"), hi},
		{"a date a day away is capped", 0, answer(http.StatusServiceUnavailable, time.Now().Add(24*time.Hour).UTC().Format(http.TimeFormat)), hi},
		{"a huge number is capped", 0, answer(http.StatusServiceUnavailable, strconv.Itoa(1<<40)), hi},
		{"Retry-After on 500 is not read", 1, answer(http.StatusInternalServerError, "3600"), time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Capped(lo, hi, tt.attempt, tt.resp); got != tt.want {
				t.Errorf("Capped(%s, %s, %d) = %s, want %s", lo, hi, tt.attempt, got, tt.want)
			}
		})
	}
}
