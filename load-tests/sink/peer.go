package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/srtp/v2"
	"github.com/pion/stun"
)

// remoteParams is what signalling tells a peer about the server's side of the connection.
type remoteParams struct {
	iceUfrag, icePwd string
	// The server is ICE-lite (mediasoup): we are the controlling agent and nominate at once.
	// Otherwise (Janus, full ICE, the offerer) we are controlled and answer its checks too.
	iceLite    bool
	candidates []netip.AddrPort
	// sha-256 of the server's DTLS certificate.
	fingerprint []byte
}

// streamSpec describes one media stream the peer expects. ssrc 0: learnt from the first
// packet with payload type pt (Janus may not announce SSRCs).
type streamSpec struct {
	id        string // consumer id or mid
	kind      string
	ssrc      uint32
	pt        uint8
	rtxSSRC   uint32
	rtxPT     uint8 // 0: no RTX
	clockRate float64
	nack      bool
}

type mediaStream struct {
	spec      streamSpec
	stats     *rtpStats
	countdown int // packets until the next sampled decryption
}

type peerCounters struct {
	// sockDrops: datagrams the kernel dropped at this viewer's full socket (the sink lagged).
	decryptOK, decryptFail, rtx, rtxFail, rtcpIn, rtcpInFail, rtcpOut, unknown, stunIn, checks, sockDrops int64
	nackPackets, twccPackets                                                                              int64
}

// peer is one viewer's media connection: a UDP socket, ICE (STUN checks), the DTLS
// handshake, SRTP keys, and the receive path. The receive path reads the clear RTP header of
// every packet and decrypts only a sample (to prove the keys and the packets are right) and
// retransmissions (whose original sequence number is in the encrypted payload). RTCP goes
// back encrypted: receiver reports, NACKs, transport-wide congestion control feedback.
type peer struct {
	mu       sync.Mutex
	cfg      *peerConfig
	sock     *udpSock
	rp       remoteParams
	remote   netip.AddrPort
	remoteSA syscall.Sockaddr

	localUfrag, localPwd string
	controlling          bool
	tieBreaker           [8]byte
	pending              map[[stun.TransactionIDSize]byte]bool

	startNs, iceNs, dtlsNs      int64
	started, iceOK, dtlsStarted bool
	nextCheck                   int64
	checksSent                  int

	pipe    *dtlsPipe
	dtls    *dtls.Conn
	srtpIn  *srtp.Context
	srtpOut *srtp.Context
	tagLen  int
	profile string
	// Closed once the DTLS handshake has ended, well or not (dtlsErr says which).
	dtlsDone chan struct{}
	dtlsErr  error

	streams           []*mediaStream
	bySSRC, byRtxSSRC map[uint32]*mediaStream
	byPT, byRtxPT     map[uint8]*mediaStream
	twccID            uint8
	twcc              *twcc.Recorder
	twccPending       int
	localSSRC         uint32
	lastSR            map[uint32][2]int64 // media SSRC → {NTP middle 32 bits, arrival ns}
	nextRR, nextTwcc  int64
	nextConsent       int64
	nackDirty         bool
	c                 peerCounters
	decBuf, outBuf    []byte
	nackBuf           []uint16
	hdr               rtpHeader
	closed            bool
	onFail            func(error)
	firstMediaWallMs  float64
}

// peerConfig is shared by every peer of a sink process.
type peerConfig struct {
	poller       *poller
	cert         dtls.Config // Certificates only; cloned per handshake
	localIP      netip.Addr
	decryptEvery int
	twcc         bool
	stamped      bool
	freezeGapMs  float64
	profiles     []dtls.SRTPProtectionProfile
	iceTimeout   time.Duration
	dtlsTimeout  time.Duration
	dropDtls     bool // fault injection (sinkConfig.Faults)
}

