//go:build unix

package redistest

import "syscall"

var stopSignal = syscall.SIGTERM
