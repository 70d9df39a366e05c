// Package owner tells who owns a file and who this process runs as, by
// user name where there is one: the words an operator needs in a message
// about a file the service cannot write.
package owner

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// File is a file's owner and permissions.
type File struct {
	UID  int
	GID  int
	Mode os.FileMode
}

// Of stats path.
func Of(path string) (File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return File{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return File{}, fmt.Errorf("%s: no owner information on this system", path)
	}
	return File{UID: int(st.Uid), GID: int(st.Gid), Mode: fi.Mode()}, nil
}

// Name is the user name of uid, or "uid N" when it has none.
func Name(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// Me is the user this process runs as (its effective uid).
func Me() (uid int, name string) {
	uid = os.Geteuid()
	return uid, Name(uid)
}

// InGroup reports whether this process has gid as its effective or a
// supplementary group.
func InGroup(gid int) bool {
	if os.Getegid() == gid {
		return true
	}
	groups, _ := os.Getgroups()
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}

// GroupName is the name of gid, or "gid N" when it has none.
func GroupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return "gid " + strconv.Itoa(gid)
}
