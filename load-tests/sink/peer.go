package main

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/interceptor/pkg/twcc"
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
