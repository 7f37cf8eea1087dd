//go:build unix && !linux

package pgtest

import (
	"os"
	"syscall"
)

const localSupported = true

// sysProcAttr runs a child as u (when set). Without Linux's Pdeathsig, a test binary that
// dies before Main stops the server leaves it running.
func sysProcAttr(u *runAs, server bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if u != nil {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	return attr
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// baseDir is where the server's directory goes.
func baseDir() string { return os.TempDir() }
