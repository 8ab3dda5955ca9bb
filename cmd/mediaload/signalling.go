package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"go.uber.org/zap/zapcore"

	"github.com/convergo/convergo/media/sdes"
)

// sdesSuite is what the caller offers with -srtp.
const sdesSuite = "AES_CM_128_HMAC_SHA1_80"

// callState is one call's signalling record.
type callState struct {
	bye chan struct{} // closed when this call's BYE is due

	// Written by the call's goroutine, read once it has ended.
	up      bool
	failure string  // why the call was not set up
	answer  sdpInfo // the server's answer to the caller
	byeOK   bool    // our BYE got 200
	byeErr  string

	// Written by sipgo handler goroutines.
	offer    atomic.Pointer[sdpInfo] // the offer that reached the callee
	claimed  atomic.Bool             // a B-leg INVITE for this call arrived
	calleeUp atomic.Bool             // the callee's 200 was ACKed
	// ready counts the two conditions for the callee's media: its 200 was
	// ACKed, and the caller has the 200 (whose SDP the relay wrote once it
	// had taken the callee's answer). Whoever makes it 2 starts the leg.
	ready     atomic.Int32
	calleeErr atomic.Pointer[string]
	calleeBye atomic.Bool // the server's BYE reached the callee
	serverBye atomic.Bool // the server hung up the caller's leg
}

// legRef finds the dialog of an in-dialog request by Call-ID.
type legRef struct {
	index int
	uas   *sipgo.DialogServerSession // a B-leg the server sent to the callee
	uac   *sipgo.DialogClientSession // a caller leg
}

// dialogs indexes live dialogs by Call-ID; at most max entries (two per
// call), each removed when its call ends.
type dialogs struct {
	mu  sync.Mutex
	m   map[string]legRef
	max int
}

func (d *dialogs) put(id string, r legRef) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.m[id]; dup || len(d.m) >= d.max {
		return false
	}
	d.m[id] = r
	return true
}

func (d *dialogs) get(id string) (legRef, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.m[id]
	return r, ok
}

func (d *dialogs) del(id string) {
	d.mu.Lock()
	delete(d.m, id)
	d.mu.Unlock()
}

// signalling is the tool's SIP side: one user agent and one UDP listener
// for the callee device and every caller.
type signalling struct {
	o      options
	log    *zap.Logger
	run    string // marks this run's offers (a=x-mediaload)
	media  *media
	calls  []callState
	target sip.Uri // the callee AOR

	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	dua     *sipgo.DialogUA
	conn    net.PacketConn
	addr    netip.AddrPort
	served  chan struct{} // closed when ServeUDP has returned
	dialogs dialogs

	regCallID string
	regCSeq   uint32

	foreignInvites atomic.Uint64 // INVITEs for no call of this run
}

func newSignalling(o options, m *media, run string, log *zap.Logger) (*signalling, error) {
	var target sip.Uri
	if err := sip.ParseUri(o.aor(), &target); err != nil {
		return nil, fmt.Errorf("%w: -aor %q: %w", errUsage, o.aor(), err)
	}
	s := &signalling{o: o, log: log, run: run, media: m, target: target,
		calls: make([]callState, o.Calls), served: make(chan struct{}),
		dialogs: dialogs{m: make(map[string]legRef, 2*o.Calls), max: 2 * o.Calls}}
	for i := range s.calls {
		s.calls[i].bye = make(chan struct{})
	}
	host, _, _ := strings.Cut(o.Listen, ":")
	if a, err := netip.ParseAddrPort(o.Listen); err == nil {
		host = a.Addr().String()
	}
	// sipgo's own log: warnings and up, sampled (no per-message floods).
	core := zapcore.NewSamplerWithOptions(log.Named("sipgo").Core(), time.Second, 5, 0)
	slogger := slog.New(zapslog.NewHandler(core, zapslog.WithName("sipgo")))
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("mediaload"), sipgo.WithUserAgentHostname(host),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(slogger)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(slogger)))
	if err != nil {
		return nil, fmt.Errorf("sip: user agent: %w", err)
	}
	s.ua = ua
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slogger))
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	// Handlers before the listener (sipgo's handler map is not safe to change while serving).
	srv.OnInvite(s.onInvite)
	srv.OnAck(s.onAck)
	srv.OnBye(s.onBye)
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusOK, "OK", nil))
	})
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) { // only CANCELs matching no INVITE get here
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
	})
	conn, err := net.ListenPacket("udp", o.Listen)
	if err != nil {
		_ = ua.Close()
		return nil, fmt.Errorf("sip: listen %s: %w", o.Listen, err)
	}
	if uc, ok := conn.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
		_ = uc.SetWriteBuffer(4 << 20)
	}
	s.conn = conn
	s.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() { defer close(s.served); _ = srv.ServeUDP(conn) }()
	// A client bound to the listener's address must wait until sipgo pools
	// the listener, or it tries to bind that address itself and fails.
	pool := ua.TransportLayer().Pool("udp")
	for deadline := time.Now().Add(2 * time.Second); pool != nil && pool.Get(s.addr.String()) == nil && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	// UDP only: requests leave from the listener, so the server sees the
	// address the callee registered and the Via port is stable (LIBRARIES §1.1).
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(host), sipgo.WithClientPort(int(s.addr.Port())),
		sipgo.WithClientConnectionAddr(s.addr.String()), sipgo.WithClientLogger(slogger))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s.cli = cli
	s.dua = &sipgo.DialogUA{Client: cli, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: "mediaload", Host: host, Port: int(s.addr.Port())}}}
	s.regCallID = sip.GenerateTagN(24)
	return s, nil
}

