package redis

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultKeyPrefix     = "convergo:"
	DefaultMaxEvents     = 10000
	DefaultSweepInterval = 30 * time.Second
)

// Config is the store.redis block of the configuration. Exactly one of URL
// and Addrs must be set; the other fields are optional and zero means the
// default.
type Config struct {
	// URL addresses a single server (or, with Cluster, a cluster seed):
	// redis://[user:password@]host:port[/db] or rediss:// for TLS. Parsed
	// with go-redis ParseURL; query options are ignored.
	URL string `yaml:"url"`
	// Addrs lists host:port addresses: one server, the Sentinels when
	// MasterName is set, or the seeds of a Cluster when there are several.
	Addrs []string `yaml:"addrs"`
	// MasterName selects Sentinel mode: the name of the monitored master.
	MasterName string `yaml:"master_name"`
	// Username is the ACL user (Redis 6+); it overrides the one in URL.
	Username string `yaml:"username"`
	// Password authenticates to Redis; it overrides the one in URL. It is a
	// secret: set it through the environment override of
	// store.redis.password rather than in the file, and never log it.
	Password string `yaml:"password" secret:"true"`
	// DB is the database number of a single server or Sentinel master; it
	// must be 0 in cluster mode. It overrides the one in URL when set.
	DB int `yaml:"db"`
	// KeyPrefix starts every key, so several deployments can share one
	// Redis. It must not contain { or }. Default "convergo:".
	KeyPrefix string `yaml:"key_prefix"`
	// PoolSize is the connection pool size per node; 0 means go-redis's
	// default (10 per CPU).
	PoolSize int `yaml:"pool_size"`
	// MaxEvents is how many entries of each user's event log are retained;
	// older ones are trimmed and their cursors expire. Default 10000.
	MaxEvents int `yaml:"max_events"`
	// SweepInterval is the expected interval of the binding sweep (run by
	// the registrar through Bindings.Sweep): a binding's keys outlive its
	// expiry by ten intervals so that the sweep can still report it. Default 30s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// Cluster forces cluster mode with a single address (one seed node).
	Cluster bool `yaml:"cluster"`
}

// Validate reports every problem of c at once (errors.Join). Each message
// starts with the key name relative to this block, e.g. "url: ..."; the
// caller adds "config: store.redis.".
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	cluster := c.Cluster || len(c.Addrs) > 1 && c.MasterName == ""
	switch {
	case c.URL == "" && len(c.Addrs) == 0:
		add("url: one of url and addrs is required")
	case c.URL != "" && len(c.Addrs) > 0:
		add("url: set either url or addrs, not both")
	}
	if c.URL != "" {
		if err := checkURL(c.URL); err != nil {
			errs = append(errs, err)
		}
		if c.MasterName != "" {
			add("master_name: Sentinel needs addrs (the Sentinels), not url")
		}
	}
	for i, a := range c.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			add("addrs[%d]: %q is not host:port", i, a)
		}
	}
	if c.MasterName != "" && c.Cluster {
		add("cluster: cannot be combined with master_name")
	}
	if c.DB < 0 {
		add("db: must not be negative")
	}
	if c.DB != 0 && cluster {
		add("db: must be 0 in cluster mode")
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		add("key_prefix: must not contain { or } (they delimit hash tags)")
	}
	if c.PoolSize < 0 {
		add("pool_size: must not be negative")
	}
	if c.MaxEvents < 0 {
		add("max_events: must be positive (0 means %d)", DefaultMaxEvents)
	}
	if c.SweepInterval < 0 {
		add("sweep_interval: must be positive (0 means %v)", DefaultSweepInterval)
	}
	return errors.Join(errs...)
}

// checkURL parses raw without ever putting it (and its password) in the
// error message.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("url: cannot parse: %v", err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return fmt.Errorf("url: scheme must be redis or rediss, not %q", u.Scheme)
	}
	if _, err := goredis.ParseURL(raw); err != nil {
		return fmt.Errorf("url: %v", strings.ReplaceAll(err.Error(), raw, u.Redacted()))
	}
	return nil
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	return c
}

// options builds the go-redis options; c must be valid.
func (c Config) options() (*goredis.UniversalOptions, error) {
	o := &goredis.UniversalOptions{
		Addrs:                 c.Addrs,
		MasterName:            c.MasterName,
		Username:              c.Username,
		Password:              c.Password,
		DB:                    c.DB,
		PoolSize:              c.PoolSize,
		IsClusterMode:         c.Cluster,
		ContextTimeoutEnabled: true,
	}
	if c.URL != "" {
		p, err := goredis.ParseURL(c.URL)
		if err != nil {
			return nil, checkURL(c.URL)
		}
		o.Addrs = []string{p.Addr}
		o.TLSConfig = p.TLSConfig
		if o.Username == "" {
			o.Username = p.Username
		}
		if o.Password == "" {
			o.Password = p.Password
		}
		if o.DB == 0 {
			o.DB = p.DB
		}
	}
	return o, nil
}

// where names the servers in errors, without credentials.
func (c Config) where() string {
	if c.URL != "" {
		if u, err := url.Parse(c.URL); err == nil {
			return u.Redacted()
		}
		return "url"
	}
	return strings.Join(c.Addrs, ",")
}
