package search

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var (
	benchSurnames = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
	benchGiven    = []rune("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕鹏辉建国文斌宇浩凯")
	benchFirst    = []string{"James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
		"Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles",
		"Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra"}
	benchLast = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
		"Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
		"Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson"}
	benchOrgs = []string{"Acme Corp", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay Industries", "中国移动", "华为"}
	benchTags = []string{"work", "family", "friends", "tennis", "school", "vip"}
)

// benchIndex builds an index of n generated contacts: 40% Chinese names,
// the rest Latin, each with one or two numbers, an email, often an
// organisation and a tag; a few starred and frequent.
func benchIndex(n int) *Index {
	rng := rand.New(rand.NewPCG(1, 2))
	ix := New()
	for i := range n {
		var f Fields
		if rng.IntN(10) < 4 {
			name := string(benchSurnames[rng.IntN(len(benchSurnames))]) + string(benchGiven[rng.IntN(len(benchGiven))])
			if rng.IntN(2) == 0 {
				name += string(benchGiven[rng.IntN(len(benchGiven))])
			}
			f.Names = []string{name}
			mobile := fmt.Sprintf("1%d%09d", 3+rng.IntN(6), rng.IntN(1e9))
			f.Phones = append(f.Phones, Phone{E164: "+86" + mobile, NSN: mobile, Raw: mobile})
		} else {
			first, last := benchFirst[rng.IntN(len(benchFirst))], benchLast[rng.IntN(len(benchLast))]
			f.Names = []string{first + " " + last, first, last}
			f.Emails = []string{fmt.Sprintf("%s.%s%d@example.com", first, last, i)}
			nsn := fmt.Sprintf("%d555%04d", 200+rng.IntN(700), rng.IntN(1e4))
			f.Phones = append(f.Phones, Phone{E164: "+1" + nsn, NSN: nsn, Raw: nsn})
		}
		if rng.IntN(3) == 0 {
			f.Orgs = []string{benchOrgs[rng.IntN(len(benchOrgs))]}
		}
		if rng.IntN(2) == 0 {
			f.Tags = []string{benchTags[rng.IntN(len(benchTags))]}
		}
		f.Starred = rng.IntN(50) == 0
		if rng.IntN(20) == 0 {
			f.Frequency = rng.Float64() * 10
		}
		f.SortName = f.Names[0]
		ix.Put(fmt.Sprintf("c%05d", i), f)
	}
	ix.Commit()
	return ix
}

// benchQueries mixes what people type: pinyin initials and syllables, Han
// characters, Latin prefixes, typos, number fragments in several formats,
// emails, organisations and tags.
var benchQueries = []string{
	"zs", "zhang", "wangwei", "张", "李娜", "lm", "chen j",
	"mar", "jennifer", "jenifer", "smiht", "rodriguez", "ro",
	"138 0013", "+86 139", "555 0143", "(212) 555", "0143",
	"example.com", "acme", "tag:work", "华为", "is:starred jo",
}

// BenchmarkSearch measures one query over a 20,000-contact book and
// reports the latency percentiles over all queries run (p50/p99 in µs).
func BenchmarkSearch(b *testing.B) {
	ix := benchIndex(20000)
	queries := make([]Query, len(benchQueries))
	for i, s := range benchQueries {
		q, err := ParseQuery(s)
		if err != nil {
			b.Fatalf("ParseQuery(%q) error = %v", s, err)
		}
		queries[i] = q
	}
	var lat []time.Duration
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := time.Now()
		ix.Search(queries[i%len(queries)], 50)
		lat = append(lat, time.Since(start))
		i++
	}
	reportPercentiles(b, lat)
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.90), "p90-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkIndexBuild measures building the index of a 20,000-contact book.
func BenchmarkIndexBuild(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchIndex(20000)
	}
}
