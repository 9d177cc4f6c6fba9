package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/herd-cluster/herd/internal/testkit"
)

// artifactsVar names the directory where the browser tests leave their
// screenshots; without it they go to a temporary directory. It does not
// start with HERD_, which TestMain clears.
const artifactsVar = "HERDCLI_ARTIFACTS"

// chromium returns the path of the browser the dashboard tests drive, or
// skips the test when none is installed.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
	return ""
}

// page is one browser tab, with the exceptions its scripts threw.
type page struct {
	ctx context.Context

	mu     sync.Mutex
	thrown []string
}

// newBrowser starts a headless chromium of its own (a fresh profile, no
// network but loopback, nothing downloaded) and returns a tab. The
// browser is killed and reaped when the test ends.
func newBrowser(t *testing.T, path string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("no-pings", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := newTab(t, actx)
	t.Cleanup(cancelAlloc) // after the tab's cleanup: kills the browser and waits for it
	return p
}

// newTab opens a tab in parent's browser; with a new browser context it
// shares no cookie with the other tabs.
func newTab(t *testing.T, parent context.Context, opts ...chromedp.ContextOption) *page {
	t.Helper()
	p := &page{}
	opts = append(opts, chromedp.WithListener(func(ev any) {
		if e, ok := ev.(*runtime.EventExceptionThrown); ok {
			p.mu.Lock()
			p.thrown = append(p.thrown, e.ExceptionDetails.Text+" "+describe(e.ExceptionDetails.Exception))
			p.mu.Unlock()
		}
	}))
	ctx, cancel := chromedp.NewContext(parent, opts...)
	p.ctx = ctx
	// The first run opens the tab (and starts the browser) for the
	// context's whole life: a shorter context here would close them.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("starting the browser: %v", err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.thrown {
			t.Errorf("the page threw: %s", e)
		}
		cancel()
	})
	return p
}

func describe(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	return o.Description
}

// run runs actions, failing the test on an error.
func (p *page) run(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression in the page.
func eval[T any](t *testing.T, p *page, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until the expression is true in the page, for at most
// within; on timeout the test fails with what and the value of show. A
// navigation meanwhile (a form posted, a redirect) restarts the wait in
// the new document.
func (p *page) waitJS(t *testing.T, what string, within time.Duration, expr, show string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		left := time.Until(deadline)
		ctx, cancel := context.WithTimeout(p.ctx, left+5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(left), chromedp.WithPollingInterval(20*time.Millisecond)))
		cancel()
		switch {
		case err == nil:
			return
		case time.Now().After(deadline) || p.ctx.Err() != nil:
			t.Fatalf("waiting %s for %s: %v; the page shows %s", within, what, err, eval[string](t, p, show))
		}
		time.Sleep(20 * time.Millisecond) // the document changed under the poll
	}
}

// click clicks the element of a CSS selector once it is visible.
func (p *page) click(t *testing.T, sel string) {
	t.Helper()
	p.run(t, "clicking "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// confirm clicks the button sel and confirms the dialog it opens.
func (p *page) confirm(t *testing.T, sel string) {
	t.Helper()
	p.click(t, sel)
	p.run(t, "confirming", chromedp.WaitVisible(chromedp.CSS("#confirm[open]")))
	p.click(t, "#confirm-ok")
	p.run(t, "closing the dialog", chromedp.WaitNotPresent(chromedp.CSS("#confirm[open]")))
}

// choose selects value in the select element sel, as a user would.
func (p *page) choose(t *testing.T, sel, value string) {
	t.Helper()
	eval[bool](t, p, fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event('change')); return s.value === %q; })()`, sel, value, value))
}

// screenshot saves the whole page as name in the artifacts directory.
func (p *page) screenshot(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv(artifactsVar)
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// startDashboard runs herd dashboard with args and returns the link it
// printed; the process is killed and reaped when the test ends.
func startDashboard(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := herdCmd(env, append([]string{"dashboard"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testkit.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	links := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "http://") {
				links <- sc.Text()
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	select {
	case link := <-links:
		return link
	case err := <-exited:
		exited <- err
		t.Fatalf("herd dashboard exited: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("herd dashboard printed no link\n%s", stderr.String())
	}
	return ""
}