const (
	checkIntervalNs   = int64(100e6)
	consentIntervalNs = int64(2500e6)
	rrIntervalNs      = int64(1e9)
	twccIntervalNs    = int64(100e6)
	readBatch         = 16
	udpBufSize        = 1600
)

func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newPeer opens the socket (on the address family of the server's first candidate).
func newPeer(cfg *peerConfig, rp remoteParams, onFail func(error)) (*peer, error) {
	if len(rp.candidates) == 0 {
		return nil, errors.New("the server offered no UDP candidate")
	}
	remote := pickCandidate(rp.candidates)
	localIP := cfg.localIP
	if !localIP.IsValid() || localIP.Is6() != remote.Addr().Is6() {
		var err error
		if localIP, err = sourceFor(remote); err != nil {
			return nil, fmt.Errorf("no route to the server's candidate %s: %w", remote, err)
		}
	}
	sock, err := openUDP(localIP)
	if err != nil {
		return nil, fmt.Errorf("cannot open a UDP socket: %w", err)
	}
	p := &peer{cfg: cfg, sock: sock, rp: rp, remote: remote, remoteSA: sockaddrOf(remote),
		localUfrag: randomString(8), localPwd: randomString(24), controlling: rp.iceLite,
		pending: map[[stun.TransactionIDSize]byte]bool{}, dtlsDone: make(chan struct{}),
		bySSRC: map[uint32]*mediaStream{}, byRtxSSRC: map[uint32]*mediaStream{}, byPT: map[uint8]*mediaStream{}, byRtxPT: map[uint8]*mediaStream{},
		lastSR: map[uint32][2]int64{}, decBuf: make([]byte, 0, udpBufSize), outBuf: make([]byte, 0, udpBufSize), onFail: onFail}
	_, _ = rand.Read(p.tieBreaker[:])
	var ssrc [4]byte
	_, _ = rand.Read(ssrc[:])
	p.localSSRC = binary.BigEndian.Uint32(ssrc[:])
	p.pipe = &dtlsPipe{p: p, in: make(chan []byte, 64), done: make(chan struct{})}
	return p, nil
}

func (p *peer) localAddr() netip.AddrPort { return p.sock.local }

// pickCandidate: the server's first IPv4 candidate (loopback first), else its first one that
// is not link-local. The sink runs next to the servers it loads, so any of them is reachable.
func pickCandidate(cands []netip.AddrPort) netip.AddrPort {
	for _, c := range cands {
		if c.Addr().IsLoopback() {
			return c
		}
	}
	for _, c := range cands {
		if c.Addr().Is4() {
			return c
		}
	}
	for _, c := range cands {
		if !c.Addr().IsLinkLocalUnicast() {
			return c
		}
	}
	return cands[0]
}

var sourceCache sync.Map // netip.Addr → netip.Addr

// sourceFor: the local address the kernel sends from towards `to` (a UDP "connect" sends nothing).
func sourceFor(to netip.AddrPort) (netip.Addr, error) {
	if v, ok := sourceCache.Load(to.Addr()); ok {
		return v.(netip.Addr), nil
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		return netip.Addr{}, err
	}
	defer c.Close()
	ip := c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
	sourceCache.Store(to.Addr(), ip)
	return ip, nil
}

// setRemoteLocked: media and RTCP go to the pair ICE selected.
func (p *peer) setRemoteLocked(ap netip.AddrPort) {
	if ap != p.remote {
		p.remote, p.remoteSA = ap, sockaddrOf(ap)
	}
}

// fingerprint of the shared certificate, "AB:CD:…".
func certFingerprint(c *dtls.Config) (string, error) {
	if len(c.Certificates) == 0 || len(c.Certificates[0].Certificate) == 0 {
		return "", errors.New("no certificate")
	}
	sum := sha256.Sum256(c.Certificates[0].Certificate[0])
	out := make([]byte, 0, len(sum)*3)
	for i, b := range sum {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, fmt.Sprintf("%02X", b)...)
	}
	return string(out), nil
}

