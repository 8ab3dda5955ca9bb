package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const userHZ = 100

// Report is the outcome of one run; JSON with -json.
type Report struct {
	Server         string           `json:"server"`
	Calls          int              `json:"calls"`
	Up             int              `json:"calls_up"`
	Failed         int              `json:"calls_failed"`
	Failures       map[string]int   `json:"failures,omitempty"`
	SetupSeconds   float64          `json:"setup_seconds"`
	SRTP           bool             `json:"srtp"`
	CallerProfile  string           `json:"caller_profile"`
	CalleeProfiles map[string]int   `json:"callee_profiles"` // as the server offered them to the callee
	Relay          RelaySeen        `json:"relay"`
	Window         Window           `json:"window"`
	Directions     []Direction      `json:"directions"`
	Lost           uint64           `json:"lost"`
	LossPercent    float64          `json:"loss_percent"`
	AuthFailures   uint64           `json:"srtp_auth_failures"`
	Replays        uint64           `json:"srtp_replays"`
	BadPackets     uint64           `json:"bad_packets"`
	Foreign        uint64           `json:"foreign_packets"`
	SendErrors     uint64           `json:"send_errors"`
	SenderMaxLagMS float64          `json:"sender_max_lag_ms"`
	ByeOK          int              `json:"bye_ok"`
	ByeFailures    map[string]int   `json:"bye_failures,omitempty"`
	CalleeByes     int              `json:"callee_byes"`
	ServerByes     int              `json:"server_byes"`
	ForeignInvites uint64           `json:"foreign_invites"`
	SocketBuffer   int              `json:"socket_buffer_asked"`
	SocketBuffers  [2]sockBuf       `json:"socket_buffers"` // caller, callee socket
	ServerCPU      *CPU             `json:"server_cpu,omitempty"`
	ToolCPU        *CPU             `json:"tool_cpu,omitempty"`
	Kernel         map[string]int64 `json:"kernel_udp,omitempty"`    // machine-wide /proc/net/snmp deltas
	RelayMetrics   map[string]int64 `json:"relay_metrics,omitempty"` // convergo_media_* deltas
}

// RelaySeen is where the SDP each end received pointed.
type RelaySeen struct {
	// Addrs are the c= addresses of the offers the callee got and the
	// answers the caller got.
	Addrs []string `json:"addrs"`
	// Port ranges of the m= lines: the caller side's (answers) and the
	// callee side's (offers).
	CallerPortMin int `json:"caller_port_min"`
	CallerPortMax int `json:"caller_port_max"`
	CalleePortMin int `json:"callee_port_min"`
	CalleePortMax int `json:"callee_port_max"`
	// Anchored counts offers to the callee that named an address other
	// than the caller's own media socket; Unanchored those that named it
	// (SDP crossed untouched: media bypasses the relay).
	Anchored   int `json:"anchored"`
	Unanchored int `json:"unanchored"`
}

// Window is the measured media phase, all calls up.
type Window struct {
	Seconds          float64 `json:"seconds"`
	Sent             uint64  `json:"sent"`
	Forwarded        uint64  `json:"forwarded"` // received by the tool: forwarded by the relay
	PacketsPerSecond float64 `json:"packets_per_second"`
	// Offered is what the tool sent per second; Nominal what the calls up
	// should send (2 x 50 packets/s each). Offered well below Nominal means
	// the tool was starved of CPU and the figures understate the load.
	Offered float64 `json:"offered_per_second"`
	Nominal float64 `json:"nominal_per_second"`
}

// Direction is one media direction over the whole run.
type Direction struct {
	Name        string  `json:"name"`
	Sent        uint64  `json:"sent"`
	Received    uint64  `json:"received"`
	Lost        uint64  `json:"lost"`
	LossPercent float64 `json:"loss_percent"`
}

// CPU is a process's cost over the window.
type CPU struct {
	PID             int     `json:"pid,omitempty"`
	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUPercent      float64 `json:"cpu_percent"` // of one core
	MicrosPerPacket float64 `json:"us_per_packet"`
	RSSMiB          float64 `json:"rss_mib,omitempty"`
	Error           string  `json:"error,omitempty"`
}

// Clean reports whether the run met the target: every call up and hung up
// with 200, nothing lost, every packet authentic and well-formed.
func (r Report) Clean() bool {
	return r.Up == r.Calls && r.Failed == 0 && r.Lost == 0 && r.AuthFailures == 0 && r.Replays == 0 &&
		r.BadPackets == 0 && r.ByeOK == r.Calls && r.SendErrors == 0
}

