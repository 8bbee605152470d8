package main

import (
	"math"
)

// rtpStats accounts one received RTP stream from its clear header only, as
// load-tests/src/RtpReceiveStats.ts does for a werift viewer (same definitions, same report
// shape): loss from sequence gaps (RFC 3550 A.1/A.3, duplicates and reordering handled),
// interarrival jitter (A.8), frames by marker bit, freezes, delay from stamped timestamps.
// It also keeps the list of missing packets that NACKs ask for again.
//
// Not safe for concurrent use: the peer's mutex guards it.
type rtpStats struct {
	clockRate   float64
	freezeGapMs float64
	stamped     bool
	// Video counts frames (marker bit) and freezes; audio does not (its marker starts a talkspurt).
	countFrames bool

	// current source
	ssrc         uint32
	hasSSRC      bool
	baseExt      int64
	maxExt       int64
	received     int64
	seen         [dupWindow]int64
	lastTransit  uint32
	hasTransit   bool
	lastJitterTs uint32
	hasJitterTs  bool

	// sources that ended
	closedExpected int64
	closedReceived int64

	// totals
	packets, bytes, duplicates, frames int64
	firstPacketAt, firstFrameAt        float64 // wall-clock ms, NaN while none
	lastPacketAt, lastFrameAt          float64
	jitter, jitterMax                  float64
	freezes                            int64
	freezeTotalMs, longestFreezeMs     float64
	implausible                        int64
	delay, ivDelay                     *logHist

	iv struct{ packets, bytes, frames, expectedPrior, receivedPrior int64 }
	// The previous receiver report's figures (RFC 3550 A.3 fraction lost).
	rr struct{ expectedPrior, receivedPrior int64 }

	// Missing packets (extended sequence number → NACK state), bounded by maxMissing.
	missing map[int64]*nackEntry
	// Packets given up on: NACKed maxNackTries times, or a gap too long to ask for.
	nackGaveUp int64
	nacked     int64 // sequence numbers asked for, retries included
	repaired   int64 // holes filled after they were counted missing (late or retransmitted)
}

type nackEntry struct {
	tries    int
	lastSent int64 // ns, 0 = never
	since    int64 // ns
}

const (
	dupWindow = 1024
	// A stamp further than this from now is not ours (the stream is not stamped), ms.
	plausibleDelayMs = 60_000
	// Holes tracked for NACK at most; a longer gap is an outage, not a loss to repair.
	maxMissing = 512
	// NACK attempts per packet, the spacing between them, and how long a hole is kept.
	maxNackTries = 3
	nackRetryNs  = int64(60e6)
	nackKeepNs   = int64(1e9)
)

func newRTPStats(clockRate, freezeGapMs float64, stamped, countFrames bool) *rtpStats {
	s := &rtpStats{clockRate: clockRate, freezeGapMs: freezeGapMs, stamped: stamped, countFrames: countFrames,
		firstPacketAt: math.NaN(), firstFrameAt: math.NaN(), lastPacketAt: math.NaN(), lastFrameAt: math.NaN(),
		delay: newLogHist(), ivDelay: newLogHist(), missing: map[int64]*nackEntry{}}
	s.resetSource(0)
	s.hasSSRC = false
	return s
}

func (s *rtpStats) resetSource(ssrc uint32) {
	s.ssrc, s.hasSSRC = ssrc, true
	s.baseExt, s.maxExt, s.received = 0, -1, 0
	for i := range s.seen {
		s.seen[i] = -1
	}
	s.hasTransit, s.hasJitterTs = false, false
	for k := range s.missing {
		delete(s.missing, k)
	}
}

func (s *rtpStats) totalExpected() int64 {
	e := s.closedExpected
	if s.maxExt >= 0 {
		e += s.maxExt - s.baseExt + 1
	}
	return e
}

// extend places a 16-bit sequence number in the cycle closest to the highest seen. The first
// packet starts in cycle 1 so that packets reordered before it stay non-negative.
func (s *rtpStats) extend(seq uint16) int64 {
	if s.maxExt < 0 {
		return 65536 + int64(seq)
	}
	diff := int64(seq) - (s.maxExt & 0xffff)
	if diff > 32768 {
		diff -= 65536
	} else if diff < -32768 {
		diff += 65536
	}
	if e := s.maxExt + diff; e > 0 {
		return e
	}
	return 0
}

