package main

import (
	"encoding/binary"
	"math"
	"sort"
	"syscall"
	"testing"
	"unsafe"
)

const ms = int64(1e6)

func feed(s *rtpStats, seqs []uint16, t0 float64) {
	for i, q := range seqs {
		s.onPacket(42, q, uint32(q)*3000, true, 1000, t0+float64(i)*33, int64(i)*33*ms)
	}
}

func TestInOrderStreamHasNoLoss(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{10, 11, 12, 13, 14}, 1000)
	sum := s.summary()
	if sum.Packets != 5 || sum.Expected != 5 || sum.Lost != 0 || sum.Frames != 5 || sum.Duplicates != 0 {
		t.Fatalf("unexpected summary %+v", sum)
	}
	if *sum.FirstPacketAt != 1000 || *sum.LastPacketAt != 1000+4*33 {
		t.Fatalf("first/last packet %v %v", *sum.FirstPacketAt, *sum.LastPacketAt)
	}
}

func TestGapsCountAsLossAndAreNacked(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{1, 2, 5, 6}, 0)
	if got := s.summary(); got.Expected != 6 || got.Lost != 2 {
		t.Fatalf("expected 6 / lost 2, got %d / %d", got.Expected, got.Lost)
	}
	nacks := s.dueNacks(10*ms, nil)
	sort.Slice(nacks, func(i, j int) bool { return nacks[i] < nacks[j] })
	if len(nacks) != 2 || nacks[0] != 3 || nacks[1] != 4 {
		t.Fatalf("want NACK 3,4, got %v", nacks)
	}
	// Not again before the retry spacing; again after it.
	if again := s.dueNacks(10*ms+nackRetryNs/2, nil); len(again) != 0 {
		t.Fatalf("retried too early: %v", again)
	}
	if again := s.dueNacks(10*ms+nackRetryNs, nil); len(again) != 2 {
		t.Fatalf("want a retry of both, got %v", again)
	}
	// The retransmission of 3 repairs it; 4 stays lost.
	s.onPacket(42, 3, 9000, false, 1000, 500, 200*ms)
	if got := s.summary(); got.Lost != 1 || s.repaired != 1 {
		t.Fatalf("after repair lost=%d repaired=%d", got.Lost, s.repaired)
	}
	if _, ok := s.missing[65536+3]; ok {
		t.Fatal("repaired packet still in the NACK list")
	}
}

func TestNackGivesUpAfterMaxTries(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{1, 3}, 0)
	now := int64(0)
	total := 0
	for i := 0; i < 10; i++ {
		total += len(s.dueNacks(now, nil))
		now += nackRetryNs
	}
	if total != maxNackTries {
		t.Fatalf("want %d NACKs for one hole, got %d", maxNackTries, total)
	}
	if len(s.missing) != 0 || s.nackGaveUp != 1 {
		t.Fatalf("missing=%d gaveUp=%d", len(s.missing), s.nackGaveUp)
	}
}

func TestOutageIsNotNacked(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{1, 2, 2 + maxMissing}, 0)
	if len(s.missing) != 0 {
		t.Fatalf("a gap of %d should not be NACKed", maxMissing)
	}
	if got := s.summary(); got.Lost != maxMissing-1 {
		t.Fatalf("lost %d", got.Lost)
	}
}

func TestDuplicatesAndReorderingAreHandled(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{1, 3, 2, 3, 4}, 0)
	sum := s.summary()
	if sum.Duplicates != 1 || sum.Lost != 0 || sum.Expected != 4 || sum.Packets != 4 {
		t.Fatalf("%+v", sum)
	}
}

func TestSequenceWrapsAround(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{65533, 65534, 65535, 0, 1, 3}, 0)
	sum := s.summary()
	if sum.Expected != 7 || sum.Lost != 1 {
		t.Fatalf("expected 7 lost 1, got %d %d", sum.Expected, sum.Lost)
	}
	rr := s.takeReceptionReport()
	if rr.extHighestSeq != 1<<16|3 || rr.totalLost != 1 {
		t.Fatalf("report %+v", rr)
	}
	// Fraction lost is per interval: nothing new lost since the last report.
	s.onPacket(42, 4, 0, false, 100, 1000, 0)
	if rr := s.takeReceptionReport(); rr.fractionLost != 0 {
		t.Fatalf("fraction %d", rr.fractionLost)
	}
}

