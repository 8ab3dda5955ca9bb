package registrar

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/convergo/convergo/auth"
	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/redis"
	"github.com/convergo/convergo/store/redistest"
)

func openRedis(t *testing.T, addr string) store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := redis.Open(ctx, redis.Config{URL: "redis://" + addr}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestTwoNodesSharedRedis: a device registers over TCP on node A; node B,
// sharing the Redis, routes a request for it through A's Path hop, and A
// proxies it over the device's connection.
func TestTwoNodesSharedRedis(t *testing.T) {
	addr := redistest.StartServer(t)
	// The nodes trust each other (isc.trusted_peers), as a cluster must.
	a := startNode(t, nodeOpts{store: openRedis(t, addr), name: "node-a", trusted: trustLoopback})
	b := startNode(t, nodeOpts{store: openRedis(t, addr), name: "node-b", trusted: trustLoopback})
	aor := a.addUser("nina")

	dev := newUA(t, "TCP")
	dev.answer = func(req *sip.Request, tx sip.ServerTransaction) {
		ok := sip.NewResponseFromRequest(req, 200, "OK", nil)
		ok.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "nina", Host: "10.255.0.7", Port: 5999}})
		_ = tx.Respond(ok)
	}
	res := dev.register(a.addr("tcp"), aor, "nina", auth.DigestSHA256,
		contactLine("sip:nina@10.255.0.7:5999;transport=tcp;ob", inst1, 1, ""), "Supported: outbound, gruu")
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER on A: %d %s", res.StatusCode, res.Reason)
	}

	// Node A sees a local flow; node B sees a binding held by A.
	ta, err := a.reg.Targets(t.Context(), aor)
	if err != nil || len(ta) != 1 || ta[0].Destination == "" || len(ta[0].Route) != 0 {
		t.Fatalf("Targets on A = %+v, %v; want the local flow", ta, err)
	}
	tb, err := b.reg.Targets(t.Context(), aor)
	if err != nil || len(tb) != 1 {
		t.Fatalf("Targets on B = %+v, %v", tb, err)
	}
	tg := tb[0]
	if tg.Destination != "" || len(tg.Route) != 1 || !strings.Contains(tg.Route[0], "@"+a.addr("tcp")+";transport=tcp;lr") ||
		tg.Transport != "tcp" || tg.RequestURI != "sip:nina@10.255.0.7:5999;transport=tcp;ob" {
		t.Fatalf("target on B = %+v; want Route through A's flow URI", tg)
	}

	// B sends a MESSAGE for the device: it reaches the device through A,
	// over the connection the device registered on.
	res, err = sendFromNode(t, b, tg, sip.MESSAGE)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("MESSAGE from B: %v, %v", res, err)
	}
	got := recv(t, dev.inbox, sip.MESSAGE)
	if got.Source() != a.addr("tcp") {
		t.Fatalf("MESSAGE reached the device from %s, want A's listener %s (the registered flow)", got.Source(), a.addr("tcp"))
	}
	if vias := got.GetHeaders("Via"); len(vias) != 2 {
		t.Fatalf("device saw %d Via, want A's and B's", len(vias))
	}

	// An INVITE from B is record-routed by A and answered through it.
	inv := newRequest(t, sip.INVITE, tg.RequestURI, tg.AOR, tg.Route)
	inv.SetTransport("TCP")
	cli := newNodeClient(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	ans, err := cli.Do(ctx, inv)
	if err != nil || ans.StatusCode != 200 {
		t.Fatalf("INVITE from B: %v, %v", ans, err)
	}
	recv(t, dev.inbox, sip.INVITE)
	if rr := ans.RecordRoute(); rr == nil || !strings.Contains(rr.Value(), a.addr("tcp")) {
		t.Fatalf("200 Record-Route = %v, want A's flow URI", rr)
	}

	// The device leaves: B stops getting it as a target once A removes it.
	dev.close()
	eventually(t, 5*time.Second, "binding removed everywhere", func() bool {
		ts, err := b.reg.Targets(t.Context(), aor)
		return err == nil && len(ts) == 0
	})
	if ev, ok := a.nextEvent(5 * time.Second); !ok {
		t.Fatal("A emitted no event")
	} else {
		for ev.Kind != Removed {
			if ev, ok = a.nextEvent(5 * time.Second); !ok {
				t.Fatal("A emitted no Removed event for the closed flow")
			}
		}
	}
}
