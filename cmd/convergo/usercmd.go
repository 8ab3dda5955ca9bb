package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
)

// passwordEnv is read when -password-stdin is not given.
const passwordEnv = "CONVERGO_USER_PASSWORD"

const userUsage = `usage: convergo user <command> [flags]

commands:
  add -id ID -identity sip:USER@DOMAIN [-tel tel:+NUMBER] [-name NAME] [-roles r1,r2] [-password-stdin]
  passwd -id ID [-password-stdin]
  roles -id ID -set r1,r2
  disable -id ID [-enable]
  list

The password is the first line of stdin with -password-stdin, else the
value of CONVERGO_USER_PASSWORD. It is never printed. Changing a password
or disabling an account does not end sessions already open: access tokens
stay valid until they expire (auth.access_ttl), and a disabled account can
no longer refresh.
`

// userCommand runs "convergo user <command> …" against users. Output goes
// to stdout; password hashes are never printed.
func userCommand(ctx context.Context, users store.Users, cfg auth.Config, args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stdout, userUsage)
		return fmt.Errorf("%w: user needs a command (add, passwd, roles, disable, list)", errUsage)
	}
	var err error
	switch cmd, args := args[0], args[1:]; cmd {
	case "add":
		err = userAdd(ctx, users, cfg, args, stdin, stdout)
	case "passwd":
		err = userPasswd(ctx, users, cfg, args, stdin, stdout)
	case "roles":
		err = userRoles(ctx, users, cfg, args, stdout)
	case "disable":
		err = userDisable(ctx, users, args, stdout)
	case "list":
		err = userList(ctx, users, args, stdout)
	case "help", "-h", "-help", "--help":
		_, err = io.WriteString(stdout, userUsage)
	default:
		err = fmt.Errorf("%w: unknown user command %q (add, passwd, roles, disable, list)", errUsage, cmd)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func userAdd(ctx context.Context, users store.Users, cfg auth.Config, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newUserFlags("add")
	id := fs.String("id", "", "login name (required)")
	identity := fs.String("identity", "", "public identity, sip:alice@example.net (required)")
	tel := fs.String("tel", "", "optional tel: alias, tel:+15551230001")
	name := fs.String("name", "", "display name")
	roles := fs.String("roles", auth.RoleUser, "comma-separated roles")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	if err := parseUserFlags(fs, args, stdout); err != nil {
		return err
	}
	var errs []error
	errs = append(errs, checkUserID(*id), checkIdentity(*identity), checkTel(*tel), checkDisplayName(*name))
	roleList, err := parseRoles(cfg, *roles)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: user add: %w", errUsage, err)
	}
	password, err := readPassword(*fromStdin, stdin)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	u := store.User{
		ID: *id, Identity: *identity, Tel: *tel, DisplayName: *name, Roles: roleList, Created: now, Updated: now,
	}
	if err := auth.SetPassword(&u, password, cfg); err != nil {
		return fmt.Errorf("user add: %w", err)
	}
	if _, err := users.Create(ctx, u); err != nil {
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("user add: id %q, identity or tel alias already taken", *id)
		}
		return fmt.Errorf("user add: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "user %s added (%s, roles: %s)\n", u.ID, u.Identity, strings.Join(u.Roles, ","))
	return err
}

func userPasswd(ctx context.Context, users store.Users, cfg auth.Config, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newUserFlags("passwd")
	id := fs.String("id", "", "login name (required)")
	fromStdin := fs.Bool("password-stdin", false, "read the password from the first line of stdin")
	if err := parseUserFlags(fs, args, stdout); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("%w: user passwd: -id is required", errUsage)
	}
	password, err := readPassword(*fromStdin, stdin)
	if err != nil {
		return err
	}
	err = updateUser(ctx, users, *id, func(u *store.User) error { return auth.SetPassword(u, password, cfg) })
	if err != nil {
		return fmt.Errorf("user passwd: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "password of %s changed\n", *id)
	return err
}

func userRoles(ctx context.Context, users store.Users, cfg auth.Config, args []string, stdout io.Writer) error {
	fs := newUserFlags("roles")
	id := fs.String("id", "", "login name (required)")
	set := fs.String("set", "", "comma-separated roles replacing the current ones (required; \"\" removes all)")
	if err := parseUserFlags(fs, args, stdout); err != nil {
		return err
	}
	if *id == "" || !flagSet(fs, "set") {
		return fmt.Errorf("%w: user roles: -id and -set are required", errUsage)
	}
	roles, err := parseRoles(cfg, *set)
	if err != nil {
		return fmt.Errorf("%w: user roles: %w", errUsage, err)
	}
	if err := updateUser(ctx, users, *id, func(u *store.User) error { u.Roles = roles; return nil }); err != nil {
		return fmt.Errorf("user roles: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "roles of %s: %s\n", *id, strings.Join(roles, ","))
	return err
}

func userDisable(ctx context.Context, users store.Users, args []string, stdout io.Writer) error {
	fs := newUserFlags("disable")
	id := fs.String("id", "", "login name (required)")
	enable := fs.Bool("enable", false, "enable the account again")
	if err := parseUserFlags(fs, args, stdout); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("%w: user disable: -id is required", errUsage)
	}
	if err := updateUser(ctx, users, *id, func(u *store.User) error { u.Disabled = !*enable; return nil }); err != nil {
		return fmt.Errorf("user disable: %w", err)
	}
	state := "disabled"
	if *enable {
		state = "enabled"
	}
	_, err := fmt.Fprintf(stdout, "user %s %s\n", *id, state)
	return err
}

func userList(ctx context.Context, users store.Users, args []string, stdout io.Writer) error {
	fs := newUserFlags("list")
	if err := parseUserFlags(fs, args, stdout); err != nil {
		return err
	}
	list, err := users.List(ctx)
	if err != nil {
		return fmt.Errorf("user list: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "ID\tIDENTITY\tTEL\tNAME\tROLES\tSTATUS")
	for _, u := range list {
		status := "active"
		if u.Disabled {
			status = "disabled"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", printable(u.ID), printable(u.Identity), dash(printable(u.Tel)),
			dash(printable(u.DisplayName)), dash(printable(strings.Join(u.Roles, ","))), status)
	}
	return tw.Flush()
}

// updateUser applies change to the stored user and writes it back,
// retrying once when another writer got there first.
func updateUser(ctx context.Context, users store.Users, id string, change func(*store.User) error) error {
	for attempt := 0; ; attempt++ {
		u, err := users.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %q", id)
		}
		if err != nil {
			return err
		}
		if err := change(&u); err != nil {
			return err
		}
		u.Updated = time.Now().UTC()
		_, err = users.Update(ctx, u)
		if errors.Is(err, store.ErrConflict) && attempt == 0 {
			continue
		}
		return err
	}
}

func newUserFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("convergo user "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseUserFlags parses args. After -h it prints the flags and returns
// errHelpShown (userCommand turns it into success); bad flags and stray
// arguments are usage errors.
func parseUserFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		_, _ = fmt.Fprintf(stdout, "usage of %s:\n", fs.Name())
		fs.PrintDefaults()
		return errHelpShown
	case err != nil:
		return fmt.Errorf("%w: %s: %w", errUsage, fs.Name(), err)
	case fs.NArg() > 0:
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// errHelpShown ends a command after -h.
var errHelpShown = errors.New("help shown")

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// readPassword returns the first line of stdin (fromStdin) or the
// CONVERGO_USER_PASSWORD environment variable.
func readPassword(fromStdin bool, stdin io.Reader) (string, error) {
	var password string
	switch {
	case fromStdin:
		line, err := bufio.NewReader(io.LimitReader(stdin, auth.MaxPasswordLen+2)).ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			if errors.Is(err, io.EOF) {
				return "", fmt.Errorf("%w: no password on stdin", errUsage)
			}
			return "", fmt.Errorf("read password: %w", err)
		}
		password = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	default:
		v, ok := os.LookupEnv(passwordEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("%w: give the password with -password-stdin or %s", errUsage, passwordEnv)
		}
		password = v
	}
	if err := auth.CheckPassword(password); err != nil {
		return "", fmt.Errorf("%w: %w", errUsage, err)
	}
	return password, nil
}

func checkUserID(id string) error {
	if id == "" {
		return errors.New("-id is required")
	}
	if len(id) > 64 {
		return errors.New("-id: at most 64 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-+@", c) >= 0) {
			return fmt.Errorf("-id %q: only letters, digits and ._-+@ allowed", id)
		}
	}
	return nil
}

func checkIdentity(identity string) error {
	if identity == "" {
		return errors.New("-identity is required")
	}
	var u sip.Uri
	if hasControl(identity) || sip.ParseUri(identity, &u) != nil ||
		(u.Scheme != "sip" && u.Scheme != "sips") || u.User == "" || u.Host == "" {
		return fmt.Errorf("-identity %q: want sip:user@domain", identity)
	}
	return nil
}

func checkTel(tel string) error {
	if tel == "" {
		return nil
	}
	num, ok := strings.CutPrefix(tel, "tel:")
	if !ok || num == "" || len(num) > 64 {
		return fmt.Errorf("-tel %q: want tel:+NUMBER", tel)
	}
	for i := 0; i < len(num); i++ {
		if c := num[i]; !(c >= '0' && c <= '9' || c == '+' && i == 0 || c == '-' || c == '.') {
			return fmt.Errorf("-tel %q: want tel:+NUMBER", tel)
		}
	}
	return nil
}

func checkDisplayName(name string) error {
	if len(name) > 256 || hasControl(name) {
		return errors.New("-name: at most 256 characters, no control characters")
	}
	return nil
}

// parseRoles splits a comma-separated list, drops blanks and duplicates,
// and refuses roles that neither the built-ins nor auth.roles define.
func parseRoles(cfg auth.Config, list string) ([]string, error) {
	roles := []string{}
	for _, r := range strings.Split(list, ",") {
		r = strings.TrimSpace(r)
		if r == "" || slices.Contains(roles, r) {
			continue
		}
		if !cfg.KnownRole(r) {
			return nil, fmt.Errorf("unknown role %q (known: %s)", r, strings.Join(cfg.RoleNames(), ", "))
		}
		roles = append(roles, r)
	}
	return roles, nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

// printable replaces control characters so a stored value cannot break the table.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