// onPacket accounts one packet that arrived at wall-clock arrivalMs (monotonic nowNs for
// NACK timing). bytes: size on the wire without SRTP overhead. Returns false for a duplicate.
func (s *rtpStats) onPacket(ssrc uint32, seq uint16, ts uint32, marker bool, bytes int, arrivalMs float64, nowNs int64) bool {
	if !s.hasSSRC || ssrc != s.ssrc {
		s.closedExpected = s.totalExpected()
		s.closedReceived += s.received
		s.resetSource(ssrc)
	}
	ext := s.extend(seq)
	slot := ext % dupWindow
	if s.seen[slot] == ext {
		s.duplicates++
		return false
	}
	s.seen[slot] = ext
	inOrder := ext > s.maxExt
	if s.maxExt < 0 {
		s.baseExt = ext
	} else if ext < s.baseExt {
		s.baseExt = ext
	}
	if inOrder {
		if s.maxExt >= 0 && ext > s.maxExt+1 {
			s.noteGap(s.maxExt+1, ext, nowNs)
		}
		s.maxExt = ext
	} else if _, ok := s.missing[ext]; ok {
		delete(s.missing, ext)
		s.repaired++
	}
	s.received++

	s.packets++
	s.bytes += int64(bytes)
	s.iv.packets++
	s.iv.bytes += int64(bytes)
	if math.IsNaN(s.firstPacketAt) {
		s.firstPacketAt = arrivalMs
	}
	s.lastPacketAt = arrivalMs

	// libwebrtc skips packets that share the previous timestamp: a frame's packets leave in
	// one burst, and their spread is pacing, not network jitter.
	if inOrder && (!s.hasJitterTs || ts != s.lastJitterTs) {
		s.updateJitter(ts, arrivalMs)
	}
	if marker && s.countFrames {
		s.onFrame(ts, arrivalMs)
	}
	return true
}

// noteGap records the holes [from, to) for NACK, unless the gap is an outage.
func (s *rtpStats) noteGap(from, to, nowNs int64) {
	if to-from > maxMissing/2 {
		s.nackGaveUp += to - from
		return
	}
	for e := from; e < to; e++ {
		if len(s.missing) >= maxMissing {
			s.nackGaveUp += to - e
			return
		}
		s.missing[e] = &nackEntry{since: nowNs}
	}
}

// dueNacks returns the sequence numbers to NACK now (new holes, and retries), and forgets
// holes that were asked for often enough or are too old to matter.
func (s *rtpStats) dueNacks(nowNs int64, out []uint16) []uint16 {
	for ext, n := range s.missing {
		if nowNs-n.since > nackKeepNs || (n.tries >= maxNackTries && nowNs-n.lastSent > nackRetryNs) {
			delete(s.missing, ext)
			s.nackGaveUp++
			continue
		}
		if n.tries < maxNackTries && (n.lastSent == 0 || nowNs-n.lastSent >= nackRetryNs) {
			n.tries++
			n.lastSent = nowNs
			s.nacked++
			out = append(out, uint16(ext&0xffff))
		}
	}
	return out
}

func (s *rtpStats) updateJitter(ts uint32, arrivalMs float64) {
	arrival := uint32(int64(math.Round(arrivalMs * s.clockRate / 1000)))
	transit := arrival - ts
	if s.hasTransit {
		d := math.Abs(float64(int32(transit - s.lastTransit)))
		s.jitter += (d - s.jitter) / 16
		if s.jitter > s.jitterMax {
			s.jitterMax = s.jitter
		}
	}
	s.lastTransit, s.hasTransit = transit, true
	s.lastJitterTs, s.hasJitterTs = ts, true
}

