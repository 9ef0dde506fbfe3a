// Package browser is the headless Chromium the dashboard's tests drive over the DevTools
// protocol (chromedp). It is a package of its own, not part of testkit, so that only the
// tests that open a browser link chromedp.
package browser

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/refreshd/refreshd/internal/testkit"
)

// Start starts a headless Chromium with a fresh profile, fetching nothing but what the page
// asks of the server under test, and returns its context for chromedp. It ends with the
// test (or ctx). Without chromium it skips or fails as testkit.Need says.
func Start(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	chromium := testkit.Need(t, "chromium")[0]
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox, // tests run as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc() // ends the Chromium process and waits for it
	})
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return bctx
}
