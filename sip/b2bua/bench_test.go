package b2bua

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// BenchmarkCallSetup places whole calls in process: caller → b2bua → two
// devices, device 1 answers at once, device 2 rings and is cancelled;
// then ACK and BYE. Every party is a real sipgo UA on loopback UDP, so
// calls/s and allocs/op include the caller's and the devices' work too.
func BenchmarkCallSetup(b *testing.B) {
	e := newEnv(b, Config{MaxCalls: 100000})
	d1, d2 := e.newAgent("dev1", true), e.newAgent("dev2", true)
	d1.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		_ = newUAS(a, req, tx).respond(200, deviceSDP)
	}, nil)
	d2.handle(func(a *agent, req *sip.Request, tx sip.ServerTransaction) {
		u := newUAS(a, req, tx)
		cancelled := make(chan struct{})
		if !tx.OnCancel(func(*sip.Request) { close(cancelled) }) {
			return
		}
		_ = u.respond(180, "")
		select {
		case <-cancelled:
		case <-tx.Done():
		case <-time.After(10 * time.Second):
		}
		select { // take the ACK of the 487 (else sipgo parks a goroutine for it)
		case <-tx.Acks():
		case <-tx.Done():
		}
	}, nil)
	e.devices(d1, d2)
	callers := make([]*agent, 4)
	for i := range callers {
		callers[i] = e.newAgent(fmt.Sprintf("alice%d", i), true)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(16) // 16·GOMAXPROCS calls in flight
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		caller := callers[next.Add(1)%int64(len(callers))]
		for pb.Next() {
			if err := e.placeCall(caller); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
	b.StopTimer()
	waitFor(b, "calls to finish", func() bool { return e.b.Active() == 0 })
}

// placeCall runs one call to the end without touching testing.TB (it runs
// on RunParallel goroutines).
func (e *env) placeCall(a *agent) error {
	var uri sip.Uri
	_ = sip.ParseUri(calleeAOR, &uri)
	req := sip.NewRequest(sip.INVITE, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "convergo.test"},
		Params: sip.HeaderParams{{K: "tag", V: sip.GenerateTagN(8)}}}
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: uri})
	cid := sip.CallIDHeader(sip.GenerateTagN(16))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(a.contact())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(callerSDP))
	req.SetDestination(e.udp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tx, err := a.cli.TransactionRequest(ctx, req)
	if err != nil {
		return err
	}
	var res *sip.Response
wait:
	for {
		select {
		case r := <-tx.Responses():
			if r.StatusCode >= 200 {
				res = r
				break wait
			}
		case <-tx.Done():
			return fmt.Errorf("INVITE: %w", tx.Err())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("INVITE answered %d", res.StatusCode)
	}
	dlg := func(m sip.RequestMethod, seq uint32) *sip.Request {
		r := sip.NewRequest(m, res.Contact().Address)
		r.AppendHeader(sip.HeaderClone(from))
		r.AppendHeader(sip.HeaderClone(res.To()))
		r.AppendHeader(&cid)
		r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
		r.AppendHeader(&mf)
		return r
	}
	if err := a.cli.WriteRequest(dlg(sip.ACK, 1)); err != nil {
		return err
	}
	bye, err := a.cli.Do(ctx, dlg(sip.BYE, 2))
	if err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	if bye.StatusCode != 200 {
		return fmt.Errorf("BYE answered %d", bye.StatusCode)
	}
	return nil
}
