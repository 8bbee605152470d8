package main

// The receive path (RTP from the clear header, sampled decryption, RTX) and the RTCP the
// sink sends back: receiver reports, NACKs, transport-wide congestion-control feedback.

import (
	"encoding/binary"

	"github.com/pion/rtcp"
)

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
