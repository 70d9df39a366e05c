package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/guardianai/hearth/config"
)

// Where the outbox may live. On a router (OpenWrt) /var and /tmp are RAM:
// an outbox there loses every acknowledged message at the next reboot or
// power cut, so a data_dir on tmpfs or ramfs is refused unless the operator
// says the loss is acceptable. USB storage is mounted late at boot: with
// require_mount set, hearthd waits for that mount point before it opens the
// outbox, instead of writing into the empty directory under it.

// Filesystem magic numbers of statfs(2) (linux/magic.h).
const (
	tmpfsMagic = 0x01021994
	ramfsMagic = 0x858458f6
)

// mountPollInterval is how often the wait for require_mount looks again.
var mountPollInterval = time.Second

// bindStorage ties the storage safety settings to their flags and variables.
func (c *Config) bindStorage(b *config.Binder) {
	b.Bool(&c.AllowVolatileDataDir, "allow-volatile-data-dir", "allow a data_dir in RAM (tmpfs, ramfs): the outbox, acknowledged data included, is lost at every reboot")
	b.String(&c.RequireMount, "require-mount", `mount point that must be mounted before the outbox is opened, e.g. /mnt/usb ("" = none); data_dir must be under it`)
	b.Duration(&c.RequireMountTimeout, "require-mount-timeout", "how long to wait at start for require_mount to be mounted before giving up")
}

// validateStorage reports storage settings that cannot work.
func (c *Config) validateStorage() []error {
	var errs []error
	if c.RequireMountTimeout < 0 {
		errs = append(errs, errors.New("require_mount_timeout: must not be negative"))
	}
	if c.RequireMount == "" {
		return errs
	}
	if !filepath.IsAbs(c.RequireMount) {
		return append(errs, fmt.Errorf("require_mount: %q is not an absolute path", c.RequireMount))
	}
	if !isUnder(c.DataDir, c.RequireMount) {
		errs = append(errs, fmt.Errorf("require_mount: data_dir %s is not under %s, so the mount would not protect it", c.DataDir, c.RequireMount))
	}
	return errs
}

// writeStorage prints the storage safety settings for --check-config.
func (c *Config) writeStorage(w io.Writer) {
	fmt.Fprintf(w, "allow_volatile_data_dir: %t\nrequire_mount: %s\nrequire_mount_timeout: %s\n",
		c.AllowVolatileDataDir, c.RequireMount, c.RequireMountTimeout)
}

// isUnder reports whether path is dir or inside it (both cleaned, absolute).
func isUnder(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && filepath.IsAbs(path) && rel != ".." && !strings.HasPrefix(rel, "../")
}

// checkStorage runs before the data directory is created: it waits for
// require_mount, then refuses a data_dir in RAM unless allowed.
func (c *Config) checkStorage(log *slog.Logger) error {
	if c.RequireMount != "" {
		if err := waitForMount(c.RequireMount, c.RequireMountTimeout, log); err != nil {
			return err
		}
	}
	if c.AllowVolatileDataDir {
		return nil
	}
	fs, err := volatileFS(c.DataDir)
	if err != nil {
		return fmt.Errorf("data_dir %s: %w", c.DataDir, err)
	}
	if fs != "" {
		return fmt.Errorf("data_dir %s is on %s (RAM): the outbox, acknowledged messages included, would be lost at the next reboot or power cut; "+
			"put data_dir on persistent storage (on a router: a USB disk, with require_mount), or set allow_volatile_data_dir: true to accept the loss", c.DataDir, fs)
	}
	return nil
}

// volatileFS names the RAM filesystem (tmpfs, ramfs) holding path, or
// returns "" for any other. A path not created yet is judged by the
// nearest directory above it that exists: that is where it will be made.
func volatileFS(path string) (string, error) {
	p := filepath.Clean(path)
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(p, &st)
		if err == nil {
			// Type is int32 on some 32-bit ports: compare the low 32 bits.
			switch uint32(st.Type) {
			case tmpfsMagic:
				return "tmpfs", nil
			case ramfsMagic:
				return "ramfs", nil
			}
			return "", nil
		}
		if !errors.Is(err, syscall.ENOENT) || p == filepath.Dir(p) {
			return "", fmt.Errorf("statfs %s: %w", p, err)
		}
		p = filepath.Dir(p)
	}
}

// waitForMount waits up to timeout for dir to be a mount point, looking
// every mountPollInterval, and logs once while it waits.
func waitForMount(dir string, timeout time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(timeout)
	for logged := false; ; logged = true {
		mounted, err := isMountPoint(dir)
		if err != nil {
			return fmt.Errorf("require_mount %s: %w", dir, err)
		}
		if mounted {
			if logged {
				log.Info("require_mount is mounted now", "require_mount", dir)
			}
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("require_mount %s is not mounted after waiting %s (require_mount_timeout): "+
				"the outbox is not opened on the directory under the mount point; mount the disk, or check the path", dir, timeout)
		}
		if !logged {
			log.Warn("waiting for require_mount to be mounted before opening the outbox", "require_mount", dir, "timeout", timeout)
		}
		time.Sleep(min(mountPollInterval, time.Until(deadline)))
	}
}

// isMountPoint reports whether dir is listed as a mount point in
// /proc/self/mountinfo (a bind mount and a mount of the same filesystem
// count too, which comparing device numbers would miss).
func isMountPoint(dir string) (bool, error) {
	dir, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // the mount point itself may appear with the disk
	}
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	return mountinfoHas(f, dir)
}

// mountinfoHas reports whether the mountinfo text r lists dir as a mount
// point (the fifth field, with spaces and the like escaped as \ooo).
func mountinfoHas(r io.Reader, dir string) (bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMountinfo(fields[4]) == dir {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
