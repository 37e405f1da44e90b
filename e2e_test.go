package main

import (
	"os"
	"os/exec"
	"testing"
)

// needTool finds a program an end-to-end test drives. `make test` installs
// them and sets E2E_REQUIRED, so there a missing tool fails the run instead
// of skipping silently; a bare `go test` skips, saying why.
func needTool(t *testing.T, name string) string {
	t.Helper()
	for _, dir := range []string{"", "/usr/sbin/", "/usr/bin/", "/sbin/"} {
		if p, err := exec.LookPath(dir + name); err == nil {
			return p
		}
	}
	if os.Getenv("E2E_REQUIRED") != "" {
		t.Fatalf("%s is not installed (scripts/test-deps.sh installs it)", name)
	}
	t.Skipf("%s is not installed; run make test to install it", name)
	return ""
}

// needRoot is for the tests that chroot and change user, as the image does.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("E2E_REQUIRED") != "" {
		t.Fatal("this test runs as root (chroot, setuid), as CI does")
	}
	t.Skip("needs root for chroot and setuid")
}
