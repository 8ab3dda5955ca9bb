package auth

import (
	"maps"
	"slices"
)

// Permissions carried in the "perms" claim.
const (
	PermAddressbookRead  = "addressbook:read"
	PermAddressbookWrite = "addressbook:write"
	PermMessageSend      = "message:send"
	PermMessageRead      = "message:read"
	PermGroupCreate      = "group:create"
	PermGroupAdmin       = "group:admin"
	PermUserManage       = "user:manage"
	PermMetricsRead      = "metrics:read"
)

// AllPerms returns every permission, in a stable order (a fresh slice).
func AllPerms() []string {
	return []string{
		PermAddressbookRead, PermAddressbookWrite, PermMessageSend, PermMessageRead,
		PermGroupCreate, PermGroupAdmin, PermUserManage, PermMetricsRead,
	}
}

// Built-in roles.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleUser     = "user"
)

// builtinRoles returns the default role → permission mapping (a fresh copy).
func builtinRoles() map[string][]string {
	return map[string][]string{
		RoleAdmin:    AllPerms(),
		RoleOperator: {PermMetricsRead, PermAddressbookRead, PermMessageRead},
		RoleUser:     {PermAddressbookRead, PermAddressbookWrite, PermMessageSend, PermMessageRead, PermGroupCreate},
	}
}

// roleTable is the effective role → permission mapping: the built-ins
// overridden and extended by Config.Roles ("*" expanded). Read-only after build.
type roleTable map[string][]string

func buildRoles(cfg map[string][]string) roleTable {
	t := roleTable(builtinRoles())
	for name, perms := range cfg {
		var out []string
		for _, p := range perms {
			if p == "*" {
				out = append(out, AllPerms()...)
				continue
			}
			out = append(out, p)
		}
		slices.Sort(out)
		t[name] = slices.Compact(out)
	}
	return t
}

// perms returns the sorted union of the permissions of roles. Roles unknown
// to the table (e.g. removed from the config) grant nothing.
func (t roleTable) perms(roles []string) []string {
	var out []string
	for _, r := range roles {
		out = append(out, t[r]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// KnownRole reports whether name is a built-in role or one configured in c.Roles.
func (c Config) KnownRole(name string) bool {
	if _, ok := c.Roles[name]; ok {
		return true
	}
	_, ok := builtinRoles()[name]
	return ok
}

// RoleNames lists the built-in and configured roles, sorted.
func (c Config) RoleNames() []string {
	m := builtinRoles()
	for k := range c.Roles {
		m[k] = nil
	}
	return slices.Sorted(maps.Keys(m))
}

// HasPerm reports whether the token grants perm.
func (c *Claims) HasPerm(perm string) bool {
	return c != nil && slices.Contains(c.Perms, perm)
}

// CanAccess reports whether the holder of c may act on a resource owned by
// the user ownerID: their own, or anyone's with user:manage.
func CanAccess(c *Claims, ownerID string) bool {
	if c == nil || c.Subject == "" {
		return false
	}
	return c.Subject == ownerID || c.HasPerm(PermUserManage)
}
