// Package config loads convergo's one YAML configuration file into the
// composed struct of cmd/convergo, applies CONVERGO_* environment overrides
// and reports every problem at once, each named by its key
// ("sip.listen[1]: …"). Unknown keys, in the file or in the environment, are
// errors: a typo must never be silently ignored. It also renders the
// effective configuration with secrets masked (fields tagged secret:"true").
//
// The package owns no state and no goroutines. It reads only the yaml tags of
// the structs it is given, so each domain package keeps its own Config type.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment override: CONVERGO_SIP_LISTEN sets sip.listen.
const EnvPrefix = "CONVERGO_"

// Error is one problem, attached to a key path such as "sip.listen[1]".
type Error struct {
	Key string
	Err error
}

func (e *Error) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

var durationType = reflect.TypeFor[time.Duration]()

// Decode fills dst (a pointer to a struct) from the YAML document data and
// returns every problem found, joined. Keys absent from data keep the value
// dst already has (the defaults).
func Decode(data []byte, dst any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil
	}
	var errs []error
	decodeNode(doc.Content[0], reflect.ValueOf(dst).Elem(), "", &errs)
	return errors.Join(errs...)
}

func decodeNode(n *yaml.Node, v reflect.Value, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Tag == "!!null" {
		return
	}
	switch {
	case v.Kind() == reflect.Struct && v.Type() != durationType:
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, &Error{Key: keyOr(path), Err: fmt.Errorf("line %d: want a mapping", n.Line)})
			return
		}
		fields := yamlFields(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, &Error{Key: join(path, k.Value), Err: fmt.Errorf("line %d: unknown key", k.Line)})
				continue
			}
			decodeNode(val, v.Field(idx), join(path, k.Value), errs)
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			*errs = append(*errs, &Error{Key: keyOr(path), Err: fmt.Errorf("line %d: want a list", n.Line)})
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		v.Set(s)
	default:
		ptr := reflect.New(v.Type())
		if err := n.Decode(ptr.Interface()); err != nil {
			*errs = append(*errs, &Error{Key: keyOr(path), Err: fmt.Errorf("line %d: %s", n.Line, cleanYAMLError(err))})
			return
		}
		v.Set(ptr.Elem())
	}
}

func cleanYAMLError(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := te.Errors[0]
		if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "line ") {
			return rest
		}
		return msg
	}
	return err.Error()
}

// yamlFields maps yaml key → field index for the exported fields of t.
func yamlFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if name := yamlName(f); name != "" {
			out[name] = i
		}
	}
	return out
}

func yamlName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func keyOr(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

// EnvName returns the environment variable that overrides key path
// ("store.redis.url" → "CONVERGO_STORE_REDIS_URL").
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

// Leaf is one overridable key.
type Leaf struct {
	Key  string // dotted path, e.g. "sip.listen"
	Env  string // environment variable name
	Type string // human type: string, bool, int, duration, list
}

// Leaves lists every key of the struct type of dst that an environment
// variable can set: scalars, durations and lists of scalars (comma-separated).
// Lists of structs and maps are set in the file only.
func Leaves(dst any) []Leaf {
	var out []Leaf
	walkLeaves(reflect.TypeOf(dst).Elem(), "", &out)
	return out
}

func walkLeaves(t reflect.Type, path string, out *[]Leaf) {
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		if !f.IsExported() || name == "" {
			continue
		}
		p := join(path, name)
		ft := f.Type
		switch {
		case ft == durationType:
			*out = append(*out, Leaf{Key: p, Env: EnvName(p), Type: "duration"})
		case ft.Kind() == reflect.Struct:
			walkLeaves(ft, p, out)
		case ft.Kind() == reflect.Slice && isScalar(ft.Elem()):
			*out = append(*out, Leaf{Key: p, Env: EnvName(p), Type: "list"})
		case isScalar(ft):
			*out = append(*out, Leaf{Key: p, Env: EnvName(p), Type: ft.Kind().String()})
		}
	}
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// ApplyEnv sets fields of dst from environ entries ("KEY=value") whose name
// starts with EnvPrefix. A CONVERGO_ variable that names no key is an error
// unless listed in ignore (variables with another use, such as a password
// read by a CLI command).
func ApplyEnv(dst any, environ []string, ignore ...string) error {
	leaves := Leaves(dst)
	byEnv := make(map[string]Leaf, len(leaves))
	for _, l := range leaves {
		byEnv[l.Env] = l
	}
	var errs []error
	names := make([]string, 0)
	values := make(map[string]string)
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) || slices.Contains(ignore, name) {
			continue
		}
		names = append(names, name)
		values[name] = val
	}
	sort.Strings(names)
	for _, name := range names {
		l, ok := byEnv[name]
		if !ok {
			errs = append(errs, &Error{Key: name, Err: errors.New("environment variable names no configuration key")})
			continue
		}
		field := fieldByPath(reflect.ValueOf(dst).Elem(), l.Key)
		if err := setFromString(field, values[name]); err != nil {
			errs = append(errs, &Error{Key: l.Key + " (" + name + ")", Err: err})
		}
	}
	return errors.Join(errs...)
}

