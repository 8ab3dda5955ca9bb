package bolt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Defaults applied by Open to zero Config fields.
const (
	DefaultPath          = "./data/convergo.db"
	DefaultSweepInterval = 30 * time.Second
	DefaultMaxEvents     = 10000
)

// lockTimeout bounds how long Open waits for the file lock held by another
// process before it gives up with a clear error.
const lockTimeout = time.Second

// Config is the store.bolt block of the configuration. The zero value is
// valid and means every default.
type Config struct {
	// Path is the database file. Its parent directory is created with mode
	// 0700 and the file with mode 0600. Default ./data/convergo.db.
	Path string `yaml:"path"`
	// SweepInterval is how often Run removes expired refresh tokens and
	// revocations (bindings are swept by the registrar). Default 30s.
	SweepInterval time.Duration `yaml:"sweep_interval"`
	// MaxEvents is how many entries of each user's event log are retained;
	// older ones are trimmed and their cursors expire. Default 10000.
	MaxEvents int `yaml:"max_events"`
}

// Validate reports every problem of c at once (errors.Join). Each message
// starts with the key name relative to this block, e.g.
// "sweep_interval: must be positive"; the caller adds "config: store.bolt.".
func (c Config) Validate() error {
	var errs []error
	if c.Path != "" && (strings.HasSuffix(c.Path, string(os.PathSeparator)) || filepath.Base(c.Path) == ".") {
		errs = append(errs, errors.New("path: must name a file, not a directory"))
	}
	if strings.ContainsRune(c.Path, 0) {
		errs = append(errs, errors.New("path: must not contain NUL"))
	}
	if c.SweepInterval < 0 {
		errs = append(errs, errors.New("sweep_interval: must be positive (0 means 30s)"))
	}
	if c.MaxEvents < 0 {
		errs = append(errs, errors.New("max_events: must be positive (0 means 10000)"))
	}
	return errors.Join(errs...)
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.MaxEvents == 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	return c
}