// close stops the user agent and the listener and waits for the listener.
func (s *signalling) close() {
	_ = s.ua.Close()
	_ = s.conn.Close()
	<-s.served
}

// register binds the callee device (expires > 0) or removes it (0),
// answering one Digest challenge (RFC 3261 §22.2; RFC 8760 algorithms).
func (s *signalling) register(ctx context.Context, expires int) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req := s.registerRequest(expires, "")
	res, err := s.cli.Do(rctx, req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errRegister, s.o.Server, err)
	}
	if res.StatusCode == sip.StatusUnauthorized {
		cred, err := digestCredentials(res, req.Recipient.String(), s.o.User, s.o.Password)
		if err != nil {
			return fmt.Errorf("%w: %w", errRegister, err)
		}
		if res, err = s.cli.Do(rctx, s.registerRequest(expires, cred)); err != nil {
			return fmt.Errorf("%w: %s: %w", errRegister, s.o.Server, err)
		}
	}
	if res.StatusCode != sip.StatusOK {
		return fmt.Errorf("%w: %s answered %d %s", errRegister, s.o.aor(), res.StatusCode, res.Reason)
	}
	return nil
}

// registerRequest builds the device's REGISTER: same Call-ID, next CSeq.
func (s *signalling) registerRequest(expires int, authorization string) *sip.Request {
	s.regCSeq++
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: s.target.Host, Port: s.target.Port})
	req.SetDestination(s.o.Server)
	from := &sip.FromHeader{Address: *s.target.Clone(), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: *s.target.Clone(), Params: sip.NewParams()})
	cid := sip.CallIDHeader(s.regCallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: s.regCSeq, MethodName: sip.REGISTER})
	ct := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.o.User, Host: s.dua.ContactHDR.Address.Host,
		Port: int(s.addr.Port()), UriParams: sip.NewParams()}, Params: sip.NewParams()}
	ct.Address.UriParams.Add("transport", "udp")
	ct.Params.Add("+sip.instance", `"<`+s.o.Instance+`>"`)
	req.AppendHeader(&ct)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if authorization != "" {
		req.AppendHeader(sip.NewHeader("Authorization", authorization))
	}
	return req
}

// digestCredentials answers the first Digest challenge of res with an
// algorithm we support (the server may offer Bearer first, and several
// Digest algorithms in its order of preference).
func digestCredentials(res *sip.Response, uri, user, password string) (string, error) {
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			continue // not Digest (Bearer)
		}
		chal.Algorithm = strings.ToUpper(chal.Algorithm)
		cred, err := digest.Digest(chal, digest.Options{Method: string(sip.REGISTER), URI: uri, Username: user, Password: password})
		if err != nil {
			continue // an algorithm we cannot compute
		}
		return cred.String(), nil
	}
	return "", fmt.Errorf("no usable Digest challenge in %d %s", res.StatusCode, res.Reason)
}

