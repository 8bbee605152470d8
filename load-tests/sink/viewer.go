package main

import (
	"context"
	"math"
	"sync"
	"time"
)

// Viewer states, as WeriftViewer's: `lost` means joined, then dropped (the server closed
// signalling or DTLS, the stream ended).
const (
	stateIdle      = "idle"
	stateJoining   = "joining"
	stateConnected = "connected"
	stateFailed    = "failed"
	stateLost      = "lost"
	stateStopped   = "stopped"
)

// signaller is the server-specific half of a viewer (Cascade's protocol, or Janus's API).
type signaller interface {
	// join sets up the session and the peer (viewer.setPeer), and starts ICE.
	join(ctx context.Context) error
	tick(nowNs int64)
	close()
	missedPings() int64
}

type viewer struct {
	index int
	s     *sink

	mu          sync.Mutex
	state       string
	startedAtMs float64
	startNs     int64
	joinMs      float64 // NaN until joined
	iceMs       float64
	dtlsMs      float64
	nodeID      string
	redirects   int
	drains      int
	err         *wireError
	peer        *peer
	sig         signaller
	cancelJoin  context.CancelFunc
	tornDown    bool
}

func newViewer(s *sink, index int) *viewer {
	v := &viewer{index: index, s: s, state: stateIdle, joinMs: math.NaN(), iceMs: math.NaN(), dtlsMs: math.NaN()}
	if s.cfg.Server == "janus" {
		v.sig = newJanusSignal(v)
	} else {
		v.sig = newCascadeSignal(v)
	}
	return v
}

func (v *viewer) currentPeer() *peer {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.peer
}

// setPeer adopts the media connection; false if the viewer was stopped meanwhile.
func (v *viewer) setPeer(p *peer) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state != stateJoining {
		return false
	}
	v.peer = p
	return true
}

func (v *viewer) setNode(id string) {
	v.mu.Lock()
	v.nodeID = id
	v.mu.Unlock()
}

func (v *viewer) noteRedirect() {
	v.mu.Lock()
	v.redirects++
	v.mu.Unlock()
}

func (v *viewer) noteDraining() {
	v.mu.Lock()
	v.drains++
	v.mu.Unlock()
}

// join never fails loudly: a failure is recorded and shows in the result.
func (v *viewer) join() {
	v.mu.Lock()
	if v.state != stateIdle {
		v.mu.Unlock()
		return
	}
	v.state = stateJoining
	v.startedAtMs = wallMs()
	v.startNs = monoNs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(v.s.cfg.JoinTimeoutMs)*time.Millisecond)
	v.cancelJoin = cancel
	v.mu.Unlock()
	defer cancel()

	err := v.sig.join(ctx)
	if err == nil {
		err = v.currentPeer().waitDTLS(ctx)
	}
	v.mu.Lock()
	if v.state != stateJoining {
		// Stopped, or failed by the peer, meanwhile.
		v.mu.Unlock()
		return
	}
	if err != nil {
		if v.err == nil {
			v.err = asWire(err)
		}
		v.state = stateFailed
		v.mu.Unlock()
		v.teardown()
		return
	}
	now := monoNs()
	v.joinMs = float64(now-v.startNs) / 1e6
	if p := v.peer; p != nil {
		p.mu.Lock()
		v.iceMs = float64(p.iceNs-v.startNs) / 1e6
		v.dtlsMs = float64(p.dtlsNs-p.iceNs) / 1e6
		p.mu.Unlock()
	}
	v.state = stateConnected
	v.mu.Unlock()
}

// onPeerFail: ICE or DTLS failed, or the server closed DTLS.
func (v *viewer) onPeerFail(err error) {
	v.mu.Lock()
	if v.state == stateJoining {
		if v.err == nil {
			v.err = asWire(err)
		}
		v.state = stateFailed
		cancel := v.cancelJoin
		v.mu.Unlock()
		if cancel != nil {
			cancel()
		}
		v.teardown()
		return
	}
	v.mu.Unlock()
	v.lose(err)
}

// lose: a connected viewer was dropped by the server.
func (v *viewer) lose(err error) {
	v.mu.Lock()
	if v.state != stateConnected && v.state != stateJoining {
		v.mu.Unlock()
		return
	}
	if v.err == nil {
		v.err = asWire(err)
	}
	if v.state == stateJoining {
		v.state = stateFailed
	} else {
		v.state = stateLost
	}
	cancel := v.cancelJoin
	v.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	v.teardown()
}

// stop leaves; idempotent.
func (v *viewer) stop() {
	v.mu.Lock()
	if v.state == stateStopped {
		v.mu.Unlock()
		return
	}
	wasIdle := v.state == stateIdle
	if v.state == stateJoining || v.state == stateConnected {
		v.state = stateStopped
	} else if wasIdle {
		v.state = stateStopped
	}
	cancel := v.cancelJoin
	v.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if !wasIdle {
		v.teardown()
	}
}

func (v *viewer) teardown() {
	v.mu.Lock()
	done := v.tornDown
	v.tornDown = true
	v.mu.Unlock()
	if done {
		return
	}
	v.sig.close()
	if p := v.currentPeer(); p != nil {
		p.close()
		p.withStreams(func(streams []*mediaStream, _ *peerCounters) {
			now := wallMs()
			for _, m := range streams {
				m.stats.finish(now)
			}
		})
	}
}

