package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a small tmpfs on a new temporary directory (root only)
// and unmounts it when the test ends.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount("hearth-test", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// tmpfsDir returns a directory on tmpfs: a tmpfs mounted for the test when
// running as root, else one under /dev/shm if that is tmpfs; otherwise the
// test is skipped, saying why.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	if os.Geteuid() == 0 {
		dir := t.TempDir()
		mountTmpfs(t, dir)
		return dir
	}
	if fs, err := volatileFS("/dev/shm"); err == nil && fs == "tmpfs" {
		dir, err := os.MkdirTemp("/dev/shm", "hearth-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	t.Skip("SKIPPED: no tmpfs to test with: not root (cannot mount one) and /dev/shm is not tmpfs")
	return ""
}

func storageConfig(dataDir string) Config {
	cfg := DefaultConfig()
	cfg.Listen, cfg.AdminListen, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dataDir
	return cfg
}

// Ensure that a data_dir on tmpfs is refused with a reason that names the
// key allowing it, also when the directory does not exist yet (judged by
// the directory it would be created in, and not created), and that the key
// lets it start.
func TestDaemon_DataDirInRAM_Refused(t *testing.T) {
	ram := tmpfsDir(t)
	for _, dataDir := range []string{ram, filepath.Join(ram, "not", "yet")} {
		_, err := New(storageConfig(dataDir), quiet)
		if err == nil || !strings.Contains(err.Error(), "allow_volatile_data_dir") || !strings.Contains(err.Error(), "tmpfs") {
			t.Fatalf("data_dir %s on tmpfs: got %v, want a refusal naming tmpfs and allow_volatile_data_dir", dataDir, err)
		}
	}
	if _, err := os.Stat(filepath.Join(ram, "not")); !os.IsNotExist(err) {
		t.Errorf("the refused data_dir was created (stat: %v)", err)
	}
	d := startDaemon(t, "", func(c *Config) { c.DataDir, c.AllowVolatileDataDir = filepath.Join(ram, "hearth"), true })
	if got := d.Outbox().Path(); !strings.HasPrefix(got, ram) {
		t.Errorf("outbox at %s, want under %s", got, ram)
	}
}

// Ensure that a data_dir on an ordinary disk is not taken for RAM.
func TestVolatileFS_Disk(t *testing.T) {
	dir := t.TempDir()
	fs, err := volatileFS(filepath.Join(dir, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if fs != "" {
		t.Skipf("SKIPPED: the test's temporary directory %s is itself on %s", dir, fs)
	}
}

// Ensure that with require_mount pointing at a directory nothing is
// mounted on, hearthd gives up after require_mount_timeout, says so, and
// creates nothing under it.
func TestDaemon_RequireMount_NotMounted(t *testing.T) {
	old := mountPollInterval
	mountPollInterval = 10 * time.Millisecond
	t.Cleanup(func() { mountPollInterval = old })

	mnt := t.TempDir()
	cfg := storageConfig(filepath.Join(mnt, "hearth"))
	cfg.RequireMount, cfg.RequireMountTimeout = mnt, 50*time.Millisecond
	_, err := New(cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "is not mounted") || !strings.Contains(err.Error(), "require_mount_timeout") {
		t.Fatalf("got %v, want a refusal saying %s is not mounted", err, mnt)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("data_dir was created under the unmounted mount point (stat: %v)", err)
	}
}

// Ensure that hearthd waits for require_mount: a disk mounted while it
// waits (as USB storage comes up late at boot) lets it start, with the
// outbox on that disk.
func TestDaemon_RequireMount_WaitsForMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: mounting a filesystem for the test needs root")
	}
	old := mountPollInterval
	mountPollInterval = 10 * time.Millisecond
	t.Cleanup(func() { mountPollInterval = old })

	mnt := t.TempDir()
	cfg := storageConfig(filepath.Join(mnt, "hearth"))
	cfg.RequireMount, cfg.RequireMountTimeout, cfg.AllowVolatileDataDir = mnt, time.Minute, true
	type result struct {
		d   *Daemon
		err error
	}
	done := make(chan result, 1)
	go func() {
		d, err := New(cfg, quiet)
		done <- result{d, err}
	}()
	mountTmpfs(t, mnt)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.d.Outbox().Close()
	mounted, err := isMountPoint(mnt)
	if err != nil || !mounted {
		t.Fatalf("isMountPoint(%s) = %t, %v after mounting", mnt, mounted, err)
	}
	if fs, _ := volatileFS(r.d.Outbox().Path()); fs != "tmpfs" {
		t.Errorf("outbox %s is on %q, want the tmpfs mounted at %s", r.d.Outbox().Path(), fs, mnt)
	}
}

// Ensure that require_mount settings that cannot protect data_dir are
// configuration errors.
func TestConfig_Validate_RequireMount(t *testing.T) {
	for _, tc := range []struct {
		mount, dataDir string
		timeout        time.Duration
		want           string // "" = valid
	}{
		{"/mnt/usb", "/mnt/usb/hearth", time.Minute, ""},
		{"/mnt/usb", "/mnt/usb", 0, ""},
		{"/mnt/usb/", "/mnt/usb/hearth", time.Minute, ""},
		{"mnt/usb", "/mnt/usb/hearth", time.Minute, "not an absolute path"},
		{"/mnt/usb", "/var/lib/hearth", time.Minute, "is not under /mnt/usb"},
		{"/mnt/usb", "/mnt/usb2/hearth", time.Minute, "is not under /mnt/usb"},
		{"/mnt/usb", "/mnt/usb/../hearth", time.Minute, "is not under /mnt/usb"},
		{"/mnt/usb", "/mnt/usb/hearth", -time.Second, "require_mount_timeout: must not be negative"},
	} {
		cfg := storageConfig(tc.dataDir)
		cfg.RequireMount, cfg.RequireMountTimeout = tc.mount, tc.timeout
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("require_mount %s, data_dir %s: %v", tc.mount, tc.dataDir, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("require_mount %s, data_dir %s, timeout %s: got %v, want %q", tc.mount, tc.dataDir, tc.timeout, err, tc.want)
		}
	}
}

// Ensure that mount points are read from mountinfo with the kernel's
// escapes undone, and only from the mount point field.
func TestMountinfoHas(t *testing.T) {
	const info = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
35 22 8:17 / /mnt/usb\040stick rw,relatime shared:20 - ext4 /dev/sdb1 rw
36 22 0:30 /mnt/data /srv rw shared:21 - ext4 /dev/sdc1 rw
`
	for dir, want := range map[string]bool{
		"/":              true,
		"/mnt/usb stick": true,
		"/srv":           true,
		"/mnt/usb":       false,
		"/mnt/data":      false, // a root within the filesystem, not a mount point
	} {
		got, err := mountinfoHas(strings.NewReader(info), dir)
		if err != nil || got != want {
			t.Errorf("mountinfoHas(%q) = %t, %v; want %t", dir, got, err, want)
		}
	}
}