// call runs call i: INVITE, ACK, media until its BYE is due, BYE. setup is
// called once the call is up or has failed.
func (s *signalling) call(ctx context.Context, i int, setup func()) {
	c := &s.calls[i]
	settled := false
	defer func() {
		if !settled {
			setup()
		}
	}()
	l := &s.media.legs[i][caller]
	var key *sdes.Crypto
	if s.o.SRTP {
		suite, _ := sdes.LookupSuite(sdesSuite)
		k, err := sdes.Generate(1, suite)
		if err != nil {
			c.failure = "srtp key: " + err.Error()
			return
		}
		key = &k
	}
	req := sip.NewRequest(sip.INVITE, *s.target.Clone())
	req.SetDestination(s.o.Server)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fmt.Sprintf("mediaload-%d", i),
		Host: s.dua.ContactHDR.Address.Host}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: *s.target.Clone(), Params: sip.NewParams()})
	req.AppendHeader(sip.HeaderClone(&s.dua.ContactHDR))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(buildSDP(s.media.addrs[caller], s.run, i, key))

	sctx, cancel := context.WithTimeout(ctx, s.o.SetupTimeout)
	dlg, err := s.dua.WriteInvite(sctx, req)
	if err == nil {
		err = dlg.WaitAnswer(sctx, sipgo.AnswerOptions{})
	}
	cancel()
	if err != nil {
		c.failure = failureOf(err)
		return
	}
	callID := req.CallID().Value()
	ans, err := parseSDP(dlg.InviteResponse.Body())
	if err == nil && key != nil {
		err = s.startSRTPCaller(l, ans, *key, i)
	} else if err == nil {
		if ans.secure() {
			err = fmt.Errorf("%w: %s answer to an RTP/AVP offer", errSDP, ans.Proto)
		} else {
			l.start(ans.Peer, s.media.ssrc(caller, i), nil)
		}
	}
	if aerr := dlg.Ack(context.WithoutCancel(ctx)); aerr != nil && err == nil {
		err = fmt.Errorf("ack: %w", aerr)
	}
	if err != nil {
		l.on.Store(false)
		c.failure = "answer: " + err.Error()
		settled = true
		setup()
		_ = s.hangup(ctx, c, dlg) // recorded in c.byeErr
		return
	}
	c.up, c.answer = true, ans
	s.calleeReady(i)
	s.dialogs.put(callID, legRef{index: i, uac: dlg})
	defer s.dialogs.del(callID)
	settled = true
	setup()
	select {
	case <-c.bye:
	case <-ctx.Done():
	}
	l.on.Store(false)
	if c.serverBye.Load() {
		c.byeErr = "server hung up first"
		return
	}
	if err := s.hangup(ctx, c, dlg); err == nil {
		c.byeOK = true
	}
}

// startSRTPCaller keys the caller leg of call i from the answer: our key
// encrypts, the relay's (matching our tag and suite) decrypts.
func (s *signalling) startSRTPCaller(l *leg, ans sdpInfo, key sdes.Crypto, i int) error {
	if !ans.secure() {
		return fmt.Errorf("%w: %s answer to an RTP/SAVP offer", errSDP, ans.Proto)
	}
	var remote *sdes.Crypto
	for _, c := range ans.Crypto {
		if c.Tag == key.Tag && c.Suite.Name == key.Suite.Name {
			remote = &c
			break
		}
	}
	if remote == nil {
		return fmt.Errorf("%w: answer has no a=crypto for tag %d %s", errSDP, key.Tag, key.Suite.Name)
	}
	dec, err := remote.Context()
	if err != nil {
		return err
	}
	enc, err := key.Context()
	if err != nil {
		return err
	}
	l.dec.Store(dec)
	l.start(ans.Peer, s.media.ssrc(caller, i), enc)
	return nil
}

// hangup sends BYE on the caller's dialog and waits for the final answer.
func (s *signalling) hangup(ctx context.Context, c *callState, dlg *sipgo.DialogClientSession) error {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.SetupTimeout)
	defer cancel()
	if err := dlg.Bye(bctx); err != nil {
		c.byeErr = failureOf(err)
		return err
	}
	return nil
}