// addStream registers a stream (before or after the start). twccID: the negotiated
// transport-wide-cc extension id, 0 if none.
func (p *peer) addStream(spec streamSpec, twccID uint8) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := &mediaStream{spec: spec, stats: newRTPStats(spec.clockRate, p.cfg.freezeGapMs, p.cfg.stamped && spec.kind == "video", spec.kind == "video"),
		countdown: 1 + len(p.streams)}
	p.streams = append(p.streams, m)
	if spec.ssrc != 0 {
		p.bySSRC[spec.ssrc] = m
	} else {
		p.byPT[spec.pt] = m
	}
	if spec.rtxSSRC != 0 {
		p.byRtxSSRC[spec.rtxSSRC] = m
	} else if spec.rtxPT != 0 {
		p.byRtxPT[spec.rtxPT] = m
	}
	if twccID != 0 && p.cfg.twcc && p.twccID == 0 {
		p.twccID = twccID
		p.twcc = twcc.NewRecorder(p.localSSRC)
	}
}

// removeStream forgets a stream whose consumer closed (its packets are then unknown).
func (p *peer) removeStream(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.streams {
		if m.spec.id != id {
			continue
		}
		for k, v := range p.bySSRC {
			if v == m {
				delete(p.bySSRC, k)
			}
		}
		for k, v := range p.byRtxSSRC {
			if v == m {
				delete(p.byRtxSSRC, k)
			}
		}
	}
}

// start begins ICE and hands the socket to the process's poller.
func (p *peer) start() error {
	p.mu.Lock()
	p.startNs = monoNs()
	p.started = true
	p.sendCheckLocked(p.startNs)
	p.mu.Unlock()
	return p.cfg.poller.add(p.sock.fd, p)
}

// onReadable reads what the socket holds (the poller is level-triggered: anything left is
// reported again).
func (p *peer) onReadable(r *batchReader, fd int, nowNs int64, wallMs float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	for {
		if err := r.read(fd); err != nil {
			go p.fail(fmt.Errorf("socket: %w", err))
			return
		}
		for i := 0; i < r.n; i++ {
			at := r.wallMs[i]
			if at == 0 {
				at = wallMs
			}
			if r.drops[i] > p.c.sockDrops {
				p.c.sockDrops = r.drops[i]
			}
			p.handleLocked(r.bufs[i][:r.sizes[i]], r, i, nowNs, at)
		}
		if r.n < len(r.bufs) {
			break
		}
	}
	if p.nackDirty {
		p.nackDirty = false
		p.sendNacksLocked(nowNs)
	}
}

func (p *peer) handleLocked(b []byte, r *batchReader, i int, nowNs int64, wallMs float64) {
	if len(b) == 0 {
		return
	}
	switch c := b[0]; {
	case c < 4:
		p.handleSTUNLocked(b, r.from(i), nowNs)
	case c >= 20 && c <= 63:
		if p.cfg.dropDtls {
			return
		}
		pkt := append([]byte(nil), b...)
		select {
		case p.pipe.in <- pkt:
		default: // the handshake is not reading: DTLS retransmits
		}
	case c >= 128 && c <= 191:
		if isRTCP(b) {
			p.handleRTCPLocked(b, nowNs)
		} else {
			p.handleRTPLocked(b, nowNs, wallMs)
		}
	}
}

