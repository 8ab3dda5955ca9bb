package addressbook

import (
	"errors"
	"fmt"
	"strings"

	"github.com/convergo/convergo/addressbook/phone"
)

// Defaults applied by WithDefaults to zero Config fields.
const (
	DefaultRegion          = "US"
	DefaultMaxContacts     = 20000
	DefaultMaxPhotoBytes   = 256 << 10
	DefaultMaxBodyBytes    = 4 << 20
	DefaultIndexCacheUsers = 256
	DefaultMaxImportBytes  = 64 << 20
)

// Config is the addressbook block of the configuration. The zero value is
// valid and means every default.
type Config struct {
	// DefaultRegion is the ISO 3166-1 region assumed for phone numbers
	// typed without a country code (+…), e.g. "US" or "CN". Default US.
	DefaultRegion string `yaml:"default_region"`
	// MaxContacts caps the live contacts of one user. Default 20000.
	MaxContacts int `yaml:"max_contacts"`
	// MaxPhotoBytes caps one contact photo (decoded bytes); bigger ones get
	// 413. Default 262144 (256 KiB).
	MaxPhotoBytes int `yaml:"max_photo_bytes"`
	// MaxBodyBytes caps a JSON request body (one contact, a batch, a
	// merge); bigger ones get 413. Default 4194304 (4 MiB).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxImportBytes caps one vCard import; the file is streamed card by
	// card, so this bounds work, not memory. Default 67108864 (64 MiB).
	MaxImportBytes int64 `yaml:"max_import_bytes"`
	// IndexCacheUsers is how many users' search indexes stay in memory
	// (least recently used are dropped and rebuilt on demand). Default 256.
	IndexCacheUsers int `yaml:"index_cache_users"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.DefaultRegion == "" {
		c.DefaultRegion = DefaultRegion
	}
	c.DefaultRegion = strings.ToUpper(c.DefaultRegion)
	if c.MaxContacts == 0 {
		c.MaxContacts = DefaultMaxContacts
	}
	if c.MaxPhotoBytes == 0 {
		c.MaxPhotoBytes = DefaultMaxPhotoBytes
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxImportBytes == 0 {
		c.MaxImportBytes = DefaultMaxImportBytes
	}
	if c.IndexCacheUsers == 0 {
		c.IndexCacheUsers = DefaultIndexCacheUsers
	}
	return c
}

// Validate reports every problem of c at once (errors.Join), each message
// starting with its key relative to this block ("max_contacts: -1: must be
// positive"); zero values are valid (defaults).
func (c Config) Validate() error {
	var errs []error
	if c.DefaultRegion != "" && !phone.ValidRegion(strings.ToUpper(c.DefaultRegion)) {
		errs = append(errs, fmt.Errorf("default_region: %q: not a region libphonenumber knows (ISO 3166-1 alpha-2, e.g. US, CN)", c.DefaultRegion))
	}
	if c.MaxContacts < 0 {
		errs = append(errs, fmt.Errorf("max_contacts: %d: must be positive", c.MaxContacts))
	}
	if c.MaxPhotoBytes < 0 {
		errs = append(errs, fmt.Errorf("max_photo_bytes: %d: must be positive", c.MaxPhotoBytes))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d: must be positive", c.MaxBodyBytes))
	}
	if d := c.WithDefaults(); d.MaxBodyBytes > 0 && d.MaxPhotoBytes > 0 && d.MaxBodyBytes < int64(d.MaxPhotoBytes)*4/3+4096 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %d: must hold a base64 photo of max_photo_bytes (%d)", d.MaxBodyBytes, d.MaxPhotoBytes))
	}
	if c.MaxImportBytes < 0 {
		errs = append(errs, fmt.Errorf("max_import_bytes: %d: must be positive", c.MaxImportBytes))
	}
	if c.IndexCacheUsers < 0 {
		errs = append(errs, fmt.Errorf("index_cache_users: %d: must be positive", c.IndexCacheUsers))
	}
	return errors.Join(errs...)
}