// failureOf names a failed transaction for the report: the final status,
// or a short error.
func failureOf(err error) string {
	var dr *sipgo.ErrDialogResponse
	if errors.As(err, &dr) && dr.Res != nil {
		return fmt.Sprintf("%d %s", dr.Res.StatusCode, dr.Res.Reason)
	}
	var dv sipgo.ErrDialogResponse
	if errors.As(err, &dv) && dv.Res != nil {
		return fmt.Sprintf("%d %s", dv.Res.StatusCode, dv.Res.Reason)
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, sip.ErrTransactionTimeout):
		return "transaction timeout"
	}
	msg := err.Error()
	if len(msg) > 80 {
		msg = msg[:80] + "..."
	}
	return msg
}

// onInvite answers a B-leg the server forked to the callee device: 200 OK
// in the offered profile, then waits for the ACK and switches the callee's
// media on.
func (s *signalling) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	offer, err := parseSDP(req.Body())
	if err != nil || offer.Run != s.run || offer.Index < 0 || offer.Index >= len(s.calls) {
		s.foreignInvites.Add(1)
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here (Not Our Call)", nil))
		return
	}
	i := offer.Index
	c := &s.calls[i]
	if !c.claimed.CompareAndSwap(false, true) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBusyHere, "Busy Here (Second Fork)", nil))
		return
	}
	c.offer.Store(&offer)
	fail := func(e error) { msg := e.Error(); c.calleeErr.Store(&msg) }
	l := &s.media.legs[i][callee]
	var key *sdes.Crypto
	if offer.secure() {
		in := offer.Crypto[0] // the first supported line: the offerer's preference
		own, err := sdes.Generate(in.Tag, in.Suite)
		if err != nil {
			fail(err)
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusInternalServerError, "Server Internal Error", nil))
			return
		}
		dec, err1 := in.Context()
		enc, err2 := own.Context()
		if err := errors.Join(err1, err2); err != nil {
			fail(err)
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusNotAcceptableHere, "Not Acceptable Here", nil))
			return
		}
		key = &own
		l.dec.Store(dec) // before our 200: the relay may send as soon as it has it
		l.prepare(offer.Peer, s.media.ssrc(callee, i), enc)
	} else {
		l.prepare(offer.Peer, s.media.ssrc(callee, i), nil)
	}
	dlg, err := s.dua.ReadInvite(req, tx)
	if err != nil {
		fail(err)
		return
	}
	callID := req.CallID().Value()
	if !s.dialogs.put(callID, legRef{index: i, uas: dlg}) {
		fail(errors.New("duplicate Call-ID"))
		_ = dlg.Respond(sip.StatusServiceUnavailable, "Service Unavailable", nil)
		return
	}
	// RespondSDP retransmits the 200 until the ACK (RFC 3261 §13.3.1.4) and
	// returns once it arrived (onAck) or 64*T1 passed.
	if err := dlg.RespondSDP(buildSDP(s.media.addrs[callee], "", i, key)); err != nil {
		fail(err)
		s.dialogs.del(callID)
		return
	}
	c.calleeUp.Store(true)
	s.calleeReady(i)
}

// calleeReady switches the callee's media of call i on once both its
// conditions hold (callState.ready). The B2BUA ACKs the device before the
// relay takes the answer (sip/b2bua onForkAnswer), so a device sending on
// the ACK alone can lose its first packet as not_answered; the caller's
// 200 carries the relay's rewritten SDP, so it comes after.
func (s *signalling) calleeReady(i int) {
	if s.calls[i].ready.Add(1) == 2 && s.media.sending.Load() {
		s.media.legs[i][callee].on.Store(true)
	}
}

func (s *signalling) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if r, ok := s.dialogs.get(req.CallID().Value()); ok && r.uas != nil {
		_ = r.uas.ReadAck(req, tx)
	}
}

// onBye answers the server's BYE: on a B-leg it is the caller's hangup
// crossing the B2BUA; on a caller leg the server ended the call itself.
func (s *signalling) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID().Value()
	r, ok := s.dialogs.get(id)
	if !ok {
		_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist", nil))
		return
	}
	c := &s.calls[r.index]
	switch {
	case r.uas != nil:
		s.media.legs[r.index][callee].on.Store(false)
		if err := r.uas.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
			return
		}
		s.dialogs.del(id)
		c.calleeBye.Store(true)
	default:
		s.media.legs[r.index][caller].on.Store(false)
		c.serverBye.Store(true)
		if err := r.uac.ReadBye(req, tx); err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, sip.StatusBadRequest, "Bad Request", nil))
		}
	}
}
