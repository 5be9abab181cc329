package tests

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcome is one request of a load run, as the client saw it.
type outcome struct {
	worker  int
	kind    string // what the worker sent, for messages
	start   time.Time
	latency time.Duration
	status  int
	header  http.Header
	body    []byte
	err     error
	// id tags a request whose arrival upstream the test checks; retry is
	// the second attempt of a request that failed in transport.
	id    string
	retry *outcome
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%s (worker %d, at %s): error %v", o.kind, o.worker, o.start.Format("15:04:05.000"), o.err)
	}
	return fmt.Sprintf("%s (worker %d, at %s): %d %.200s", o.kind, o.worker, o.start.Format("15:04:05.000"), o.status, o.body)
}

// newLoadClient is a keep-alive client with one idle connection per worker,
// so that a load run reuses connections the way real agents do.
func newLoadClient(workers int) *http.Client {
	tr := &http.Transport{
		DisableCompression:  true,
		MaxIdleConns:        2 * workers,
		MaxIdleConnsPerHost: 2 * workers,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{
		Timeout:       20 * time.Second,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one request and reads the whole answer.
func send(c *http.Client, method, url, body string, headers ...string) outcome {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	o := outcome{start: time.Now()}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		o.err = err
		return o
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		o.err, o.latency = err, time.Since(o.start)
		return o
	}
	o.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	o.latency, o.status, o.header, o.err = time.Since(o.start), resp.StatusCode, resp.Header, err
	return o
}

// load runs workers that each call one function in a loop until stopped.
type load struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []outcome
}

// startLoad starts workers goroutines calling do(worker, seq) back to back;
// every outcome is kept for the test to judge after stop.
func startLoad(workers int, do func(worker, seq int) outcome) *load {
	l := &load{}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var mine []outcome
			for seq := 0; !l.stopped.Load(); seq++ {
				o := do(w, seq)
				o.worker = w
				mine = append(mine, o)
			}
			l.mu.Lock()
			l.results = append(l.results, mine...)
			l.mu.Unlock()
		}()
	}
	return l
}

// stop ends the run, waits for the requests in flight, and returns every
// outcome in start order.
func (l *load) stop() []outcome {
	l.stopped.Store(true)
	l.wg.Wait()
	sort.Slice(l.results, func(i, j int) bool { return l.results[i].start.Before(l.results[j].start) })
	return l.results
}

// parallel calls do(i) for i in [0, n) on workers goroutines.
func parallel(workers, n int, do func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				do(i)
			}
		}()
	}
	wg.Wait()
}

// statusCounts summarises outcomes for messages: "200×812 503×40 error×0".
func statusCounts(outs []outcome) string {
	counts := map[string]int{}
	for _, o := range outs {
		k := strconv.Itoa(o.status)
		if o.err != nil {
			k = "error"
		}
		counts[k]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s×%d ", k, counts[k])
	}
	return strings.TrimSpace(b.String())
}

// percentile is the p-th percentile (0 < p ≤ 1) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(rank, len(s)-1))]
}

// rssBytes is the resident set size of the Caddy process (Linux only;
// ok is false elsewhere).
func (s *caddyServer) rssBytes() (n int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		if v, found := strings.CutPrefix(line, "VmRSS:"); found {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// failOnErrors reports the first few unexpected outcomes and how many
// there were.
func failOnErrors(t *testing.T, what string, bad []outcome, all []outcome) {
	t.Helper()
	if len(bad) == 0 {
		return
	}
	var b strings.Builder
	for i, o := range bad {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(bad)-10)
			break
		}
		fmt.Fprintf(&b, "\n  %s", o)
	}
	t.Errorf("%s: %d of %d requests went wrong (%s):%s", what, len(bad), len(all), statusCounts(all), b.String())
}

// pipelineFlood sends n requests over conns keep-alive connections,
// pipelining batch requests per write: far cheaper for the client than
// net/http, so that a flood of hundreds of thousands of requests measures
// the server. build appends request i to dst; method is the requests'
// method (to know whether answers have bodies). It returns how many
// answers did not have status want, and the first such problem.
func pipelineFlood(addr string, conns, n, batch int, method string, want int, build func(dst []byte, i int) []byte) (bad int64, first string) {
	var next, failed atomic.Int64
	var firstErr atomic.Value
	fail := func(msg string, count int64) {
		failed.Add(count)
		firstErr.CompareAndSwap(nil, msg)
	}
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			var buf []byte
			req := &http.Request{Method: method}
			for {
				from := int(next.Add(int64(batch)) - int64(batch))
				if from >= n {
					break
				}
				to := min(from+batch, n)
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
						fail(err.Error(), int64(to-from))
						continue
					}
					br = bufio.NewReaderSize(c, 64<<10)
				}
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				buf = buf[:0]
				for i := from; i < to; i++ {
					buf = build(buf, i)
				}
				if _, err := c.Write(buf); err != nil {
					fail(err.Error(), int64(to-from))
					c.Close()
					c = nil
					continue
				}
				for i := from; i < to; i++ {
					resp, err := http.ReadResponse(br, req)
					if err != nil {
						fail(fmt.Sprintf("request %d: %v", i, err), int64(to-i))
						c.Close()
						c = nil
						break
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != want {
						fail(fmt.Sprintf("request %d: status %d", i, resp.StatusCode), 1)
					}
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	wg.Wait()
	if v := firstErr.Load(); v != nil {
		first = v.(string)
	}
	return failed.Load(), first
}
