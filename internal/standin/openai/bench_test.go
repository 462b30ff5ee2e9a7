package openai

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChatCompletion measures the non-streaming path without the
// network: decode, answer, encode.
func BenchmarkChatCompletion(b *testing.B) {
	h := New(Options{})
	const body = `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one short sentence, please."}],"max_tokens":64,"temperature":0.2}`
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathChatCompletions, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkEmbeddings measures one 1536-dimension float embedding.
func BenchmarkEmbeddings(b *testing.B) {
	h := New(Options{})
	const body = `{"model":"text-embedding-3-small","input":"The quick brown fox jumps over the lazy dog"}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, PathEmbeddings, strings.NewReader(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