// Starved reports whether the tool sent clearly less than the calls
// nominally carry (CPU starved): then no loss does not prove the target.
func (r Report) Starved() bool {
	return r.Window.Nominal > 0 && r.Window.Offered < 0.98*r.Window.Nominal
}

func buildReport(o options, sg *signalling, m *media, setup time.Duration, w0, w1 sample) Report {
	r := Report{Server: o.Server, Calls: o.Calls, SetupSeconds: setup.Seconds(), SRTP: o.SRTP,
		CallerProfile: "RTP/AVP", CalleeProfiles: map[string]int{}, Failures: map[string]int{},
		ByeFailures: map[string]int{}, ForeignInvites: sg.foreignInvites.Load(),
		SocketBuffer: o.SocketBuffer, SocketBuffers: m.bufs, SendErrors: m.sendErrs.Load(),
		SenderMaxLagMS: float64(m.maxLag.Load()) / 1e6}
	if o.SRTP {
		r.CallerProfile = "RTP/SAVP"
	}
	addrs := map[string]bool{}
	for i := range sg.calls {
		c := &sg.calls[i]
		offer := c.offer.Load()
		if offer != nil {
			r.CalleeProfiles[offer.Proto]++
			addrs[offer.Addr.String()] = true
			r.Relay.CalleePortMin, r.Relay.CalleePortMax = minMax(r.Relay.CalleePortMin, r.Relay.CalleePortMax, offer.Port)
			if offer.Peer == m.addrs[caller] {
				r.Relay.Unanchored++
			} else {
				r.Relay.Anchored++
			}
		}
		if c.up {
			addrs[c.answer.Addr.String()] = true
			r.Relay.CallerPortMin, r.Relay.CallerPortMax = minMax(r.Relay.CallerPortMin, r.Relay.CallerPortMax, c.answer.Port)
		}
		switch {
		case !c.up:
			r.Failures[c.failure]++
		case !c.calleeUp.Load():
			why := "callee: no INVITE reached the device"
			if e := c.calleeErr.Load(); e != nil {
				why = "callee: " + *e
			} else if offer != nil {
				why = "callee: no ACK"
			}
			r.Failures[why]++
		default:
			r.Up++
		}
		switch {
		case c.byeOK:
			r.ByeOK++
		case c.up:
			r.ByeFailures[c.byeErr]++
		}
		if c.calleeBye.Load() {
			r.CalleeByes++
		}
		if c.serverBye.Load() {
			r.ServerByes++
		}
	}
	r.Failed = r.Calls - r.Up
	r.Relay.Addrs = slices.Sorted(maps.Keys(addrs))

	sent, recv := m.totals()
	for _, d := range []struct {
		name     string
		from, to int
	}{{"caller->callee", caller, callee}, {"callee->caller", callee, caller}} {
		dir := Direction{Name: d.name, Sent: sent[d.from], Received: recv[d.to]}
		if dir.Sent > dir.Received {
			dir.Lost = dir.Sent - dir.Received
		}
		dir.LossPercent = percent(dir.Lost, dir.Sent)
		r.Directions = append(r.Directions, dir)
		r.Lost += dir.Lost
	}
	r.LossPercent = percent(r.Lost, sent[caller]+sent[callee])
	for i := range m.legs {
		for s := range m.legs[i] {
			l := &m.legs[i][s]
			r.AuthFailures += l.authFail.Load()
			r.Replays += l.replay.Load()
			r.BadPackets += l.badPkt.Load()
		}
	}
	r.Foreign = m.foreign[caller].Load() + m.foreign[callee].Load()

	secs := w1.at.Sub(w0.at).Seconds()
	r.Window = Window{Seconds: secs,
		Sent:      w1.sent[caller] + w1.sent[callee] - w0.sent[caller] - w0.sent[callee],
		Forwarded: w1.recv[caller] + w1.recv[callee] - w0.recv[caller] - w0.recv[callee]}
	r.Window.Nominal = float64(r.Up) * 2 * float64(time.Second/ptime)
	if secs > 0 {
		r.Window.PacketsPerSecond = float64(r.Window.Forwarded) / secs
		r.Window.Offered = float64(r.Window.Sent) / secs
	}
	cpu := func(pid int, c0, c1 time.Duration, rss int64, err error) *CPU {
		c := &CPU{PID: pid}
		if err != nil {
			c.Error = err.Error()
			return c
		}
		c.CPUSeconds = (c1 - c0).Seconds()
		if secs > 0 {
			c.CPUPercent = 100 * c.CPUSeconds / secs
		}
		if r.Window.Forwarded > 0 {
			c.MicrosPerPacket = c.CPUSeconds * 1e6 / float64(r.Window.Forwarded)
		}
		c.RSSMiB = float64(rss) / (1 << 20)
		return c
	}
	if o.ServerPID > 0 {
		r.ServerCPU = cpu(o.ServerPID, w0.serverCPU, w1.serverCPU, w1.serverRSS, firstErr(w0.serverErr, w1.serverErr))
	}
	r.ToolCPU = cpu(0, w0.toolCPU, w1.toolCPU, 0, firstErr(w0.toolErr, w1.toolErr))
	r.ToolCPU.RSSMiB = 0
	return r
}

