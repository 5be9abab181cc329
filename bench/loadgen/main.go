// Command loadgen sends exactly N requests over C keep-alive connections
// and fails if any answer is not 200. bench/callgrind.sh uses it: wrk
// runs for a time, and an instruction count per request needs a count of
// requests.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	url := flag.String("url", "", "URL to request")
	n := flag.Int("n", 1000, "requests to send")
	c := flag.Int("c", 32, "concurrent connections")
	post := flag.String("post", "", "POST this JSON body; empty: GET")
	flag.Parse()
	tr := &http.Transport{MaxIdleConnsPerHost: *c, MaxConnsPerHost: *c, DisableCompression: true}
	cl := &http.Client{Transport: tr}
	var left, bad atomic.Int64
	left.Store(int64(*n))
	var wg sync.WaitGroup
	start := time.Now()
	for range *c {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				var req *http.Request
				if *post != "" {
					req, _ = http.NewRequest("POST", *url, bytes.NewReader([]byte(*post)))
					req.Header.Set("Content-Type", "application/json")
				} else {
					req, _ = http.NewRequest("GET", *url, nil)
				}
				resp, err := cl.Do(req)
				if err != nil {
					bad.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "%d requests in %v, %d bad\n", *n, time.Since(start).Round(time.Millisecond), bad.Load())
	if bad.Load() > 0 {
		os.Exit(1)
	}
}
