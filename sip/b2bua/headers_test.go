package b2bua

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/google/go-cmp/cmp"

	"github.com/convergo/convergo/sip/sipmsg"
)

// fixedClassifier routes every INVITE the same way (a stand-in for cmd's
// isc.Info adapter: the edge of the system under test).
type fixedClassifier struct {
	mu    sync.Mutex
	route Route
}

func (f *fixedClassifier) Classify(context.Context, *sip.Request) (Route, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.route, nil
}

func (f *fixedClassifier) set(r Route) {
	f.mu.Lock()
	f.route = r
	f.mu.Unlock()
}

func values(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// TestHeaderPolicy: identity and charging come from the classifier only,
// chosen headers cross, the caller's User-Agent and unknown headers do
// not, 100rel is not offered, session timers pass both ways.
func TestHeaderPolicy(t *testing.T) {
	cls := &fixedClassifier{route: Route{Kind: Terminating, CalleeAOR: calleeAOR,
		AssertedIdentity: []string{"<sip:+15551230001@ims.example>", "<tel:+15551230001>", "bad\r\nX: y"},
		ChargingVector:   `icid-value="AyretyU0dm";orig-ioi=ims.example`}}
	e := newEnvWith(t, Config{}, nil, cls)
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = newUAS(a, req, tx).respond(200, deviceSDP, sip.NewHeader("Session-Expires", "1800;refresher=uac"),
			sip.NewHeader("Require", "timer"), sip.NewHeader("P-Asserted-Identity", "<sip:device@evil>"))
	}, nil)
	e.devices(d)
	u := e.call(caller, callerSDP,
		sip.NewHeader("P-Asserted-Identity", "<sip:spoofed@evil>"),
		sip.NewHeader("User-Agent", "EvilPhone/1.0"),
		sip.NewHeader("Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`),
		sip.NewHeader("Conversation-ID", "conv-1"),
		sip.NewHeader("Contribution-ID", "contrib-1"),
		sip.NewHeader("Session-Expires", "1800"),
		sip.NewHeader("Min-SE", "90"),
		sip.NewHeader("X-Internal", "secret"),
	)
	res, _ := u.finalResponse()
	if res.StatusCode != 200 {
		t.Fatalf("final %d", res.StatusCode)
	}
	u.ack(100, "")
	inv := d.got(sip.INVITE)[0]
	for _, tt := range []struct {
		name string
		want []string
	}{
		{"P-Asserted-Identity", []string{"<sip:+15551230001@ims.example>", "<tel:+15551230001>"}},
		{"P-Charging-Vector", []string{`icid-value="AyretyU0dm";orig-ioi=ims.example`}},
		{"User-Agent", []string{"convergo"}},
		{"Accept-Contact", []string{`*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`}},
		{"Conversation-ID", []string{"conv-1"}},
		{"Contribution-ID", []string{"contrib-1"}},
		{"Session-Expires", []string{"1800"}},
		{"Min-SE", []string{"90"}},
		{"Supported", []string{"timer"}},
		{"X-Internal", nil},
	} {
		if diff := cmp.Diff(tt.want, values(inv, tt.name)); diff != "" {
			t.Errorf("fork INVITE %s (-want +got):\n%s", tt.name, diff)
		}
	}
	if got := values(res, "Session-Expires"); len(got) != 1 || got[0] != "1800;refresher=uac" {
		t.Errorf("200 Session-Expires %v", got)
	}
	if got := values(res, "Require"); len(got) != 1 || got[0] != "timer" {
		t.Errorf("200 Require %v", got)
	}
	if got := values(res, "P-Asserted-Identity"); len(got) != 0 {
		t.Errorf("device's PAI reached the caller: %v", got)
	}
	u.do(sip.BYE, "")
	e.waitIdle()
}

// TestContinueRoute: an IMS INVITE to be continued goes as one B-leg with
// the caller's Request-URI and the S-CSCF's return route.
func TestContinueRoute(t *testing.T) {
	cls := &fixedClassifier{}
	e := newEnvWith(t, Config{}, nil, cls)
	scscf := e.agent("scscf")
	route := "<sip:odi_x@" + scscf.addr + ";lr>"
	cls.set(Route{Kind: Continue, ReturnRoute: []string{route}})
	caller := e.agent("alice")
	u := e.answered(caller)
	inv := scscf.got(sip.INVITE)[0]
	if got := inv.Recipient.String(); got != u.inv.Recipient.String() {
		t.Errorf("Request-URI %s, want the caller's %s", got, u.inv.Recipient.String())
	}
	if got := values(inv, "Route"); len(got) != 1 || !strings.Contains(got[0], "odi_x@"+scscf.addr) {
		t.Errorf("Route %v, want %s", got, route)
	}
	u.do(sip.BYE, "")
	scscf.waitGot(sip.BYE, 1)
	e.waitIdle()
}

// TestSelfTarget: a binding pointing at this server is never forked to
// (it would loop).
func TestSelfTarget(t *testing.T) {
	e := newEnv(t, Config{})
	e.loc.set(calleeAOR, Target{RequestURI: "sip:bob@" + e.udp, Destination: e.udp, Transport: "udp"})
	res, _ := e.call(e.agent("alice"), callerSDP).finalResponse()
	if res.StatusCode != 480 {
		t.Fatalf("final %d, want 480", res.StatusCode)
	}
	e.waitIdle()
}

// TestCallerCancelReason: the Reason of the caller's CANCEL (e.g. from an
// upstream fork) reaches the devices.
func TestCallerCancelReason(t *testing.T) {
	e := newEnv(t, Config{})
	d, caller := e.agent("dev1"), e.agent("alice")
	d.handle(ringForever, nil)
	e.devices(d)
	u := e.call(caller, callerSDP)
	if res := u.next(); res.StatusCode != 180 {
		t.Fatalf("first response %d", res.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := caller.cli.Do(ctx, sipmsg.Cancel(u.inv, reasonHeader(200, "Call completed elsewhere"))); err != nil {
		t.Fatal(err)
	}
	c := d.waitGot(sip.CANCEL, 1)[0]
	if got := header(c, "Reason"); got != `SIP;cause=200;text="Call completed elsewhere"` {
		t.Errorf("device CANCEL Reason %q", got)
	}
	if res, _ := u.finalResponse(); res.StatusCode != 487 {
		t.Errorf("final %d, want 487", res.StatusCode)
	}
	e.waitIdle()
}

// TestMetrics: results are counted once per call; active calls and forks
// are observed.
func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	d1, d2, caller := e.agent("dev1"), e.agent("dev2"), e.agent("alice")
	d2.handle(ringForever, nil)
	e.devices(d1, d2)
	u := e.answered(caller)
	u.do(sip.BYE, "")
	e.waitIdle()
	e.loc.set(calleeAOR)
	e.call(caller, callerSDP).finalResponse() // 480: rejected
	e.waitIdle()
	got := map[string]float64{}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				got[name+"/count"] = float64(m.GetHistogram().GetSampleCount())
				got[name+"/sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	delete(got, "convergo_b2bua_setup_duration_seconds/sum")
	want := map[string]float64{
		"convergo_b2bua_calls_total/answered":         1,
		"convergo_b2bua_calls_total/cancelled":        0,
		"convergo_b2bua_calls_total/failed":           0,
		"convergo_b2bua_calls_total/rejected":         1,
		"convergo_b2bua_calls_total/timeout":          0,
		"convergo_b2bua_calls_active":                 0,
		"convergo_b2bua_call_forks/count":             1,
		"convergo_b2bua_call_forks/sum":               2,
		"convergo_b2bua_setup_duration_seconds/count": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
}