func minMax(lo, hi, v int) (int, int) {
	if lo == 0 || v < lo {
		lo = v
	}
	return lo, max(hi, v)
}

func percent(part, whole uint64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// WriteText prints r for people.
func (r Report) WriteText(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	callee := strings.Join(slices.Sorted(maps.Keys(r.CalleeProfiles)), ",")
	mode := "plain relay"
	switch {
	case r.SRTP && callee == "RTP/AVP":
		mode = "relay bridges SRTP<->RTP"
	case r.SRTP:
		mode = "SRTP both sides"
	}
	p("mediaload: %d calls to %s; G.711 PCMU 20 ms (%d-byte RTP); caller %s, callee %s (%s)",
		r.Calls, r.Server, packetLen, r.CallerProfile, orDash(callee), mode)
	p("calls:   %d up, %d failed, set up in %.1f s; BYE answered 200: %d, BYE reached the callee: %d, server hung up: %d",
		r.Up, r.Failed, r.SetupSeconds, r.ByeOK, r.CalleeByes, r.ServerByes)
	for _, k := range slices.Sorted(maps.Keys(r.Failures)) {
		p("         failed: %d x %s", r.Failures[k], k)
	}
	for _, k := range slices.Sorted(maps.Keys(r.ByeFailures)) {
		p("         bye failed: %d x %s", r.ByeFailures[k], k)
	}
	p("relay:   SDP addresses %s; caller-side ports %d-%d, callee-side ports %d-%d; %d offers anchored, %d crossed untouched",
		orDash(strings.Join(r.Relay.Addrs, ",")), r.Relay.CallerPortMin, r.Relay.CallerPortMax,
		r.Relay.CalleePortMin, r.Relay.CalleePortMax, r.Relay.Anchored, r.Relay.Unanchored)
	p("window:  %.1f s with every call up: offered %.0f packets/s (nominal %.0f), forwarded %.0f packets/s through the relay",
		r.Window.Seconds, r.Window.Offered, r.Window.Nominal, r.Window.PacketsPerSecond)
	if r.Starved() {
		p("         WARNING: the tool offered %.1f%% of the nominal rate (CPU starved): the load is understated",
			100*r.Window.Offered/r.Window.Nominal)
	}
	for _, d := range r.Directions {
		p("loss:    %s %d of %d (%.4f%%)", d.Name, d.Lost, d.Sent, d.LossPercent)
	}
	p("checks:  srtp auth failures %d, replays %d, bad packets %d, foreign packets %d, send errors %d, foreign INVITEs %d",
		r.AuthFailures, r.Replays, r.BadPackets, r.Foreign, r.SendErrors, r.ForeignInvites)
	if c := r.ServerCPU; c != nil {
		if c.Error != "" {
			p("server:  pid %d: %s", c.PID, c.Error)
		} else {
			p("server:  pid %d: cpu %.1f%% of one core over the window, %.2f µs/packet, rss %.0f MiB",
				c.PID, c.CPUPercent, c.MicrosPerPacket, c.RSSMiB)
		}
	}
	if c := r.ToolCPU; c != nil && c.Error == "" {
		p("tool:    cpu %.1f%% of one core, %.2f µs/packet; sender max lag %.1f ms", c.CPUPercent, c.MicrosPerPacket, r.SenderMaxLagMS)
	}
	b := r.SocketBuffers
	hint := ""
	if r.SocketBuffer > 0 && (b[0].Read < r.SocketBuffer || b[0].Write < r.SocketBuffer) {
		hint = " (capped by the kernel: raise net.core.rmem_max/wmem_max)"
	}
	p("sockets: asked %d B, kernel accepted read %d / write %d B%s", r.SocketBuffer, b[0].Read, b[0].Write, hint)
	if len(r.Kernel) > 0 {
		p("kernel:  UDP counters over the run (machine-wide): %s", formatCounters(r.Kernel))
	}
	if len(r.RelayMetrics) > 0 {
		p("metrics: relay counters over the run: %s", formatCounters(r.RelayMetrics))
	}
	verdict := fmt.Sprintf("PASS: %d calls up, %.0f packets/s through the relay, zero loss", r.Up, r.Window.PacketsPerSecond)
	switch {
	case !r.Clean():
		verdict = "FAIL: failed calls, loss or bad packets (see above)"
	case r.Starved():
		verdict = fmt.Sprintf("INCONCLUSIVE: zero loss, but the tool offered only %.1f%% of the nominal %.0f packets/s",
			100*r.Window.Offered/r.Window.Nominal, r.Window.Nominal)
	}
	p("result:  %s", verdict)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatCounters(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s +%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// procProbe reads a process's figures from /proc (dir is /proc/<pid> or /proc/self).
type procProbe struct{ dir string }

// Sample implements processProbe.
func (p procProbe) Sample() (time.Duration, int64, error) {
	stat, err := os.ReadFile(p.dir + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errProc, err)
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return 0, 0, err
	}
	status, err := os.ReadFile(p.dir + "/status")
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errProc, err)
	}
	rss, err := parseVmRSS(status)
	return cpu, rss, err
}