func TestNewSSRCStartsANewSequenceSpace(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{100, 101, 102}, 0)
	s.onPacket(43, 5000, 0, false, 100, 200, 0)
	s.onPacket(43, 5001, 0, false, 100, 233, 0)
	if sum := s.summary(); sum.Expected != 5 || sum.Lost != 0 {
		t.Fatalf("%+v", sum)
	}
}

func TestIntervalsAddUpToTheTotal(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{1, 2, 4}, 0)
	a := s.takeInterval(nil)
	feed(s, []uint16{5, 7, 8}, 200)
	b := s.takeInterval(nil)
	if a.expected+b.expected != 8 || a.lost+b.lost != 2 || a.packets+b.packets != 6 {
		t.Fatalf("%+v %+v", a, b)
	}
}

func TestFreezeIsAGapBetweenFrames(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	s.onPacket(1, 1, 0, true, 100, 0, 0)
	s.onPacket(1, 2, 0, true, 100, 100, 0)
	s.onPacket(1, 3, 0, true, 100, 900, 0) // 800 ms without a frame
	s.finish(1000)
	sum := s.summary()
	if sum.Freezes != 1 || sum.FreezeTotalMs != 800 || sum.LongestFreezeMs != 800 {
		t.Fatalf("%+v", sum)
	}
}

func TestStampedDelay(t *testing.T) {
	s := newRTPStats(90000, 500, true, true)
	sent := 1_700_000_000_000.0
	ts := uint32(int64(math.Round(sent * 90)))
	s.onPacket(1, 1, ts, true, 100, sent+12, 0)
	sum := s.summary()
	if sum.Delay == nil || math.Abs(sum.Delay.Mean-12) > 0.02 {
		t.Fatalf("delay %+v", sum.Delay)
	}
	// A timestamp that is no stamp at all.
	s.onPacket(1, 2, 12345, true, 100, sent+45, 0)
	if s.summary().ImplausibleDelays != 1 {
		t.Fatal("implausible stamp not counted")
	}
}

func TestJitterOfAPerfectlyPacedStreamIsZero(t *testing.T) {
	s := newRTPStats(90000, 500, false, true)
	for i := 0; i < 50; i++ {
		s.onPacket(1, uint16(i), uint32(i)*3000, true, 100, 1000+float64(i)*100.0/3, 0)
	}
	if j := s.summary().JitterMs; j > 0.05 {
		t.Fatalf("jitter %v", j)
	}
}

func buildRTP(seq uint16, ssrc uint32, ext []byte, profile uint16) []byte {
	b := make([]byte, 12)
	b[0] = 0x80
	b[1] = 0x80 | 96
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], 90000)
	binary.BigEndian.PutUint32(b[8:], ssrc)
	if ext != nil {
		b[0] |= 0x10
		h := make([]byte, 4)
		binary.BigEndian.PutUint16(h, profile)
		binary.BigEndian.PutUint16(h[2:], uint16(len(ext)/4))
		b = append(append(b, h...), ext...)
	}
	return append(b, 1, 2, 3, 4)
}