func (s *rtpStats) onFrame(ts uint32, arrivalMs float64) {
	s.frames++
	s.iv.frames++
	if math.IsNaN(s.firstFrameAt) {
		s.firstFrameAt = arrivalMs
	}
	if !math.IsNaN(s.lastFrameAt) {
		s.checkGap(arrivalMs - s.lastFrameAt)
	}
	s.lastFrameAt = arrivalMs
	if !s.stamped {
		return
	}
	now := uint32(int64(math.Round(arrivalMs * s.clockRate / 1000)))
	delayMs := s.toMs(float64(int32(now - ts)))
	if math.Abs(delayMs) > plausibleDelayMs {
		s.implausible++
		return
	}
	// Stamp and arrival share one clock, so a negative value is rounding: count it as 0.
	d := math.Max(0, delayMs)
	s.delay.add(d)
	s.ivDelay.add(d)
}

func (s *rtpStats) checkGap(gapMs float64) {
	if gapMs <= s.freezeGapMs {
		return
	}
	s.freezes++
	s.freezeTotalMs += gapMs
	if gapMs > s.longestFreezeMs {
		s.longestFreezeMs = gapMs
	}
}

func (s *rtpStats) toMs(units float64) float64 { return units * 1000 / s.clockRate }

// finish closes the books at nowMs: a stream that stopped delivering frames ends in a freeze.
func (s *rtpStats) finish(nowMs float64) {
	if !s.countFrames {
		return
	}
	if !math.IsNaN(s.lastFrameAt) {
		s.checkGap(nowMs - s.lastFrameAt)
	}
	s.lastFrameAt = nowMs
}

// rtpInterval is RtpInterval: counters since the previous takeInterval.
type rtpInterval struct {
	packets, bytes, expected, lost, frames int64
}

func (s *rtpStats) takeInterval(delaySink *logHist) rtpInterval {
	expected := s.totalExpected()
	received := s.closedReceived + s.received
	out := rtpInterval{packets: s.iv.packets, bytes: s.iv.bytes, frames: s.iv.frames,
		expected: expected - s.iv.expectedPrior,
		lost:     expected - s.iv.expectedPrior - (received - s.iv.receivedPrior)}
	if delaySink != nil {
		delaySink.merge(s.ivDelay)
	}
	s.ivDelay.reset()
	s.iv.packets, s.iv.bytes, s.iv.frames = 0, 0, 0
	s.iv.expectedPrior, s.iv.receivedPrior = expected, received
	return out
}

// rtpSummary is RtpReceiveSummary (nullable times as pointers).
type rtpSummary struct {
	Packets           int64    `json:"packets"`
	Bytes             int64    `json:"bytes"`
	Duplicates        int64    `json:"duplicates"`
	Expected          int64    `json:"expected"`
	Lost              int64    `json:"lost"`
	LossFraction      float64  `json:"lossFraction"`
	FirstPacketAt     *float64 `json:"firstPacketAt"`
	FirstFrameAt      *float64 `json:"firstFrameAt"`
	LastPacketAt      *float64 `json:"lastPacketAt"`
	Frames            int64    `json:"frames"`
	BitrateKbps       float64  `json:"bitrateKbps"`
	JitterMs          float64  `json:"jitterMs"`
	JitterMaxMs       float64  `json:"jitterMaxMs"`
	Freezes           int64    `json:"freezes"`
	FreezeTotalMs     float64  `json:"freezeTotalMs"`
	LongestFreezeMs   float64  `json:"longestFreezeMs"`
	Delay             *summary `json:"delay"`
	ImplausibleDelays int64    `json:"implausibleDelays"`
}

func nullable(v float64) *float64 {
	if math.IsNaN(v) {
		return nil
	}
	return &v
}

func (s *rtpStats) lost() int64 {
	l := s.totalExpected() - s.closedReceived - s.received
	if l < 0 {
		return 0
	}
	return l
}

