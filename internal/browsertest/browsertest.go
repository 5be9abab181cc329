// Package browsertest starts a real headless Chromium (Debian's package,
// /usr/bin/chromium) for tests, driven through chromedp.
//
// A missing Chromium skips the test on a developer's machine and fails it
// when CI is set: browser tests must run there (.ci/run installs chromium).
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package puts the browser.
const Path = "/usr/bin/chromium"

// Start starts a headless Chromium with an empty profile and returns its
// chromedp context; the browser stops when the test ends. The flags are
// the ones this machine needs: no sandbox (tests run as root), no GPU, and
// no background networking, component updates or sync, whose connections
// the closed network would refuse.
//
// The returned context carries no timeout (one on the first action would
// stop the browser): bound each group of actions with a context derived
// from it.
func Start(t testing.TB) context.Context {
	t.Helper()
	if _, err := exec.LookPath(Path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found but CI is set: .ci/run must apt-get install chromium: %v", Path, err)
		}
		t.Skipf("%s not found (apt-get install chromium); with CI=true this fails", Path)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}
