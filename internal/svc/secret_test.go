package svc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Ensure that a token file is read with its trailing newline trimmed, and
// that a file anyone can read, an empty one, one of several lines and a
// missing one are refused with a reason naming the setting.
func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode passes the umask
			t.Fatal(err)
		}
		return p
	}
	for _, mode := range []os.FileMode{0o600, 0o640, 0o400} {
		p := write("ok", "s3cret-token-0123456789\n", mode)
		if tok, err := ReadSecretFile("admin_token_file", p); err != nil || tok != "s3cret-token-0123456789" {
			t.Errorf("mode %04o: %q, %v", mode, tok, err)
		}
	}
	for _, tc := range []struct {
		name, body string
		mode       os.FileMode
		want       string
	}{
		{"world-readable", "tok\n", 0o644, "readable or writable by every user (mode 0644)"},
		{"world-writable", "tok\n", 0o602, "chmod 0640"},
		{"empty", "\n", 0o600, "is empty"},
		{"lines", "tok\nother\n", 0o600, "more than one line"},
		{"huge", strings.Repeat("x", 5000), 0o600, "larger than"},
	} {
		_, err := ReadSecretFile("admin_token_file", write(tc.name, tc.body, tc.mode))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "admin_token_file: ") {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadSecretFile("central_token_file", filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "central_token_file") {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecretFile("central_token_file", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
}