// Value renders the current value of key path in dst (a pointer to the
// composed struct) as the environment would spell it: lists comma-separated,
// durations as "30s", secrets masked.
func Value(dst any, path string) string {
	v := fieldByPath(reflect.ValueOf(dst).Elem(), path)
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range v.Len() {
			parts[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(parts, ",")
	case v.Kind() == reflect.String:
		return maskURL(v.String())
	default:
		return fmt.Sprint(v.Interface())
	}
}

func fieldByPath(v reflect.Value, path string) reflect.Value {
	for _, part := range strings.Split(path, ".") {
		v = v.Field(yamlFields(v.Type())[part])
	}
	return v
}

func setFromString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q: not a duration (e.g. 30s, 5m)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q: not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q: not an integer", s)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q: not a non-negative integer", s)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q: not a number", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var parts []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setFromString(sl.Index(i), p); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(sl)
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// Prefix rewrites the problems of a package's Validate error so that their
// keys are relative to the whole file: Prefix("sip", err) turns
// "listen[1]: …" into "sip.listen[1]: …".
func Prefix(section string, err error) []error {
	if err == nil {
		return nil
	}
	var parts []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			parts = append(parts, Prefix(section, e)...)
		}
		return parts
	}
	var ce *Error
	if errors.As(err, &ce) {
		return []error{&Error{Key: join(section, ce.Key), Err: ce.Err}}
	}
	key, msg, ok := strings.Cut(err.Error(), ": ")
	if !ok || strings.ContainsAny(key, " \"") {
		return []error{&Error{Key: section, Err: err}}
	}
	return []error{&Error{Key: join(section, key), Err: errors.New(msg)}}
}

// Render returns the YAML of v in field order, with every field tagged
// secret:"true" masked, passwords inside URLs masked, and durations written
// as "30s".
func Render(v any) ([]byte, error) {
	out, err := yaml.Marshal(toNode(reflect.ValueOf(v), false))
	if err != nil {
		return nil, fmt.Errorf("config: render: %w", err)
	}
	return out, nil
}

// Mask is what Render prints instead of a secret.
const Mask = "********"

func toNode(v reflect.Value, secret bool) *yaml.Node {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
		}
		v = v.Elem()
	}
	scalar := func(tag, val string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: val} }
	switch {
	case v.Type() == durationType:
		return scalar("!!str", time.Duration(v.Int()).String())
	case v.Kind() == reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			name := yamlName(f)
			if !f.IsExported() || name == "" {
				continue
			}
			n.Content = append(n.Content, scalar("!!str", name), toNode(v.Field(i), f.Tag.Get("secret") == "true"))
		}
		return n
	case v.Kind() == reflect.Slice || v.Kind() == reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
		if v.Len() > 0 && v.Index(0).Kind() == reflect.Struct {
			n.Style = 0
		}
		for i := range v.Len() {
			n.Content = append(n.Content, toNode(v.Index(i), secret))
		}
		return n
	case v.Kind() == reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			n.Content = append(n.Content, scalar("!!str", fmt.Sprint(k)), toNode(v.MapIndex(k), secret))
		}
		return n
	case v.Kind() == reflect.String:
		s := v.String()
		if secret && s != "" {
			s = Mask
		}
		return scalar("!!str", maskURL(s))
	case v.Kind() == reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	default:
		return scalar("", fmt.Sprint(v.Interface()))
	}
}

// maskURL hides the password of a URL such as redis://user:pass@host.
func maskURL(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return strings.Replace(u.String(), "xxxxx", Mask, 1)
	}
	return s
}
