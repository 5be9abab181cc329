package caddyproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPU is the CPU time the Caddy process has run so far, all threads: the
// sum of /proc/<pid>/task/<tid>/schedstat's first field (Linux). Benchmarks
// report it per request beside wall time, which is mostly the client and
// the loopback and far noisier on a busy machine.
func (s *Server) CPU() time.Duration {
	s.t.Helper()
	pid := s.Cmd.Process.Pid
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		s.t.Fatalf("no schedstat for caddy (pid %d): %v", pid, err)
	}
	var sum int64
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // a thread that just exited
		}
		fields := strings.Fields(string(data))
		var n int64
		if len(fields) > 0 {
			n, err = strconv.ParseInt(fields[0], 10, 64)
		}
		if len(fields) == 0 || err != nil {
			s.t.Fatalf("%s: %q", f, data)
		}
		sum += n
	}
	return time.Duration(sum)
}
