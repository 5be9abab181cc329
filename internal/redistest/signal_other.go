//go:build !unix

package redistest

import "os"

var stopSignal = os.Kill
