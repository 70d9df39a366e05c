package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/guardianai/hearth/internal/owner"
)

// checkOwner refuses to open a SQLite database whose directory belongs to
// another user than the one running this command, root included: the
// files it may create (the database, its -wal and -shm) would belong to
// the wrong user, and the service could then no longer write them. The
// refusal says whom to run as. PostgreSQL has no such files.
func checkOwner(c *cmdLine) error {
	path, ok := strings.CutPrefix(c.cfg.DSN(), "sqlite://")
	if !ok {
		return nil
	}
	dir := filepath.Dir(path)
	f, err := owner.Of(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // created now, by and for the user running this
	}
	if err != nil {
		return fmt.Errorf("check the owner of the database directory: %w", err)
	}
	uid, me := owner.Me()
	if f.UID == uid {
		return nil
	}
	who := owner.Name(f.UID)
	return fmt.Errorf("the database directory %s belongs to %s, but this runs as %s: files it created would belong to %s and %s could no longer write them; run as %s: sudo -u %s %s",
		dir, who, me, me, who, who, sudoUser(f.UID, who), c.commandLine())
}

// sudoUser is how sudo -u names the user: its name, or #uid.
func sudoUser(uid int, name string) string {
	if strings.HasPrefix(name, "uid ") {
		return fmt.Sprintf("'#%d'", uid)
	}
	return name
}

// commandLine is the command as the operator ran it, quoted for a shell.
func (c *cmdLine) commandLine() string {
	words := []string{c.flags().Name()}
	for _, a := range c.args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
