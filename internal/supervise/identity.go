package supervise

import (
	"errors"
	"fmt"
	"os/user"
	"regexp"
	"strconv"

	"github.com/slapenir/slapenir/internal/initconf"
)

// identity is who a service runs as.
type identity struct {
	uid, gid uint32
	groups   []uint32 // supplementary, primary included
	home     string
	name     string // user name when known, for HOME/USER/LOGNAME
	note     string // a fallback init took, to log once
}

var numericUser = regexp.MustCompile(`^([0-9]+)(?::([0-9]+))?$`)

// resolveIdentity turns a service's user, group and groups into numbers. A
// numeric uid[:gid] needs no entry in /etc/passwd, so images and tests without
// the user still work; a name that does not exist is an error naming both.
func resolveIdentity(s *initconf.Service) (identity, error) {
	var id identity
	var u *user.User
	name := s.User
	if name == "" {
		// The image normally has user agent; without it (a workstation, a
		// test), the default still means uid 1000 rather than an error.
		name = initconf.DefaultUser
		if _, err := user.Lookup(name); err != nil {
			name = strconv.Itoa(initconf.DefaultUID)
			id.note = fmt.Sprintf("service %q: default user %q does not exist on this system, running it as uid %d", s.Name, initconf.DefaultUser, initconf.DefaultUID)
		}
	}
	if m := numericUser.FindStringSubmatch(name); m != nil {
		uid, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return id, fmt.Errorf("service %q: uid %q is out of range", s.Name, m[1])
		}
		id.uid, id.gid = uint32(uid), uint32(uid)
		if found, err := user.LookupId(m[1]); err == nil {
			u = found
		}
		if m[2] != "" {
			gid, err := strconv.ParseUint(m[2], 10, 32)
			if err != nil {
				return id, fmt.Errorf("service %q: gid %q is out of range", s.Name, m[2])
			}
			id.gid = uint32(gid)
		} else if u != nil {
			id.gid = parseID(u.Gid)
		}
	} else {
		found, err := user.Lookup(name)
		if err != nil {
			return id, fmt.Errorf("service %q: user %q does not exist on this system "+
				"(create it, e.g. `useradd -u 1000 %s`, or set user: to a numeric uid[:gid])", s.Name, name, name)
		}
		u = found
		id.uid, id.gid = parseID(u.Uid), parseID(u.Gid)
	}
	id.home = "/"
	if u != nil {
		id.name, id.home = u.Username, u.HomeDir
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				id.groups = append(id.groups, parseID(g))
			}
		}
	}
	if s.Group != "" {
		gid, err := resolveGroup(s.Group)
		if err != nil {
			return id, fmt.Errorf("service %q: group: %w", s.Name, err)
		}
		id.gid = gid
	}
	for _, g := range s.Groups {
		gid, err := resolveGroup(g)
		if err != nil {
			return id, fmt.Errorf("service %q: groups: %w", s.Name, err)
		}
		id.groups = append(id.groups, gid)
	}
	id.groups = appendUnique(id.groups, id.gid)
	return id, nil
}

func resolveGroup(g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		return uint32(n), nil
	}
	found, err := user.LookupGroup(g)
	if err != nil {
		return 0, fmt.Errorf("group %q does not exist on this system (create it or give a numeric gid)", g)
	}
	return parseID(found.Gid), nil
}

func parseID(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}

func appendUnique(list []uint32, v uint32) []uint32 {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}

// Check resolves the user and groups of every service of f, as init does
// before starting anything, and reports every one that does not exist.
func Check(f *initconf.File) error {
	var errs []error
	for _, s := range f.Services {
		if _, err := resolveIdentity(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
