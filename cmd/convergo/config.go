package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/internal/config"
	"github.com/convergo/convergo/media"
	"github.com/convergo/convergo/sip"
	"github.com/convergo/convergo/sip/b2bua"
	"github.com/convergo/convergo/sip/isc"
	"github.com/convergo/convergo/sip/registrar"
	"github.com/convergo/convergo/store/bolt"
	"github.com/convergo/convergo/store/redis"
)

// Config is the whole configuration file. Each block belongs to the package
// that consumes it; this struct only puts them together.
type Config struct {
	// Node names this server among several sharing one Redis. Default: the host name.
	Node string `yaml:"node"`
	// ShutdownGrace bounds the whole shutdown after SIGINT/SIGTERM. Default 10s.
	ShutdownGrace time.Duration      `yaml:"shutdown_grace"`
	Log           LogConfig          `yaml:"log"`
	HTTP          HTTPConfig         `yaml:"http"`
	SIP           sip.Config         `yaml:"sip"`
	Registrar     registrar.Config   `yaml:"registrar"`
	ISC           isc.Config         `yaml:"isc"`
	B2BUA         b2bua.Config       `yaml:"b2bua"`
	Media         media.Config       `yaml:"media"`
	Store         StoreConfig        `yaml:"store"`
	Auth          auth.Config        `yaml:"auth"`
	Addressbook   addressbook.Config `yaml:"addressbook"`
	Runtime       RuntimeConfig      `yaml:"runtime"`
}

// LogConfig selects the log output.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is console (development) or json (production). Default console.
	Format string `yaml:"format"`
}

// HTTPConfig is the HTTP listener of the API and the operations endpoints.
type HTTPConfig struct {
	// Listen is the API, health and metrics address. Default 127.0.0.1:8080.
	Listen string `yaml:"listen"`
	// AdminListen serves net/http/pprof when set. Default off.
	AdminListen string `yaml:"admin_listen"`
	// ReadHeaderTimeout bounds slow clients. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
}

// StoreConfig selects and configures the storage backend.
type StoreConfig struct {
	// Backend is bolt (embedded, default) or redis.
	Backend string       `yaml:"backend"`
	Bolt    bolt.Config  `yaml:"bolt"`
	Redis   redis.Config `yaml:"redis"`
}

// Validate checks the level and format.
func (c LogConfig) Validate() error {
	var errs []error
	switch c.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("level: %q: want debug, info, warn or error", c.Level))
	}
	switch c.Format {
	case "console", "json":
	default:
		errs = append(errs, fmt.Errorf("format: %q: want console or json", c.Format))
	}
	return errors.Join(errs...)
}

// Validate checks the addresses and timeouts.
func (c HTTPConfig) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: must not be empty"))
	}
	if c.ReadHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("read_header_timeout: %s: must be positive", c.ReadHeaderTimeout))
	}
	return errors.Join(errs...)
}

// Validate checks the backend choice and the chosen backend's block only.
func (c StoreConfig) Validate() error {
	switch c.Backend {
	case "bolt":
		return prefixed("bolt", c.Bolt.Validate())
	case "redis":
		return prefixed("redis", c.Redis.Validate())
	default:
		return fmt.Errorf("backend: %q: want bolt or redis", c.Backend)
	}
}

func prefixed(section string, err error) error {
	return errors.Join(config.Prefix(section, err)...)
}

// defaultConfig is what convergo runs with when no file and no environment
// say otherwise: direct mode on 127.0.0.1 with the embedded store in ./data.
func defaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "convergo"
	}
	return Config{
		Node:          host,
		ShutdownGrace: 10 * time.Second,
		Log:           LogConfig{Level: "info", Format: "console"},
		HTTP:          HTTPConfig{Listen: "127.0.0.1:8080", ReadHeaderTimeout: 10 * time.Second},
		SIP:           sip.Config{}.WithDefaults(),
		Registrar:     registrar.Config{}.WithDefaults(),
		ISC:           isc.Config{}.WithDefaults(),
		B2BUA:         b2bua.Config{}.WithDefaults(),
		Media:         mediaDefaults(),
		Store:         StoreConfig{Backend: "bolt", Bolt: bolt.Config{}.WithDefaults(), Redis: redis.Config{}.WithDefaults()},
		Auth:          auth.Config{}.WithDefaults(),
		Addressbook:   addressbook.Config{}.WithDefaults(),
		Runtime:       RuntimeConfig{GCPercent: defaultGCPercent},
	}
}

// mediaDefaults are the media block's defaults but advertise, which
// follows media.address once file and environment are applied.
func mediaDefaults() media.Config {
	m := media.Config{}.WithDefaults()
	m.Advertise = ""
	return m
}

// nonConfigEnv are CONVERGO_ variables with another use than configuration.
var nonConfigEnv = []string{"CONVERGO_USER_PASSWORD"}

// loadConfig reads path (if any) over the defaults, applies the environment
// and validates everything. Every problem is reported, each with its key;
// the error wraps errConfig. Nothing is opened or written.
func loadConfig(path string, environ []string) (Config, error) {
	cfg := defaultConfig()
	var errs []error
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("%w: %w", errConfig, err)
		}
		if err := config.Decode(data, &cfg); err != nil {
			errs = append(errs, err)
		}
	}
	if err := config.ApplyEnv(&cfg, environ, nonConfigEnv...); err != nil {
		errs = append(errs, err)
	}
	cfg.SIP = cfg.SIP.WithDefaults()     // derived defaults (hostname) follow the listen addresses
	cfg.Media = cfg.Media.WithDefaults() // advertise follows address
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return cfg, &configError{errs: flatten(errs)}
	}
	return cfg, nil
}

func (c Config) validate() []error {
	var errs []error
	if c.Node == "" {
		errs = append(errs, &config.Error{Key: "node", Err: errors.New("must not be empty")})
	}
	if c.ShutdownGrace <= 0 {
		errs = append(errs, &config.Error{Key: "shutdown_grace", Err: fmt.Errorf("%s: must be positive", c.ShutdownGrace)})
	}
	errs = append(errs, config.Prefix("log", c.Log.Validate())...)
	errs = append(errs, config.Prefix("http", c.HTTP.Validate())...)
	errs = append(errs, config.Prefix("sip", c.SIP.Validate())...)
	errs = append(errs, config.Prefix("registrar", c.Registrar.Validate())...)
	errs = append(errs, config.Prefix("isc", c.ISC.Validate())...)
	errs = append(errs, config.Prefix("b2bua", c.B2BUA.Validate())...)
	errs = append(errs, config.Prefix("media", c.Media.Validate())...)
	errs = append(errs, config.Prefix("store", c.Store.Validate())...)
	errs = append(errs, config.Prefix("auth", c.Auth.Validate())...)
	errs = append(errs, config.Prefix("addressbook", c.Addressbook.Validate())...)
	errs = append(errs, config.Prefix("runtime", c.Runtime.Validate())...)
	return errs
}

func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
			continue
		}
		out = append(out, e)
	}
	return out
}

// configError lists every configuration problem, one per line.
type configError struct{ errs []error }

func (e *configError) Error() string {
	s := "invalid configuration:"
	for _, err := range e.errs {
		s += "\n  config: " + err.Error()
	}
	return s
}

func (e *configError) Unwrap() []error { return append([]error{errConfig}, e.errs...) }

func renderConfig(cfg Config) ([]byte, error) { return config.Render(cfg) }

func configKeys() []config.Leaf { return config.Leaves(&Config{}) }