func (p *peer) handleRTPLocked(b []byte, nowNs int64, wallMs float64) {
	h := &p.hdr
	if !parseRTP(b, p.twccID, h) || p.srtpIn == nil {
		p.c.unknown++
		return
	}
	if h.hasTwcc && p.twcc != nil {
		p.twcc.Record(h.ssrc, h.twccSeq, int64(wallMs*1000))
		p.twccPending++
	}
	m := p.bySSRC[h.ssrc]
	if m == nil {
		if r := p.byRtxSSRC[h.ssrc]; r != nil {
			p.handleRTXLocked(b, r, nowNs, wallMs)
			return
		}
		if r := p.byRtxPT[h.pt]; r != nil {
			p.handleRTXLocked(b, r, nowNs, wallMs)
			return
		}
		if m = p.byPT[h.pt]; m == nil {
			p.c.unknown++ // probation padding (mediasoup's ssrc 1234), a closed consumer, …
			return
		}
		// A stream announced without SSRC: its first packet names it.
		m.spec.ssrc = h.ssrc
		p.bySSRC[h.ssrc] = m
	}
	if p.firstMediaWallMs == 0 {
		p.firstMediaWallMs = wallMs
	}
	m.countdown--
	if m.countdown <= 0 {
		m.countdown = p.cfg.decryptEvery
		if _, err := p.srtpIn.DecryptRTP(p.decBuf[:0], b, nil); err != nil {
			p.c.decryptFail++
		} else {
			p.c.decryptOK++
		}
	}
	before := len(m.stats.missing)
	m.stats.onPacket(h.ssrc, h.seq, h.ts, h.marker, len(b)-p.tagLen, wallMs, nowNs)
	if m.spec.nack && len(m.stats.missing) > before {
		p.nackDirty = true
	}
}

// A retransmission (RFC 4588): the original sequence number opens the encrypted payload.
func (p *peer) handleRTXLocked(b []byte, m *mediaStream, nowNs int64, wallMs float64) {
	p.c.rtx++
	plain, err := p.srtpIn.DecryptRTP(p.decBuf[:0], b, nil)
	h := &p.hdr
	if err != nil || len(plain) < h.hdrLen+2 {
		p.c.rtxFail++
		return
	}
	if len(plain) == h.hdrLen+2 {
		return // padding-only probe on the RTX stream
	}
	osn := binary.BigEndian.Uint16(plain[h.hdrLen:])
	ssrc := m.spec.ssrc
	if ssrc == 0 {
		return
	}
	m.stats.onPacket(ssrc, osn, h.ts, h.marker, len(plain)-2, wallMs, nowNs)
}

func (p *peer) handleRTCPLocked(b []byte, nowNs int64) {
	if p.srtpIn == nil {
		return
	}
	plain, err := p.srtpIn.DecryptRTCP(p.decBuf[:0], b, nil)
	if err != nil {
		p.c.rtcpInFail++
		return
	}
	p.c.rtcpIn++
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		return
	}
	for _, pk := range pkts {
		if sr, ok := pk.(*rtcp.SenderReport); ok {
			p.lastSR[sr.SSRC] = [2]int64{int64(uint32(sr.NTPTime >> 16)), nowNs}
		}
	}
}

func (p *peer) handleSTUNLocked(b []byte, from netip.AddrPort, nowNs int64) {
	p.c.stunIn++
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return
	}
	switch m.Type {
	case stun.BindingRequest:
		if err := stun.NewShortTermIntegrity(p.localPwd).Check(m); err != nil {
			return
		}
		res, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())},
			stun.NewShortTermIntegrity(p.localPwd), stun.Fingerprint)
		if err == nil {
			_, _ = p.sock.writeTo(res.Raw, sockaddrOf(from))
		}
		// The controlling agent (Janus) nominated this pair: media goes there.
		if !p.controlling && m.Contains(stun.AttrUseCandidate) {
			p.setRemoteLocked(from)
			p.iceConnectedLocked(nowNs)
		}
	case stun.BindingSuccess:
		if !p.pending[m.TransactionID] {
			return
		}
		delete(p.pending, m.TransactionID)
		if err := stun.NewShortTermIntegrity(p.rp.icePwd).Check(m); err != nil {
			return
		}
		if !p.iceOK {
			p.setRemoteLocked(from)
		}
		p.iceConnectedLocked(nowNs)
	}
}

