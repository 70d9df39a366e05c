package svc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretBytes bounds a token file: a token is a line, not a document.
const maxSecretBytes = 4096

// ReadSecretFile reads the token in file for the setting key (e.g.
// "admin_token_file"), so that a token need never be on a command line,
// where every local user can read it in /proc. A file other users may read
// or write is refused: the token would be as public as on the command
// line. Surrounding whitespace (the trailing newline of `echo tok >file`)
// is trimmed; an empty file or one of several lines is refused.
func ReadSecretFile(key, file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	defer f.Close()
	// The checks are on the open file, so a file swapped after them is
	// never the one read.
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if err := checkSecretMode(key, file, fi); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", key, file, err)
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case len(b) > maxSecretBytes:
		return "", fmt.Errorf("%s: %s is larger than %d bytes: it should hold only the token", key, file, maxSecretBytes)
	case tok == "":
		return "", fmt.Errorf("%s: %s is empty: it should hold the token", key, file)
	case strings.ContainsAny(tok, "\r\n"):
		return "", fmt.Errorf("%s: %s holds more than one line: it should hold only the token", key, file)
	}
	return tok, nil
}

// checkSecretMode refuses a token file that is not a regular file or that
// every user may read or write.
func checkSecretMode(key, file string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %s is not a regular file", key, file)
	}
	perm := fi.Mode().Perm()
	if perm&0o006 != 0 {
		return errors.New(key + ": " + file + " is readable or writable by every user (mode " + fmt.Sprintf("%04o", perm) +
			"): refusing a token anyone can read; make it private, e.g. chmod 0640 " + file + " (owner root, group of the service) or chmod 0600")
	}
	return nil
}
