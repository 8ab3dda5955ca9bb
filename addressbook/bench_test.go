package addressbook_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/convergo/convergo/addressbook"
	"github.com/convergo/convergo/store"
)

// seedBook writes n generated contacts for user straight into the store
// (500 per transaction): Chinese and Latin names, CN and US mobiles,
// emails, organisations, tags, some starred.
func seedBook(b *testing.B, st store.Store, user string, n int) {
	b.Helper()
	surnames := []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
	given := []rune("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红娥玲芬燕鹏辉建国文斌宇浩凯")
	first := []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
		"William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen"}
	last := []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
		"Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson", "Martin", "Lee"}
	orgs := []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "中国移动", "华为"}
	rng := rand.New(rand.NewPCG(7, 7))
	var ops []store.ContactOp
	for i := range n {
		c := store.Contact{ID: fmt.Sprintf("c%06d", i)}
		if rng.IntN(10) < 4 {
			c.Name.Family = string(surnames[rng.IntN(len(surnames))])
			c.Name.Given = string(given[rng.IntN(len(given))])
			c.Name.Display = c.Name.Family + c.Name.Given
			m := fmt.Sprintf("1%d%09d", 3+rng.IntN(6), rng.IntN(1e9))
			c.Phones = []store.ContactPhone{{Value: m, E164: "+86" + m, Valid: true, Label: "mobile"}}
		} else {
			c.Name.Given, c.Name.Family = first[rng.IntN(len(first))], last[rng.IntN(len(last))]
			c.Name.Display = c.Name.Given + " " + c.Name.Family
			nsn := fmt.Sprintf("%d555%04d", 200+rng.IntN(700), rng.IntN(1e4))
			c.Phones = []store.ContactPhone{{Value: nsn, E164: "+1" + nsn, Valid: true}}
			c.Emails = []store.ContactValue{{Value: fmt.Sprintf("%s.%s%d@example.com", c.Name.Given, c.Name.Family, i)}}
		}
		if rng.IntN(3) == 0 {
			c.Org = orgs[rng.IntN(len(orgs))]
		}
		if rng.IntN(2) == 0 {
			c.Tags = []string{"work"}
		}
		c.Starred = rng.IntN(50) == 0
		ops = append(ops, store.ContactOp{Contact: c})
		if len(ops) == 500 || i == n-1 {
			if _, err := st.Contacts().Apply(b.Context(), user, ops, 0); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
	}
}

func percentiles(b *testing.B, lat []time.Duration) {
	b.Helper()
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds())
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkSearchHTTP is GET /v1/contacts?q= end to end (JWT check,
// change-feed check, index search, JSON of 20 results) on a
// 20,000-contact book in the embedded store; it reports p50/p99.
func BenchmarkSearchHTTP(b *testing.B) {
	e := newEnv(b, "bolt", envOptions{cfg: addressbook.Config{DefaultRegion: "CN"}})
	seedBook(b, e.st, "alice", 20000)
	queries := []string{"zs", "zhang", "wangwei", "张", "李娜", "lm", "mar", "jennifer", "jenifer", "smiht",
		"138 0013", "+86 139", "555 0143", "(212) 555", "example.com", "acme", "tag:work", "华为", "is:starred jo"}
	e.search("alice", "warm up") // builds the index
	var lat []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		r := e.do("alice", "GET", "/v1/contacts?q="+url.QueryEscape(queries[i%len(queries)]), nil)
		lat = append(lat, time.Since(start))
		if r.status != http.StatusOK {
			b.Fatalf("status %d", r.status)
		}
		i++
	}
	percentiles(b, lat)
}

// BenchmarkSyncThroughput pulls a 5,000-change feed (creates, updates,
// deletes) page by page from the beginning, as a device catching up
// does, and reports changes per second.
func BenchmarkSyncThroughput(b *testing.B) {
	e := newEnv(b, "bolt", envOptions{maxEvents: 10000})
	seedBook(b, e.st, "alice", 4000)
	var ops []store.ContactOp
	for i := range 500 {
		ops = append(ops, store.ContactOp{Delete: true, Contact: store.Contact{ID: fmt.Sprintf("c%06d", i)}, Expect: 1})
	}
	if _, err := e.st.Contacts().Apply(b.Context(), "alice", ops, 0); err != nil {
		b.Fatal(err)
	}
	changes := 0
	start := time.Now()
	for b.Loop() {
		tok := ""
		for {
			var ch addressbook.ChangesResponse
			e.must(e.do("alice", "GET", "/v1/contacts/changes?limit=1000&since="+tok, nil), http.StatusOK).decode(b, &ch)
			changes += len(ch.Changes)
			tok = ch.SyncToken
			if !ch.More {
				break
			}
		}
	}
	b.ReportMetric(float64(changes)/time.Since(start).Seconds(), "changes/s")
}

// BenchmarkDuplicates runs GET /v1/contacts/duplicates on a 20,000-contact book.
func BenchmarkDuplicates(b *testing.B) {
	e := newEnv(b, "bolt", envOptions{})
	seedBook(b, e.st, "alice", 20000)
	e.must(e.do("alice", "GET", "/v1/contacts/duplicates", nil), http.StatusOK)
	for b.Loop() {
		e.must(e.do("alice", "GET", "/v1/contacts/duplicates", nil), http.StatusOK)
	}
}
