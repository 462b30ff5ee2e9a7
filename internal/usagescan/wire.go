package usagescan

import "encoding/binary"

// ForeignFunction is the name of Sluice's foreign function that scans an
// event in the host: proxy_call_foreign_function(ForeignFunction, event)
// returns the event's Fields encoded by Append. A guest calls it instead
// of running Scan itself, because the scan costs a Go guest tens of
// microseconds per response with cold caches and the host a fraction of
// one. Hosts without it (Envoy, Higress) answer NotFound, and the guest
// scans on its own.
const ForeignFunction = "sluice_scan_token_usage"

// wireVersion starts every encoding, so that an answer is never empty and
// a guest can tell an encoding it does not know.
const wireVersion = 1

// Append encodes s: the version byte 1, then per value present its slot
// (one byte), the length of its text (uvarint) and the text.
func Append(dst []byte, s *Fields) []byte {
	dst = append(dst, wireVersion)
	for f, v := range s {
		if v == "" {
			continue
		}
		dst = append(dst, byte(f))
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// Decode reads what Append wrote into s; the strings view b. It reports
// false, leaving s partly filled, when b is malformed: another version, an
// unknown slot, a length past the end, an empty value or a slot given
// twice.
func Decode(b string, s *Fields) bool {
	if len(b) == 0 || b[0] != wireVersion {
		return false
	}
	b = b[1:]
	for len(b) > 0 {
		f := int(b[0])
		if f >= NumFields || s[f] != "" {
			return false
		}
		n, k := uvarint(b[1:])
		if k <= 0 || n == 0 || n > uint64(len(b)-1-k) {
			return false
		}
		start := 1 + k
		s[f] = b[start : start+int(n)]
		b = b[start+int(n):]
	}
	return true
}

// uvarint is binary.Uvarint over a string.
func uvarint(b string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(b) && i < binary.MaxVarintLen64; i++ {
		c := b[i]
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(c)<<shift, i + 1
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
