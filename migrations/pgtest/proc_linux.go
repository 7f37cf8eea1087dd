package pgtest

import (
	"os"
	"syscall"
)

const localSupported = true

// sysProcAttr runs a child as u (when set) and, for the server, has the kernel kill it
// when the test binary dies without stopping it.
func sysProcAttr(u *runAs, server bool) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if u != nil {
		attr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid}
	}
	if server {
		attr.Pdeathsig = syscall.SIGKILL // set after the credentials change, so it survives it
	}
	return attr
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}

// baseDir is where the server's directory goes: TMPDIR when set; otherwise /dev/shm when it
// is a tmpfs with room to spare (initdb and each CREATE DATABASE run about ten times faster
// in memory than on disk, even with fsync off); otherwise the usual temporary directory.
func baseDir() string {
	const shm, tmpfsMagic, room = "/dev/shm", 0x01021994, 1 << 30
	if os.Getenv("TMPDIR") != "" {
		return os.TempDir()
	}
	var st syscall.Statfs_t
	if syscall.Statfs(shm, &st) != nil || st.Type != tmpfsMagic || uint64(st.Bavail)*uint64(st.Bsize) < room {
		return os.TempDir() // absent, or a container's small default
	}
	return shm
}