func (p *peer) iceConnectedLocked(nowNs int64) {
	if p.iceOK {
		return
	}
	p.iceOK = true
	p.iceNs = nowNs
	p.nextConsent = nowNs + consentIntervalNs
	for k := range p.pending {
		delete(p.pending, k)
	}
	if !p.dtlsStarted {
		p.dtlsStarted = true
		go p.runDTLS()
	}
}

func (p *peer) sendCheckLocked(nowNs int64) {
	ctrl := stun.AttrICEControlled
	if p.controlling {
		ctrl = stun.AttrICEControlling
	}
	var prio [4]byte
	binary.BigEndian.PutUint32(prio[:], 1853824767) // peer-reflexive, as RFC 8445 7.1.1 asks
	setters := []stun.Setter{stun.BindingRequest, stun.TransactionID,
		stun.NewUsername(p.rp.iceUfrag + ":" + p.localUfrag),
		stun.RawAttribute{Type: stun.AttrPriority, Value: prio[:]},
		stun.RawAttribute{Type: ctrl, Value: p.tieBreaker[:]}}
	if p.controlling {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(p.rp.icePwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		return
	}
	if !p.iceOK {
		p.pending[m.TransactionID] = true
	}
	p.checksSent++
	p.c.checks++
	_, _ = p.sock.writeTo(m.Raw, p.remoteSA)
	p.nextCheck = nowNs + checkIntervalNs
}

func (p *peer) runDTLS() {
	cfg := &dtls.Config{
		Certificates:           p.cfg.cert.Certificates,
		SRTPProtectionProfiles: p.cfg.profiles,
		InsecureSkipVerify:     true,
		ExtendedMasterSecret:   dtls.RequestExtendedMasterSecret,
		FlightInterval:         250 * time.Millisecond,
		MTU:                    1200,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errors.New("no server certificate")
			}
			sum := sha256.Sum256(raw[0])
			if string(sum[:]) != string(p.rp.fingerprint) {
				return errors.New("server certificate does not match the signalled fingerprint")
			}
			return nil
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.dtlsTimeout)
	defer cancel()
	conn, err := dtls.ClientWithContext(ctx, p.pipe, cfg)
	if err == nil {
		err = p.keysFrom(conn)
	}
	p.mu.Lock()
	p.dtlsErr = err
	if err == nil {
		p.dtls = conn
		p.dtlsNs = monoNs()
		p.nextRR = p.dtlsNs + rrIntervalNs
		p.nextTwcc = p.dtlsNs + twccIntervalNs
	}
	closed := p.closed
	p.mu.Unlock()
	close(p.dtlsDone)
	if err != nil {
		if !closed {
			p.fail(&codedError{code: "CASCADE_ERR_LOADTEST_DTLS", msg: "DTLS handshake failed: " + err.Error()})
		}
		return
	}
	if closed {
		conn.Close()
		return
	}
	// Nothing but alerts comes this way once keys are set; a close_notify ends the viewer.
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				p.mu.Lock()
				closed := p.closed
				p.mu.Unlock()
				if !closed {
					p.fail(&codedError{code: "CASCADE_ERR_CLIENT_CONNECTION", msg: "the server closed DTLS"})
				}
				return
			}
		}
	}()
}

func (p *peer) keysFrom(conn *dtls.Conn) error {
	prof, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("no SRTP profile negotiated")
	}
	profile := srtp.ProtectionProfile(prof)
	sc := &srtp.Config{Profile: profile}
	state := conn.ConnectionState()
	if err := sc.ExtractSessionKeysFromDTLS(&state, true); err != nil {
		return err
	}
	in, err := srtp.CreateContext(sc.Keys.RemoteMasterKey, sc.Keys.RemoteMasterSalt, profile)
	if err != nil {
		return err
	}
	out, err := srtp.CreateContext(sc.Keys.LocalMasterKey, sc.Keys.LocalMasterSalt, profile)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srtpIn, p.srtpOut = in, out
	switch profile {
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		p.tagLen, p.profile = 10, "AES_CM_128_HMAC_SHA1_80"
	case srtp.ProtectionProfileAes128CmHmacSha1_32:
		p.tagLen, p.profile = 4, "AES_CM_128_HMAC_SHA1_32"
	case srtp.ProtectionProfileAeadAes128Gcm:
		p.tagLen, p.profile = 16, "AEAD_AES_128_GCM"
	default:
		p.profile = fmt.Sprintf("0x%04x", uint16(profile))
	}
	return nil
}