func TestParseRTPReadsTheClearHeaderAndTheTransportWideSeq(t *testing.T) {
	// one-byte extensions: id 3 (2 bytes: 0x0102), padding, id 5 (twcc: 0xbeef)
	ext := []byte{0x31, 0x01, 0x02, 0x00, 0x51, 0xbe, 0xef, 0x00}
	var h rtpHeader
	if !parseRTP(buildRTP(7, 99, ext, 0xBEDE), 5, &h) {
		t.Fatal("not parsed")
	}
	if h.seq != 7 || h.ssrc != 99 || h.pt != 96 || !h.marker || h.ts != 90000 || !h.hasTwcc || h.twccSeq != 0xbeef || h.hdrLen != 12+4+8 {
		t.Fatalf("%+v", h)
	}
	// two-byte extensions
	ext2 := []byte{0x05, 0x02, 0x12, 0x34}
	if !parseRTP(buildRTP(8, 1, ext2, 0x1000), 5, &h) || !h.hasTwcc || h.twccSeq != 0x1234 {
		t.Fatalf("%+v", h)
	}
	if parseRTP([]byte{0x80, 0x60, 0, 1}, 0, &h) {
		t.Fatal("a truncated packet parsed")
	}
	if !isRTCP([]byte{0x80, 200}) || isRTCP([]byte{0x80, 96}) {
		t.Fatal("RTP/RTCP demux")
	}
}

func TestArrivalTimeAndDropsAreReadFromTheControlMessages(t *testing.T) {
	buf := make([]byte, syscall.CmsgSpace(16))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&buf[0]))
	h.Level, h.Type = syscall.SOL_SOCKET, syscall.SCM_TIMESTAMPNS
	h.SetLen(syscall.CmsgLen(16))
	ts := (*syscall.Timespec)(unsafe.Pointer(&buf[syscall.CmsgLen(0)]))
	ts.Sec, ts.Nsec = 1_700_000_000, 250_000_000
	// followed by SO_RXQ_OVFL
	ovfl := make([]byte, syscall.CmsgSpace(4))
	h2 := (*syscall.Cmsghdr)(unsafe.Pointer(&ovfl[0]))
	h2.Level, h2.Type = syscall.SOL_SOCKET, soRxqOvfl
	h2.SetLen(syscall.CmsgLen(4))
	*(*uint32)(unsafe.Pointer(&ovfl[syscall.CmsgLen(0)])) = 7
	at, drops := parseControl(append(buf, ovfl...))
	if at != 1_700_000_000_250 || drops != 7 {
		t.Fatalf("got %v ms, %d drops", at, drops)
	}
	if at, drops := parseControl(nil); at != 0 || drops != -1 {
		t.Fatal("no control message should give 0 and -1")
	}
}

func TestLogHistogramMatchesTheTypeScriptOne(t *testing.T) {
	h := newLogHist()
	for _, v := range []float64{1, 2, 3, 4, 100} {
		h.add(v)
	}
	j := h.toJSON()
	if j.Count != 5 || j.Sum != 110 || j.Min != 1 || j.Max != 100 {
		t.Fatalf("%+v", j)
	}
	// Same bucket formula as LogHistogram.ts: 1 + floor(ln(v/0.01)/ln(1.02)).
	if bucketOf(1) != 1+int(math.Floor(math.Log(100)/math.Log(1.02))) || bucketOf(0.005) != 0 {
		t.Fatal("bucket formula")
	}
	if p := h.percentile(50); math.Abs(p-3) > 0.06 {
		t.Fatalf("p50 %v", p)
	}
	if h.percentile(100) != 100 || h.percentile(0) != 1 {
		t.Fatal("extremes")
	}
}

// A viewer whose first consumer never carried (a relay still pulling the stream) and whose
// second carried everything is reported as receiving: the streams add up.
func TestSummariesOfReplacedStreamsAddUp(t *testing.T) {
	empty := newRTPStats(90000, 500, false, true).summary()
	s := newRTPStats(90000, 500, false, true)
	feed(s, []uint16{10, 11, 13, 14}, 2000)
	second := s.summary()
	m := mergeSummaries(empty, second)
	if m.Packets != 4 || m.Expected != 5 || m.Lost != 1 || m.FirstPacketAt == nil || *m.FirstPacketAt != 2000 || m.LossFraction != 0.2 {
		t.Fatalf("merged %+v", m)
	}
	early := newRTPStats(90000, 500, false, true)
	feed(early, []uint16{1, 2}, 1000)
	m = mergeSummaries(early.summary(), second)
	if m.Packets != 6 || *m.FirstPacketAt != 1000 || *m.LastPacketAt != 2000+3*33 || m.Frames != 6 {
		t.Fatalf("merged %+v", m)
	}
}
