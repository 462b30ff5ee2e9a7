package llmcore

import (
	"math"
	"slices"
	"testing"
)

func norm(v []float32) float64 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	return math.Sqrt(s)
}

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s / norm(a) / norm(b)
}

func embed(text string, dims int) []float32 {
	v := make([]float32, dims)
	Embed(v, text, nil)
	return v
}

func TestEmbedIsDeterministicUnitLength(t *testing.T) {
	for _, text := range []string{"hello world", "", "!!!", "a much longer text with many words in it"} {
		a, b := embed(text, 1536), embed(text, 1536)
		if !slices.Equal(a, b) {
			t.Errorf("%q: two calls differ", text)
		}
		if n := norm(a); math.Abs(n-1) > 1e-5 {
			t.Errorf("%q: norm %v, want 1", text, n)
		}
	}
}

func TestEmbedSimilarity(t *testing.T) {
	base := embed("What is the weather in Paris", 256)
	if c := cosine(base, embed("what is the WEATHER in paris?", 256)); c < 0.999 {
		t.Errorf("same words, different case and punctuation: cosine %v, want 1", c)
	}
	related := cosine(base, embed("weather in Paris tomorrow", 256))
	unrelated := cosine(base, embed("recipe for chocolate cake", 256))
	if related <= unrelated+0.2 {
		t.Errorf("related cosine %v not clearly above unrelated %v", related, unrelated)
	}
}

func TestEmbedDimensionsArePrefixes(t *testing.T) {
	full := embed("matryoshka dolls", 1536)
	short := embed("matryoshka dolls", 64)
	// The short vector is the renormalised prefix of the full one.
	n := norm(full[:64])
	for i := range short {
		if math.Abs(float64(short[i])-float64(full[i])/n) > 1e-5 {
			t.Fatalf("component %d: %v, want %v", i, short[i], float64(full[i])/n)
		}
	}
}

func TestEmbedTokens(t *testing.T) {
	a := make([]float32, 32)
	b := make([]float32, 32)
	EmbedTokens(a, []int64{1, 2, 3}, nil)
	EmbedTokens(b, []int64{1, 2, 3}, nil)
	if !slices.Equal(a, b) || math.Abs(norm(a)-1) > 1e-5 {
		t.Errorf("token embedding not deterministic unit vector")
	}
	// Token ids are words spelled in decimal.
	if c := cosine(a, embed("1 2 3", 32)); c < 0.999 {
		t.Errorf("token ids and their decimal text differ: cosine %v", c)
	}
}