// waitDTLS blocks until the handshake has ended, or ctx ends.
func (p *peer) waitDTLS(ctx context.Context) error {
	select {
	case <-p.dtlsDone:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.dtlsErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tick runs the timers: ICE checks and consent, NACK retries, TWCC feedback, receiver reports.
func (p *peer) tick(nowNs int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Not started: signalling is still setting the transport up (ICE starts after transport.connect).
	if p.closed || !p.started {
		return
	}
	if !p.iceOK {
		if nowNs >= p.nextCheck {
			if time.Duration(nowNs-p.startNs) > p.cfg.iceTimeout {
				go p.fail(&codedError{code: "CASCADE_ERR_LOADTEST_ICE", msg: fmt.Sprintf("no ICE answer from %s to %s after %d checks (%d STUN messages and %d others received)", p.remote, p.sock.local, p.checksSent, p.c.stunIn, p.c.unknown)})
				p.nextCheck = 1<<62 - 1
				return
			}
			p.sendCheckLocked(nowNs)
		}
		return
	}
	if nowNs >= p.nextConsent {
		p.sendCheckLocked(nowNs)
		p.nextConsent = nowNs + consentIntervalNs
	}
	if p.srtpOut == nil {
		return
	}
	p.sendNacksLocked(nowNs)
	if p.twcc != nil && nowNs >= p.nextTwcc {
		p.nextTwcc += twccIntervalNs
		if p.nextTwcc < nowNs {
			p.nextTwcc = nowNs + twccIntervalNs
		}
		if p.twccPending > 0 {
			p.twccPending = 0
			pkts := p.twcc.BuildFeedbackPacket()
			p.c.twccPackets += int64(len(pkts))
			p.sendRTCPLocked(pkts)
		}
	}
	if nowNs >= p.nextRR {
		p.nextRR += rrIntervalNs
		if p.nextRR < nowNs {
			p.nextRR = nowNs + rrIntervalNs
		}
		p.sendReportLocked(nowNs)
	}
}

func (p *peer) sendNacksLocked(nowNs int64) {
	for _, m := range p.streams {
		if !m.spec.nack || len(m.stats.missing) == 0 || m.spec.ssrc == 0 {
			continue
		}
		p.nackBuf = m.stats.dueNacks(nowNs, p.nackBuf[:0])
		if len(p.nackBuf) == 0 {
			continue
		}
		p.c.nackPackets++
		p.sendRTCPLocked([]rtcp.Packet{&rtcp.TransportLayerNack{SenderSSRC: p.localSSRC, MediaSSRC: m.spec.ssrc,
			Nacks: rtcp.NackPairsFromSequenceNumbers(p.nackBuf)}})
	}
}

func (p *peer) sendReportLocked(nowNs int64) {
	rr := &rtcp.ReceiverReport{SSRC: p.localSSRC}
	for _, m := range p.streams {
		if m.spec.ssrc == 0 {
			continue
		}
		r := m.stats.takeReceptionReport()
		if !r.hasData {
			continue
		}
		block := rtcp.ReceptionReport{SSRC: m.spec.ssrc, FractionLost: r.fractionLost, TotalLost: r.totalLost,
			LastSequenceNumber: r.extHighestSeq, Jitter: r.jitter}
		if sr, ok := p.lastSR[m.spec.ssrc]; ok {
			block.LastSenderReport = uint32(sr[0])
			block.Delay = uint32((nowNs - sr[1]) * 65536 / 1e9) // units of 1/65536 s
		}
		rr.Reports = append(rr.Reports, block)
	}
	if len(rr.Reports) > 0 {
		p.sendRTCPLocked([]rtcp.Packet{rr})
	}
}

func (p *peer) sendRTCPLocked(pkts []rtcp.Packet) {
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	enc, err := p.srtpOut.EncryptRTCP(p.outBuf[:0], raw, nil)
	if err != nil {
		return
	}
	p.c.rtcpOut++
	_, _ = p.sock.writeTo(enc, p.remoteSA)
}

func (p *peer) fail(err error) {
	if p.onFail != nil {
		p.onFail(err)
	}
}

// close is idempotent: a DTLS close_notify (so the server frees the transport at once),
// then the socket.
func (p *peer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conn := p.dtls
	p.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	p.pipe.Close()
	p.cfg.poller.remove(p.sock.fd)
	p.sock.close()
}

// mediaSummary gives each stream's accounting, for results and ticks. Caller holds no lock.
func (p *peer) withStreams(f func(streams []*mediaStream, c *peerCounters)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.streams, &p.c)
}

// dtlsPipe is the net.Conn the DTLS handshake runs over: the read loop feeds it the DTLS
// records it demultiplexes from the ICE socket, writes go straight to the selected pair.
// Read deadlines work: pion/dtls ends a handshake whose context expired by setting one in the
// past, and waits for the read to return.
type dtlsPipe struct {
	p        *peer
	in       chan []byte
	done     chan struct{}
	doneOnce sync.Once

	dlMu    sync.Mutex
	dlCh    chan struct{} // closed once the read deadline has passed
	dlTimer *time.Timer
}

func (d *dtlsPipe) deadline() chan struct{} {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	if d.dlCh == nil {
		d.dlCh = make(chan struct{})
	}
	return d.dlCh
}

func (d *dtlsPipe) Read(b []byte) (int, error) {
	dl := d.deadline()
	select {
	case pkt := <-d.in:
		return copy(b, pkt), nil
	case <-d.done:
		return 0, net.ErrClosed
	case <-dl:
		return 0, os.ErrDeadlineExceeded
	}
}

func (d *dtlsPipe) Write(b []byte) (int, error) {
	d.p.mu.Lock()
	sa := d.p.remoteSA
	d.p.mu.Unlock()
	return d.p.sock.writeTo(b, sa)
}

func (d *dtlsPipe) Close() error {
	d.doneOnce.Do(func() { close(d.done) })
	return nil
}
func (d *dtlsPipe) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(d.p.sock.local) }
func (d *dtlsPipe) RemoteAddr() net.Addr {
	d.p.mu.Lock()
	defer d.p.mu.Unlock()
	return net.UDPAddrFromAddrPort(d.p.remote)
}
func (d *dtlsPipe) SetDeadline(t time.Time) error { return d.SetReadDeadline(t) }

func (d *dtlsPipe) SetReadDeadline(t time.Time) error {
	d.dlMu.Lock()
	defer d.dlMu.Unlock()
	if d.dlTimer != nil {
		d.dlTimer.Stop()
		d.dlTimer = nil
	}
	if d.dlCh == nil {
		d.dlCh = make(chan struct{})
	}
	select {
	case <-d.dlCh: // expired earlier: a new deadline starts afresh
		d.dlCh = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return nil
	}
	ch := d.dlCh
	expire := func() {
		select {
		case <-ch:
		default:
			close(ch)
		}
	}
	if wait := time.Until(t); wait <= 0 {
		expire()
	} else {
		d.dlTimer = time.AfterFunc(wait, func() {
			d.dlMu.Lock()
			defer d.dlMu.Unlock()
			expire()
		})
	}
	return nil
}

func (d *dtlsPipe) SetWriteDeadline(time.Time) error { return nil }
