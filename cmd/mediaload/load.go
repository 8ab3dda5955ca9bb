package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// runLoad runs one load test against o.Server and returns its report. It
// returns an error only when the run could not take place (bad options,
// sockets, REGISTER refused); failed calls and loss are in the report.
// Every goroutine it starts has ended when it returns.
func runLoad(ctx context.Context, o options, log *zap.Logger) (Report, error) {
	if err := o.validate(); err != nil {
		return Report{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	m, err := newMedia(netip.MustParseAddr(o.MediaAddr), o.Calls, o.SocketBuffer)
	if err != nil {
		return Report{}, err
	}
	var wg sync.WaitGroup
	senderDone := make(chan struct{})
	defer func() {
		close(senderDone)
		m.close()
		wg.Wait()
	}()
	wg.Go(func() { m.runReceiver(caller) })
	wg.Go(func() { m.runReceiver(callee) })
	wg.Go(func() { m.runSender(senderDone) })

	var rb [6]byte
	_, _ = rand.Read(rb[:])
	sg, err := newSignalling(o, m, hex.EncodeToString(rb[:]), log)
	if err != nil {
		return Report{}, err
	}
	defer sg.close()
	if err := sg.register(ctx, 3600); err != nil {
		return Report{}, err
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := sg.register(uctx, 0); err != nil {
			log.Warn("unregister failed", zap.Error(err))
		}
	}()

	var server processProbe
	if o.ServerPID > 0 {
		server = procProbe{dir: fmt.Sprintf("/proc/%d", o.ServerPID)}
	}
	tool := procProbe{dir: "/proc/self"}
	kernel0 := readUDPStats()
	relay0 := scrapeMetrics(ctx, o.Metrics, log)

	m.sending.Store(true)
	start := time.Now()
	var calls, settled sync.WaitGroup
	settled.Add(o.Calls)
	setup := func() { settled.Done() }
	pace(ctx, o.Calls, o.Rate, func(i int) {
		calls.Go(func() { sg.call(ctx, i, setup) })
	}, func(i int) {
		sg.calls[i].failure = "not attempted (interrupted)"
		settled.Done()
	})
	settled.Wait()
	setupTime := time.Since(start)
	log.Info("calls settled", zap.Duration("after", setupTime))

	w0 := takeSample(m, server, tool)
	sleepCtx(ctx, o.Duration)
	w1 := takeSample(m, server, tool)
	m.sending.Store(false)
	drain(m, o.Drain)
	kernel1 := readUDPStats()
	relay1 := scrapeMetrics(ctx, o.Metrics, log)

	bye := func(i int) { close(sg.calls[i].bye) }
	pace(ctx, o.Calls, o.Rate, bye, bye)
	calls.Wait()
	// The server answers our BYE before its own BYE to the callee is
	// answered; give those a moment to land.
	waitFor(2*time.Second, func() bool {
		ok, reached := 0, 0
		for i := range sg.calls {
			c := &sg.calls[i]
			if c.byeOK {
				ok++
			}
			if c.calleeBye.Load() {
				reached++
			}
		}
		return reached >= ok
	})
	rep := buildReport(o, sg, m, setupTime, w0, w1)
	rep.Kernel = diffCounters(kernel0, kernel1)
	rep.RelayMetrics = diffCounters(relay0, relay1)
	return rep, nil
}

// pace calls do(i) for i in [0,n) at rate per second; once ctx is done
// it calls skip(i) for the rest without waiting.
func pace(ctx context.Context, n int, rate float64, do, skip func(int)) {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range n {
		if ctx.Err() != nil {
			skip(i)
			continue
		}
		t.Reset(time.Until(start.Add(time.Duration(i) * interval)))
		select {
		case <-t.C:
			do(i)
		case <-ctx.Done():
			skip(i)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitFor polls cond every 10 ms until it holds or max passed.
func waitFor(max time.Duration, cond func() bool) {
	deadline := time.Now().Add(max)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// drain waits until every packet sent has arrived and the sender is idle,
// or max passed (lost packets never arrive).
func drain(m *media, max time.Duration) {
	var last [2]uint64
	waitFor(max, func() bool {
		sent, recv := m.totals()
		idle := sent == last
		last = sent
		return idle && recv[callee] >= sent[caller] && recv[caller] >= sent[callee]
	})
}

// sample is a snapshot taken at each end of the measured window.
type sample struct {
	at                 time.Time
	sent, recv         [2]uint64
	serverCPU, toolCPU time.Duration
	serverRSS          int64
	serverErr, toolErr error
}

func takeSample(m *media, server, tool processProbe) sample {
	s := sample{at: time.Now()}
	s.sent, s.recv = m.totals()
	if server != nil {
		s.serverCPU, s.serverRSS, s.serverErr = server.Sample()
	}
	s.toolCPU, _, s.toolErr = tool.Sample()
	return s
}