func (s *rtpStats) summary() rtpSummary {
	expected := s.totalExpected()
	lost := s.lost()
	out := rtpSummary{Packets: s.packets, Bytes: s.bytes, Duplicates: s.duplicates, Expected: expected, Lost: lost,
		FirstPacketAt: nullable(s.firstPacketAt), FirstFrameAt: nullable(s.firstFrameAt), LastPacketAt: nullable(s.lastPacketAt),
		Frames: s.frames, JitterMs: s.toMs(s.jitter), JitterMaxMs: s.toMs(s.jitterMax), Freezes: s.freezes,
		FreezeTotalMs: s.freezeTotalMs, LongestFreezeMs: s.longestFreezeMs, ImplausibleDelays: s.implausible}
	if expected > 0 {
		out.LossFraction = float64(lost) / float64(expected)
	}
	if span := s.lastPacketAt - s.firstPacketAt; span > 0 {
		out.BitrateKbps = float64(s.bytes) * 8 / span
	}
	if s.stamped {
		out.Delay = s.delay.summary()
	}
	return out
}

// receptionReport holds what an RTCP receiver report block says of this stream (RFC 3550 6.4.1).
type receptionReport struct {
	fractionLost  uint8
	totalLost     uint32 // 24 bits
	extHighestSeq uint32
	jitter        uint32
	hasData       bool
}

func (s *rtpStats) takeReceptionReport() receptionReport {
	if s.maxExt < 0 {
		return receptionReport{}
	}
	expected := s.maxExt - s.baseExt + 1
	received := s.received
	expIv := expected - s.rr.expectedPrior
	lostIv := expIv - (received - s.rr.receivedPrior)
	s.rr.expectedPrior, s.rr.receivedPrior = expected, received
	var fraction uint8
	if expIv > 0 && lostIv > 0 {
		fraction = uint8((lostIv << 8) / expIv)
	}
	total := expected - received
	if total < 0 {
		total = 0
	} else if total > 0x7fffff {
		total = 0x7fffff
	}
	// maxExt started in cycle 1 (see extend): the wire value counts cycles from 0.
	return receptionReport{fractionLost: fraction, totalLost: uint32(total), extHighestSeq: uint32(s.maxExt - 65536),
		jitter: uint32(s.jitter), hasData: true}
}

// mergeSummaries is one viewer's reception over several consecutive streams of one kind (its
// consumer replaced: a relay that changed parent, a move): counts add up, first times are the
// earliest, last the latest; jitter and delay are those of the stream that carried most.
func mergeSummaries(a, b rtpSummary) rtpSummary {
	major := a
	if b.Packets > a.Packets {
		major = b
	}
	minPtr := func(x, y *float64) *float64 {
		if x == nil || (y != nil && *y < *x) {
			return y
		}
		return x
	}
	maxPtr := func(x, y *float64) *float64 {
		if x == nil || (y != nil && *y > *x) {
			return y
		}
		return x
	}
	out := major
	out.Packets, out.Bytes, out.Duplicates = a.Packets+b.Packets, a.Bytes+b.Bytes, a.Duplicates+b.Duplicates
	out.Expected, out.Lost, out.Frames = a.Expected+b.Expected, a.Lost+b.Lost, a.Frames+b.Frames
	out.Freezes, out.FreezeTotalMs = a.Freezes+b.Freezes, a.FreezeTotalMs+b.FreezeTotalMs
	out.LongestFreezeMs = math.Max(a.LongestFreezeMs, b.LongestFreezeMs)
	out.JitterMaxMs = math.Max(a.JitterMaxMs, b.JitterMaxMs)
	out.ImplausibleDelays = a.ImplausibleDelays + b.ImplausibleDelays
	out.FirstPacketAt, out.FirstFrameAt = minPtr(a.FirstPacketAt, b.FirstPacketAt), minPtr(a.FirstFrameAt, b.FirstFrameAt)
	out.LastPacketAt = maxPtr(a.LastPacketAt, b.LastPacketAt)
	out.LossFraction, out.BitrateKbps = 0, 0
	if out.Expected > 0 {
		out.LossFraction = float64(out.Lost) / float64(out.Expected)
	}
	if out.FirstPacketAt != nil && out.LastPacketAt != nil && *out.LastPacketAt > *out.FirstPacketAt {
		out.BitrateKbps = float64(out.Bytes) * 8 / (*out.LastPacketAt - *out.FirstPacketAt)
	}
	return out
}
