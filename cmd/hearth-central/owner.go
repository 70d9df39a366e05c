package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/guardianai/hearth/central/store"
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
	if c.cfg.Schema == store.SchemaGuardianAI {
		if sharedGroup(f, owner.InGroup) {
			return nil
		}
		return fmt.Errorf("the database directory %s belongs to %s, but this runs as %s: to share GuardianAI's SQLite database, give the directory a group both services are in, group-writable and setgid, so that the database and its -wal and -shm files stay usable by both "+
			"(e.g. chgrp -R guardianai %s && chmod 2770 %s && chmod 660 %s*; see README, \"GuardianAI\"); its group is %s and its mode %s",
			dir, who, me, dir, dir, path, owner.GroupName(f.GID), f.Mode)
	}
	return fmt.Errorf("the database directory %s belongs to %s, but this runs as %s: files it created would belong to %s and %s could no longer write them; run as %s: sudo -u %s %s",
		dir, who, me, me, who, who, sudoUser(f.UID, who), c.commandLine())
}

// sharedGroup reports whether a database directory owned by another user
// is shared through its group: setgid (new files get the group), group
// writable, and this process is in the group. SQLite gives the -wal and
// -shm files the database file's mode, so a group-writable database stays
// usable by the dashboard and by hearth.
func sharedGroup(f owner.File, member func(gid int) bool) bool {
	return f.Mode&fs.ModeSetgid != 0 && f.Mode.Perm()&0o070 == 0o070 && member(f.GID)
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