func (v *viewer) tick(nowNs int64) {
	v.mu.Lock()
	st, p := v.state, v.peer
	v.mu.Unlock()
	if st != stateJoining && st != stateConnected {
		return
	}
	if p != nil {
		p.tick(nowNs)
	}
	v.sig.tick(nowNs)
}

// audioSummary is the little the results keep of audio.
type audioSummary struct {
	Packets  int64   `json:"packets"`
	Expected int64   `json:"expected"`
	Lost     int64   `json:"lost"`
	JitterMs float64 `json:"jitterMs"`
}

// sinkDetail is what a sink viewer adds to ViewerResult (field `sink`).
type sinkDetail struct {
	State        string        `json:"state"`
	IceMs        *float64      `json:"iceMs"`
	DtlsMs       *float64      `json:"dtlsMs"`
	SrtpProfile  string        `json:"srtpProfile"`
	Redirects    int           `json:"redirects"`
	Audio        *audioSummary `json:"audio"`
	DecryptOK    int64         `json:"decryptOk"`
	DecryptFail  int64         `json:"decryptFail"`
	Rtx          int64         `json:"rtx"`
	Nacked       int64         `json:"nacked"`
	Repaired     int64         `json:"repaired"`
	NackPackets  int64         `json:"nackPackets"`
	TwccPackets  int64         `json:"twccPackets"`
	RtcpIn       int64         `json:"rtcpIn"`
	RtcpOut      int64         `json:"rtcpOut"`
	Unknown      int64         `json:"unknownPackets"`
	SocketDrops  int64         `json:"socketDrops"`
	MissedPings  int64         `json:"missedPings"`
	DrainNotices int           `json:"drainNotices"`
}

// viewerResult is ViewerResult (LoadTestTypes.ts) plus `sink`.
type viewerResult struct {
	Index         int         `json:"index"`
	Process       int         `json:"process"`
	NodeID        *string     `json:"nodeId"`
	OK            bool        `json:"ok"`
	Error         *wireError  `json:"error,omitempty"`
	StartedAt     float64     `json:"startedAt"`
	JoinMs        *float64    `json:"joinMs"`
	FirstPacketMs *float64    `json:"firstPacketMs"`
	FirstFrameMs  *float64    `json:"firstFrameMs"`
	Reconnects    int         `json:"reconnects"`
	NodeChanges   int         `json:"nodeChanges"`
	Rtp           *rtpSummary `json:"rtp"`
	Sink          sinkDetail  `json:"sink"`
}

func (v *viewer) result(process int) viewerResult {
	v.mu.Lock()
	defer v.mu.Unlock()
	r := viewerResult{Index: v.index, Process: process, StartedAt: v.startedAtMs, JoinMs: nullable(v.joinMs)}
	r.Sink = sinkDetail{State: v.state, IceMs: nullable(v.iceMs), DtlsMs: nullable(v.dtlsMs), Redirects: v.redirects,
		DrainNotices: v.drains, MissedPings: v.sig.missedPings()}
	if v.nodeID != "" {
		id := v.nodeID
		r.NodeID = &id
	}
	r.Error = v.err
	if v.startedAtMs == 0 && r.Error == nil {
		r.Error = &wireError{Code: "CASCADE_ERR_LOADTEST_NOT_STARTED", Message: "the test ended before this viewer was due"}
	}
	r.OK = !math.IsNaN(v.joinMs) && r.Error == nil
	since := func(t *float64) *float64 {
		if t == nil || v.startedAtMs == 0 {
			return nil
		}
		d := *t - v.startedAtMs
		return &d
	}
	if p := v.peer; p != nil {
		p.withStreams(func(streams []*mediaStream, c *peerCounters) {
			r.Sink.SrtpProfile = p.profile
			r.Sink.DecryptOK, r.Sink.DecryptFail, r.Sink.Rtx = c.decryptOK, c.decryptFail, c.rtx
			r.Sink.NackPackets, r.Sink.TwccPackets, r.Sink.RtcpIn, r.Sink.RtcpOut, r.Sink.Unknown = c.nackPackets, c.twccPackets, c.rtcpIn, c.rtcpOut, c.unknown
			r.Sink.SocketDrops = c.sockDrops
			for _, m := range streams {
				r.Sink.Nacked += m.stats.nacked
				r.Sink.Repaired += m.stats.repaired
				// A consumer replaced (the relay changed parent, the viewer moved) leaves its stream
				// here: the viewer's reception is the sum over the streams of each kind.
				if m.spec.kind == "video" {
					sum := m.stats.summary()
					if r.Rtp != nil {
						sum = mergeSummaries(*r.Rtp, sum)
					}
					r.Rtp = &sum
					r.FirstPacketMs = since(sum.FirstPacketAt)
					r.FirstFrameMs = since(sum.FirstFrameAt)
				} else if m.spec.kind == "audio" {
					a := audioSummary{Packets: m.stats.packets, Expected: m.stats.totalExpected(), Lost: m.stats.lost(), JitterMs: m.stats.toMs(m.stats.jitter)}
					if r.Sink.Audio != nil {
						if r.Sink.Audio.Packets > a.Packets {
							a.JitterMs = r.Sink.Audio.JitterMs
						}
						a.Packets, a.Expected, a.Lost = a.Packets+r.Sink.Audio.Packets, a.Expected+r.Sink.Audio.Expected, a.Lost+r.Sink.Audio.Lost
					}
					r.Sink.Audio = &a
				}
			}
		})
	}
	return r
}
