package carddav

import (
	"encoding/xml"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// The protocol itself is tested end to end, with go-webdav's CardDAV
// client against the real addressbook service, in addressbook/carddav_test.go.

func TestPaths(t *testing.T) {
	h := New(Config{}, nil, nil, nil, nil)
	if got := h.objectPath("al ice", "a/b"); got != "/carddav/al%20ice/addressbooks/default/a%2Fb.vcf" {
		t.Fatalf("objectPath = %q", got)
	}
	tests := []struct {
		path   string
		id     string
		ok     bool
		isBook bool
	}{
		{path: "/carddav/alice/addressbooks/default/x1.vcf", id: "x1", ok: true},
		{path: "/carddav/alice/addressbooks/default/x%40y.vcf", id: "x@y", ok: true},
		{path: "/carddav/alice/addressbooks/default/noext", id: "noext", ok: true},
		{path: "/carddav/alice/addressbooks/default/", isBook: true},
		{path: "/carddav/alice/addressbooks/default/a/b.vcf"},
		{path: "/carddav/bob/addressbooks/default/x.vcf"},
		{path: "/carddav/alice/addressbooks/other/x.vcf"},
		{path: "/carddav/alice/addressbooks/default/%zz.vcf"},
	}
	for _, tt := range tests {
		id, ok := h.objectID("alice", tt.path)
		if id != tt.id || ok != tt.ok {
			t.Errorf("objectID(%q) = %q, %v; want %q, %v", tt.path, id, ok, tt.id, tt.ok)
		}
		if got := h.isBook(tt.path); tt.isBook && !got {
			t.Errorf("isBook(%q) = false", tt.path)
		}
	}
}

func TestRootElement(t *testing.T) {
	for body, want := range map[string]xml.Name{
		`<?xml version="1.0"?><d:sync-collection xmlns:d="DAV:"/>`:                                   {Space: "DAV:", Local: "sync-collection"},
		`<C:addressbook-multiget xmlns:C="urn:ietf:params:xml:ns:carddav"></C:addressbook-multiget>`: {Space: nsCard, Local: "addressbook-multiget"},
		`not xml`: {},
		``:        {},
	} {
		if got := rootElement([]byte(body)); got != want {
			t.Errorf("rootElement(%q) = %v, want %v", body, got, want)
		}
	}
}

func TestPick(t *testing.T) {
	props := []prop{{davName("getetag"), `"1"`}, {davName("displayname"), "x"}}
	unknown := xml.Name{Space: "urn:x", Local: "y"}
	found, missing := pick(props, []xml.Name{davName("getetag"), unknown}, false, false)
	if diff := gocmp.Diff([]prop{props[0]}, found, gocmp.AllowUnexported(prop{})); diff != "" || len(missing) != 1 || missing[0] != unknown {
		t.Fatalf("pick = %v, %v", found, missing)
	}
	names, _ := pick(props, nil, false, true)
	if len(names) != 2 || names[0].inner != "" {
		t.Fatalf("propname = %v", names)
	}
	m := newMS()
	m.response("/a&b", found, missing)
	m.status("/gone", 404)
	var out struct {
		Responses []struct {
			Href   string `xml:"DAV: href"`
			Status string `xml:"DAV: status"`
		} `xml:"DAV: response"`
		Token string `xml:"DAV: sync-token"`
	}
	m.b.WriteString("</d:multistatus>")
	if err := xml.Unmarshal([]byte(m.b.String()), &out); err != nil {
		t.Fatalf("multistatus does not parse: %v\n%s", err, m.b.String())
	}
	if len(out.Responses) != 2 || out.Responses[0].Href != "/a&b" || out.Responses[1].Status != "HTTP/1.1 404 Not Found" {
		t.Fatalf("multistatus = %+v", out)
	}
}
