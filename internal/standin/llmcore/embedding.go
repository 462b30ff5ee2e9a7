package llmcore

import (
	"math"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Embeddings are bags of words: the vector of a text is the normalised sum,
// over its words (runs of letters and digits, lower-cased), of one
// pseudo-random vector per word. The word's vector has components uniform in
// [-1, 1) drawn from SplitMix64 seeded with the FNV-1a 64-bit hash of the
// lower-cased word. A text without words uses the FNV-1a hash of the whole
// text as its only seed. So the same text always gets the same vector, texts
// sharing words are similar (cosine > 0), and the vector for dimensions d is
// the first d components of the full one, renormalised — the same contract
// as OpenAI's "dimensions" parameter.

// DefaultEmbeddingDimensions is the vector length when a request does not
// ask for one (OpenAI text-embedding-3-small's length).
const DefaultEmbeddingDimensions = 1536

// MaxEmbeddingDimensions bounds the "dimensions" parameter.
const MaxEmbeddingDimensions = 8192

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// Embed fills dst with the unit vector of text. acc is scratch space of at
// least len(dst); it is returned (grown if needed) for reuse.
func Embed(dst []float32, text string, acc []float64) []float64 {
	acc = resetScratch(acc, len(dst))
	words := 0
	forEachWord(text, func(w string) {
		words++
		addWordVector(acc, foldedHash(w))
	})
	if words == 0 {
		h := uint64(fnvOffset64)
		for i := 0; i < len(text); i++ {
			h = (h ^ uint64(text[i])) * fnvPrime64
		}
		addWordVector(acc, h)
	}
	normalize(dst, acc)
	return acc
}

// EmbedTokens fills dst with the unit vector of a pre-tokenised input: each
// token id is a word spelled in decimal.
func EmbedTokens(dst []float32, tokens []int64, acc []float64) []float64 {
	acc = resetScratch(acc, len(dst))
	var buf [24]byte
	for _, t := range tokens {
		h := uint64(fnvOffset64)
		for _, c := range strconv.AppendInt(buf[:0], t, 10) {
			h = (h ^ uint64(c)) * fnvPrime64
		}
		addWordVector(acc, h)
	}
	if len(tokens) == 0 {
		addWordVector(acc, fnvOffset64)
	}
	normalize(dst, acc)
	return acc
}

func resetScratch(acc []float64, n int) []float64 {
	if cap(acc) < n {
		return make([]float64, n)
	}
	acc = acc[:n]
	clear(acc)
	return acc
}

// foldedHash is FNV-1a over the UTF-8 of the lower-cased word.
func foldedHash(w string) uint64 {
	h := uint64(fnvOffset64)
	var buf [utf8.UTFMax]byte
	for _, r := range w {
		if r < utf8.RuneSelf {
			c := byte(r)
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			h = (h ^ uint64(c)) * fnvPrime64
			continue
		}
		n := utf8.EncodeRune(buf[:], unicode.ToLower(r))
		for _, c := range buf[:n] {
			h = (h ^ uint64(c)) * fnvPrime64
		}
	}
	return h
}

// addWordVector adds the SplitMix64 vector seeded by seed to acc.
func addWordVector(acc []float64, seed uint64) {
	state := seed
	for i := range acc {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		acc[i] += float64(int64(z)) / (1 << 63)
	}
}

func normalize(dst []float32, acc []float64) {
	var sum float64
	for _, v := range acc {
		sum += v * v
	}
	if sum == 0 {
		// Only when every word vector cancelled out, which SplitMix64 makes
		// practically impossible; keep the result a unit vector anyway.
		if len(dst) > 0 {
			clear(dst)
			dst[0] = 1
		}
		return
	}
	inv := 1 / math.Sqrt(sum)
	for i, v := range acc {
		dst[i] = float32(v * inv)
	}
}
