package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{name: "plain", stat: "1234 (convergo) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 130 0 0 20 0 12 0 100 2000000 12000 18446744073709551615",
			want: 3800 * time.Millisecond},
		{name: "command with spaces and parens", stat: "77 (a) b (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1",
			want: 100 * time.Millisecond},
		{name: "truncated", stat: "1 (x) S 1 2 3", wantErr: true},
		{name: "no command", stat: "garbage", wantErr: true},
		{name: "not a number", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, errProc)) {
				t.Fatalf("parseStatCPU() error = %v, want error %v (errProc)", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("parseStatCPU() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	got, err := parseVmRSS([]byte("Name:\tconvergo\nVmPeak:\t  99 kB\nVmRSS:\t   51200 kB\nThreads:\t9\n"))
	if err != nil || got != 50<<20 {
		t.Fatalf("parseVmRSS() = %d, %v, want 50 MiB", got, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tkthread\n")); !errors.Is(err, errProc) {
		t.Fatalf("parseVmRSS() without VmRSS: error = %v, want errProc", err)
	}
}

func TestProcProbeSelf(t *testing.T) {
	cpu, rss, err := procProbe{dir: "/proc/self"}.Sample()
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	if cpu < 0 || rss <= 0 {
		t.Fatalf("Sample() = %s, %d", cpu, rss)
	}
	if _, _, err := (procProbe{dir: "/proc/no-such-pid"}).Sample(); !errors.Is(err, errProc) {
		t.Fatalf("Sample() of a missing process: error = %v, want errProc", err)
	}
}

func TestParseSNMP(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n" +
		"Udp: 100 2 3 99 3 0\n" +
		"UdpLite: InDatagrams NoPorts\nUdpLite: 0 0\n"
	want := map[string]int64{"InDatagrams": 100, "NoPorts": 2, "InErrors": 3, "OutDatagrams": 99, "RcvbufErrors": 3, "SndbufErrors": 0}
	if diff := cmp.Diff(want, parseSNMP([]byte(snmp), "Udp:")); diff != "" {
		t.Fatalf("parseSNMP() mismatch (-want +got):\n%s", diff)
	}
	if got := parseSNMP([]byte(snmp), "Tcp:"); got != nil {
		t.Fatalf("parseSNMP(Tcp:) = %v, want nil", got)
	}
}

func TestParseMetricsAndDiff(t *testing.T) {
	before := parseMetrics([]byte(strings.Join([]string{
		"# HELP convergo_media_packets_total RTP/RTCP packets",
		"# TYPE convergo_media_packets_total counter",
		`convergo_media_packets_total{side="a"} 10`,
		`convergo_media_packets_total{side="b"} 1e+06`,
		`convergo_media_drops_total{reason="source",side="a"} 0`,
		"convergo_sip_requests_total 5",
		"convergo_media_calls garbage",
	}, "\n")), "convergo_media_")
	want := map[string]int64{`convergo_media_packets_total{side="a"}`: 10, `convergo_media_packets_total{side="b"}`: 1000000,
		`convergo_media_drops_total{reason="source",side="a"}`: 0}
	if diff := cmp.Diff(want, before); diff != "" {
		t.Fatalf("parseMetrics() mismatch (-want +got):\n%s", diff)
	}
	after := map[string]int64{`convergo_media_packets_total{side="a"}`: 15, `convergo_media_packets_total{side="b"}`: 1000000,
		`convergo_media_drops_total{reason="source",side="a"}`: 2, `convergo_media_latch_events_total{side="a"}`: 1}
	wantDiff := map[string]int64{`convergo_media_packets_total{side="a"}`: 5, `convergo_media_drops_total{reason="source",side="a"}`: 2,
		`convergo_media_latch_events_total{side="a"}`: 1}
	if diff := cmp.Diff(wantDiff, diffCounters(before, after)); diff != "" {
		t.Fatalf("diffCounters() mismatch (-want +got):\n%s", diff)
	}
	if diffCounters(nil, after) != nil {
		t.Fatal("diffCounters(nil, b) must be nil: nothing was measured")
	}
}

func TestReportClean(t *testing.T) {
	ok := Report{Calls: 2, Up: 2, ByeOK: 2}
	if !ok.Clean() {
		t.Fatal("a run with every call up and hung up, nothing lost, is clean")
	}
	for name, r := range map[string]Report{
		"failed call":  {Calls: 2, Up: 1, Failed: 1, ByeOK: 1},
		"loss":         {Calls: 2, Up: 2, ByeOK: 2, Lost: 1},
		"auth failure": {Calls: 2, Up: 2, ByeOK: 2, AuthFailures: 1},
		"bad packet":   {Calls: 2, Up: 2, ByeOK: 2, BadPackets: 1},
		"bye failed":   {Calls: 2, Up: 2, ByeOK: 1},
	} {
		if r.Clean() {
			t.Errorf("%s: Clean() = true", name)
		}
	}
}
