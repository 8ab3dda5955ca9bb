package registrar

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"go.uber.org/zap"

	"github.com/convergo/convergo/store"
	"github.com/convergo/convergo/store/bolt"
)

// BenchmarkTargets measures the location lookup call control and messaging
// do per request: three bindings, one held by another node (Route), two
// UDP flows of this node.
func BenchmarkTargets(b *testing.B) {
	st, err := bolt.Open(bolt.Config{Path: filepath.Join(b.TempDir(), "bench.db")}, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ua, err := sipgo.NewUA()
	if err != nil {
		b.Fatal(err)
	}
	defer ua.Close()
	r, err := New(Config{NodeURI: "sip:10.0.0.1:5060;transport=tcp"}, Deps{
		Bindings: st.Bindings(), Sweeper: st.Bindings(), Users: st.Users(), Auth: authAdapter{}, UA: ua, Node: "a",
	}, zap.NewNop(), nil)
	if err != nil {
		b.Fatal(err)
	}
	const aor = "sip:bench@" + domain
	addr, _, _, _ := r.self()
	for i, node := range []string{"a", "a", "b"} {
		key := fmt.Sprintf("urn:uuid:%d", i)
		bd := store.Binding{AOR: aor, Key: key, Contact: fmt.Sprintf("sip:bench@192.0.2.%d:5060", i+1), Instance: key,
			Expires: time.Now().Add(time.Hour), Received: fmt.Sprintf("192.0.2.%d:5060", i+1), Transport: "udp", Node: node,
			Path: []string{flowURI(addr, aor, key, false, true)}, Source: SourceDirect}
		if err := st.Bindings().Put(context.Background(), bd); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ts, err := r.Targets(ctx, aor)
		if err != nil || len(ts) != 3 {
			b.Fatalf("Targets = %d, %v", len(ts), err)
		}
	}
}

// BenchmarkParseContact measures validating one IMS-style Contact.
func BenchmarkParseContact(b *testing.B) {
	cs, ok := parseContacts(`<sip:+15551230002@[2001:db8::5]:5060;transport=tcp;ob>;+sip.instance="<urn:gsma:imei:35209900-176148-0>";reg-id=1;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.oma.cpm.msg";expires=600000`)
	if !ok {
		b.Fatal("parse")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseContact(cs[0]); err != nil {
			b.Fatal(err)
		}
	}
}
