package main

import "encoding/binary"

// rtpHeader is what the sink reads of an SRTP packet: the RTP header is sent in the clear
// (RFC 3711 encrypts the payload only), so no decryption is needed to account a packet.
type rtpHeader struct {
	pt      uint8
	marker  bool
	seq     uint16
	ts      uint32
	ssrc    uint32
	hdrLen  int
	twccSeq uint16
	hasTwcc bool
}

// parseRTP parses the fixed header, CSRCs and the header extension of b, picking out the
// transport-wide sequence number (extension id twccID; 0: not negotiated). No allocation.
func parseRTP(b []byte, twccID uint8, h *rtpHeader) bool {
	if len(b) < 12 || b[0]>>6 != 2 {
		return false
	}
	cc := int(b[0] & 0x0f)
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	h.hasTwcc = false
	n := 12 + 4*cc
	if len(b) < n {
		return false
	}
	if b[0]&0x10 != 0 {
		if len(b) < n+4 {
			return false
		}
		profile := binary.BigEndian.Uint16(b[n:])
		words := int(binary.BigEndian.Uint16(b[n+2:]))
		ext := n + 4
		end := ext + 4*words
		if len(b) < end {
			return false
		}
		if twccID != 0 {
			h.twccSeq, h.hasTwcc = findExtension(b[ext:end], profile, twccID)
		}
		n = end
	}
	h.hdrLen = n
	return true
}

// findExtension reads a 2-byte element with the given id from one-byte (0xBEDE, RFC 8285
// 4.2) or two-byte (0x100X, 4.3) header extensions.
func findExtension(e []byte, profile uint16, id uint8) (uint16, bool) {
	switch {
	case profile == 0xBEDE:
		for i := 0; i < len(e); {
			if e[i] == 0 { // padding
				i++
				continue
			}
			eid := e[i] >> 4
			l := int(e[i]&0x0f) + 1
			if eid == 15 {
				return 0, false
			}
			if eid == id && l >= 2 && i+3 <= len(e) {
				return binary.BigEndian.Uint16(e[i+1:]), true
			}
			i += 1 + l
		}
	case profile&0xfff0 == 0x1000:
		for i := 0; i+1 < len(e); {
			if e[i] == 0 {
				i++
				continue
			}
			eid, l := e[i], int(e[i+1])
			if eid == id && l >= 2 && i+4 <= len(e) {
				return binary.BigEndian.Uint16(e[i+2:]), true
			}
			i += 2 + l
		}
	}
	return 0, false
}

// isRTCP tells RTCP from RTP on a muxed port (RFC 5761 4: payload types 64-95 are RTCP's).
func isRTCP(b []byte) bool {
	return len(b) >= 2 && b[1] >= 192 && b[1] <= 223
}
