package main

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/refreshd/refreshd/internal/testkit"
)

// TestRemoteBranches: the branches of a real remote (git daemon); a listing that fails
// keeps the last good one with the error; the watch reloads once when the branches change,
// and not when they do not.
func TestRemoteBranches(t *testing.T) {
	testkit.Need(t, "git")
	dir := t.TempDir()
	work, bare := dir+"/work", dir+"/r.git"
	testkit.Git(t, dir, "init", "--quiet", "--bare", bare)
	testkit.Git(t, dir, "init", "--quiet", "-b", "main", work)
	testkit.Git(t, work, "commit", "--quiet", "--allow-empty", "-m", "init")
	testkit.Git(t, work, "push", "--quiet", bare, "HEAD:refs/heads/main", "HEAD:refs/heads/v3-3-test")
	url := testkit.ServeGitDaemon(t, bare)

	r := newRemoteBranches(t.Context(), nil)
	got := r.List(url)
	if got.Err != nil || !slices.Equal(got.Names, []string{"main", "v3-3-test"}) || got.ListedAt.IsZero() {
		t.Fatalf("listing %+v", got)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	reloads := make(chan struct{}, 10)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		r.watch(ctx, 100*time.Millisecond, slog.New(slog.NewTextHandler(t.Output(), nil)), func(context.Context) error { reloads <- struct{}{}; return nil })
	}()
	select {
	case <-reloads:
		t.Fatal("reloaded with the branches unchanged")
	case <-time.After(500 * time.Millisecond):
	}
	testkit.Git(t, work, "push", "--quiet", bare, "HEAD:refs/heads/v3-4-test")
	select {
	case <-reloads:
	case <-time.After(10 * time.Second):
		t.Fatal("no reload after a branch was cut")
	}
	// The watch may be listing as it is cancelled: a listing of the repository half
	// removed below would succeed with no branch and become the last good one.
	cancel()
	<-watched

	if err := os.RemoveAll(bare); err != nil {
		t.Fatal(err)
	}
	kept := r.List(url)
	if kept.Err == nil || !slices.Equal(kept.Names, []string{"main", "v3-3-test", "v3-4-test"}) {
		t.Errorf("failed listing %+v, want the last good names with the error", kept)
	}
	if none := newRemoteBranches(t.Context(), nil).List(url); none.Err == nil || none.Names != nil {
		t.Errorf("failed first listing %+v, want the error alone", none)
	}
}
