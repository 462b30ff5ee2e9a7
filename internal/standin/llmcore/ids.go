package llmcore

import (
	"crypto/sha256"
	"encoding/hex"
)

// Created is the "created" timestamp every stand-in object reports
// (2025-01-01T00:00:00Z), so that answers are byte-for-byte reproducible.
const Created = 1735689600

// Digest identifies a request body; response ids are derived from it, so the
// same request always gets the same ids.
type Digest [sha256.Size]byte

// DigestOf returns the digest of a request body.
func DigestOf(body []byte) Digest { return sha256.Sum256(body) }

// ID returns prefix followed by 24 hex digits of the digest; slot (0, 1 or
// 2) selects which 12 bytes, so one request can carry distinct ids.
func (d Digest) ID(prefix string, slot int) string {
	off := (slot % 3) * 10
	var buf [64]byte
	b := append(buf[:0], prefix...)
	b = hex.AppendEncode(b, d[off:off+12])
	return string(b)
}
