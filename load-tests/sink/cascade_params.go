package main

// What Cascade's signalling carries about media: transport and consumer parameters, and the
// receive capabilities the sink announces.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
)

type iceCandidate struct {
	IP       string `json:"ip"`
	Address  string `json:"address"`
	Port     uint16 `json:"port"`
	Protocol string `json:"protocol"`
	Priority uint32 `json:"priority"`
}

type transportInfo struct {
	ID            string `json:"id"`
	IceParameters struct {
		UsernameFragment string `json:"usernameFragment"`
		Password         string `json:"password"`
		IceLite          *bool  `json:"iceLite"`
	} `json:"iceParameters"`
	IceCandidates  []iceCandidate `json:"iceCandidates"`
	DtlsParameters struct {
		Fingerprints []struct {
			Algorithm string `json:"algorithm"`
			Value     string `json:"value"`
		} `json:"fingerprints"`
	} `json:"dtlsParameters"`
}

type consumerInfo struct {
	ID            string `json:"id"`
	Kind          string `json:"kind"`
	RtpParameters struct {
		Codecs []struct {
			MimeType     string         `json:"mimeType"`
			PayloadType  int            `json:"payloadType"`
			ClockRate    int            `json:"clockRate"`
			Parameters   map[string]any `json:"parameters"`
			RtcpFeedback []struct {
				Type      string `json:"type"`
				Parameter string `json:"parameter"`
			} `json:"rtcpFeedback"`
		} `json:"codecs"`
		Encodings []struct {
			Ssrc uint32 `json:"ssrc"`
			Rtx  *struct {
				Ssrc uint32 `json:"ssrc"`
			} `json:"rtx"`
		} `json:"encodings"`
		HeaderExtensions []struct {
			URI string `json:"uri"`
			ID  int    `json:"id"`
		} `json:"headerExtensions"`
	} `json:"rtpParameters"`
}

// addConsumer tells the peer what one consumer sends: SSRCs, payload types, RTX, NACK, TWCC.
func addConsumer(p *peer, c *consumerInfo) {
	rp := &c.RtpParameters
	spec := streamSpec{id: c.ID, kind: c.Kind}
	for _, codec := range rp.Codecs {
		if strings.HasSuffix(strings.ToLower(codec.MimeType), "/rtx") {
			spec.rtxPT = uint8(codec.PayloadType)
			continue
		}
		if spec.clockRate == 0 {
			spec.pt, spec.clockRate = uint8(codec.PayloadType), float64(codec.ClockRate)
			for _, fb := range codec.RtcpFeedback {
				if fb.Type == "nack" && fb.Parameter == "" {
					spec.nack = true
				}
			}
		}
	}
	if len(rp.Encodings) > 0 {
		spec.ssrc = rp.Encodings[0].Ssrc
		if rp.Encodings[0].Rtx != nil {
			spec.rtxSSRC = rp.Encodings[0].Rtx.Ssrc
		}
	}
	var twccID uint8
	for _, e := range rp.HeaderExtensions {
		if e.URI == twccURI {
			twccID = uint8(e.ID)
		}
	}
	p.addStream(spec, twccID)
}

// recvCapabilities narrows the router's capabilities to what the sink takes: Opus and VP8
// (with RTX), NACK, and transport-wide congestion control when enabled; no other header
// extension, so packets carry no bytes the sink would not read.
func recvCapabilities(routerCaps json.RawMessage, withTwcc bool) (map[string]any, error) {
	var caps struct {
		Codecs           []map[string]any `json:"codecs"`
		HeaderExtensions []map[string]any `json:"headerExtensions"`
	}
	if err := json.Unmarshal(routerCaps, &caps); err != nil {
		return nil, err
	}
	kept := map[float64]bool{}
	codecs := []map[string]any{}
	for _, c := range caps.Codecs {
		mime, _ := c["mimeType"].(string)
		switch strings.ToLower(mime) {
		case "audio/opus", "video/vp8":
			if pt, ok := c["preferredPayloadType"].(float64); ok {
				kept[pt] = true
			}
			var fbs []any
			if list, ok := c["rtcpFeedback"].([]any); ok {
				for _, f := range list {
					fb, _ := f.(map[string]any)
					t, _ := fb["type"].(string)
					param, _ := fb["parameter"].(string)
					if t == "nack" || (t == "ccm" && param == "fir") || (t == "transport-cc" && withTwcc) {
						fbs = append(fbs, fb)
					}
				}
			}
			c["rtcpFeedback"] = fbs
			codecs = append(codecs, c)
		}
	}
	for _, c := range caps.Codecs {
		mime, _ := c["mimeType"].(string)
		if !strings.HasSuffix(strings.ToLower(mime), "/rtx") {
			continue
		}
		params, _ := c["parameters"].(map[string]any)
		if apt, ok := params["apt"].(float64); ok && kept[apt] {
			codecs = append(codecs, c)
		}
	}
	exts := []map[string]any{}
	for _, e := range caps.HeaderExtensions {
		if uri, _ := e["uri"].(string); uri == twccURI && withTwcc {
			exts = append(exts, e)
		}
	}
	return map[string]any{"codecs": codecs, "headerExtensions": exts}, nil
}

func remoteFromTransport(t *transportInfo) (remoteParams, error) {
	rp := remoteParams{iceUfrag: t.IceParameters.UsernameFragment, icePwd: t.IceParameters.Password, iceLite: true}
	if t.IceParameters.IceLite != nil {
		rp.iceLite = *t.IceParameters.IceLite
	}
	var best []iceCandidate
	for _, c := range t.IceCandidates {
		if strings.ToLower(c.Protocol) == "udp" {
			best = append(best, c)
		}
	}
	// Highest priority first (mediasoup lists its IPv4/UDP candidates with the highest).
	for i := 1; i < len(best); i++ {
		for j := i; j > 0 && best[j].Priority > best[j-1].Priority; j-- {
			best[j], best[j-1] = best[j-1], best[j]
		}
	}
	for _, c := range best {
		ip := c.IP
		if ip == "" {
			ip = c.Address
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		rp.candidates = append(rp.candidates, netip.AddrPortFrom(addr.Unmap(), c.Port))
	}
	for _, f := range t.DtlsParameters.Fingerprints {
		if strings.EqualFold(f.Algorithm, "sha-256") {
			fp, err := hex.DecodeString(strings.ReplaceAll(f.Value, ":", ""))
			if err == nil {
				rp.fingerprint = fp
			}
		}
	}
	if rp.fingerprint == nil {
		return rp, errors.New("the server sent no sha-256 DTLS fingerprint")
	}
	return rp, nil
}