// parseStatCPU returns utime+stime of a /proc/<pid>/stat line. The command
// name (field 2) may hold spaces and parentheses: fields are counted after
// its last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: stat: no command field", errProc)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state): utime is field 14, stime 15
		return 0, fmt.Errorf("%w: stat: %d fields", errProc, len(f)+2)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: stat: utime %q stime %q", errProc, f[11], f[12])
	}
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// parseVmRSS returns VmRSS of /proc/<pid>/status in bytes.
func parseVmRSS(status []byte) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("%w: status: no VmRSS", errProc)
}

// readUDPStats returns the Udp counters of /proc/net/snmp (machine-wide;
// nil when unreadable).
func readUDPStats() map[string]int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return nil
	}
	return parseSNMP(b, "Udp:")
}

// parseSNMP reads the header line and value line of one /proc/net/snmp
// protocol.
func parseSNMP(b []byte, proto string) map[string]int64 {
	var names []string
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != proto {
			continue
		}
		if names == nil {
			names = f[1:]
			continue
		}
		out := make(map[string]int64, len(names))
		for i, v := range f[1:] {
			if i >= len(names) {
				break
			}
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[names[i]] = n
			}
		}
		return out
	}
	return nil
}

// scrapeMetrics fetches url (convergo's /metrics) and returns its
// convergo_media_* series; nil without a URL or on failure (logged).
func scrapeMetrics(ctx context.Context, url string, log *zap.Logger) map[string]int64 {
	if url == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		log.Warn("metrics scrape failed", zap.Error(err))
		return nil
	}
	req.Close = true // no idle connection (and its goroutines) outlives the run
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Warn("metrics scrape failed", zap.Error(err))
		return nil
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil || res.StatusCode != http.StatusOK {
		log.Warn("metrics scrape failed", zap.Int("status", res.StatusCode), zap.Error(err))
		return nil
	}
	m := parseMetrics(body, "convergo_media_")
	for k := range m {
		if name, _, _ := strings.Cut(k, "{"); !strings.HasSuffix(name, "_total") {
			delete(m, k) // gauges (calls, port pairs) have no meaningful delta
		}
	}
	return m
}

// parseMetrics reads Prometheus text-format samples whose name starts
// with prefix, keyed by "name{labels}".
func parseMetrics(b []byte, prefix string) map[string]int64 {
	out := map[string]int64{}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = int64(v)
	}
	return out
}

// diffCounters returns b-a for the keys whose value changed.
func diffCounters(a, b map[string]int64) map[string]int64 {
	if a == nil || b == nil {
		return nil
	}
	out := map[string]int64{}
	for k, v := range b {
		if d := v - a[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}
