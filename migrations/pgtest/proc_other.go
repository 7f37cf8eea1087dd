//go:build !unix

package pgtest

import (
	"os"
	"syscall"
)

// localSupported is false: the throwaway server listens on a Unix socket only.
const localSupported = false

func sysProcAttr(*runAs, bool) *syscall.SysProcAttr { return nil }

func processAlive(int) bool { return true }

// baseDir is where the server's directory goes.
func baseDir() string { return os.TempDir() }
