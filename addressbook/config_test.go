package addressbook

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want []string // key prefixes of the reported problems
	}{
		{cfg: Config{}},
		{cfg: Config{DefaultRegion: "cn", MaxContacts: 10, MaxPhotoBytes: 1024, MaxBodyBytes: 1 << 20, IndexCacheUsers: 5}},
		{cfg: Config{DefaultRegion: "XX"}, want: []string{"default_region:"}},
		{cfg: Config{MaxContacts: -1, MaxPhotoBytes: -1, MaxBodyBytes: -1, MaxImportBytes: -1, IndexCacheUsers: -1},
			want: []string{"max_contacts:", "max_photo_bytes:", "max_body_bytes:", "max_import_bytes:", "index_cache_users:"}},
		{cfg: Config{MaxPhotoBytes: 8 << 20}, want: []string{"max_body_bytes:"}}, // the default body cannot hold it
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		var got []string
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				got = append(got, line[:strings.IndexByte(line, ':')+1])
			}
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Validate(%+v) = %v, want problems %v", tt.cfg, err, tt.want)
		}
	}
	d := Config{DefaultRegion: "cn"}.WithDefaults()
	if d.DefaultRegion != "CN" || d.MaxContacts != DefaultMaxContacts || d.IndexCacheUsers != DefaultIndexCacheUsers {
		t.Fatalf("WithDefaults() = %+v", d)
	}
}
