package openai

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"slices"
	"testing"
)

type embeddingList struct {
	Object string `json:"object"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Model string `json:"model"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func floats(t *testing.T, raw json.RawMessage) []float32 {
	t.Helper()
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		_ = json.Unmarshal(raw, &s)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b)%4 != 0 {
			t.Fatalf("bad base64 embedding: %v", err)
		}
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out
	}
	var v []float32
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("embedding: %v", err)
	}
	return v
}

func l2(v []float32) float64 {
	var s float64
	for _, f := range v {
		s += float64(f) * float64(f)
	}
	return math.Sqrt(s)
}

func TestEmbeddings(t *testing.T) {
	srv := newServer(t, Options{})
	tests := []struct {
		name       string
		body       string
		wantCount  int
		wantDims   int
		wantTokens int
	}{
		{"single string, default dimensions", `{"model":"text-embedding-3-small","input":"The food was delicious"}`, 1, 1536, 4},
		{"array of strings", `{"model":"e","input":["first text","second, text"]}`, 2, 1536, 2 + 3},
		{"dimensions honoured", `{"model":"e","input":"hello","dimensions":256}`, 1, 256, 1},
		{"base64", `{"model":"e","input":["hello","world"],"dimensions":8,"encoding_format":"base64"}`, 2, 8, 2},
		{"token ids", `{"model":"e","input":[101,2023,102]}`, 1, 1536, 3},
		{"arrays of token ids", `{"model":"e","input":[[1,2],[3]],"dimensions":16}`, 2, 16, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, srv, PathEmbeddings, tc.body, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			l := decode[embeddingList](t, body)
			if l.Object != "list" || l.Model == "" || len(l.Data) != tc.wantCount {
				t.Fatalf("envelope: %.300s", body)
			}
			if l.Usage.PromptTokens != tc.wantTokens || l.Usage.TotalTokens != tc.wantTokens {
				t.Errorf("usage %+v, want %d", l.Usage, tc.wantTokens)
			}
			for i, d := range l.Data {
				if d.Object != "embedding" || d.Index != i {
					t.Errorf("item %d: object %q index %d", i, d.Object, d.Index)
				}
				v := floats(t, d.Embedding)
				if len(v) != tc.wantDims {
					t.Errorf("item %d: %d dimensions, want %d", i, len(v), tc.wantDims)
				}
				if n := l2(v); math.Abs(n-1) > 1e-4 {
					t.Errorf("item %d: norm %v, want 1", i, n)
				}
			}
			_, again := post(t, srv, PathEmbeddings, tc.body, nil)
			if string(again) != string(body) {
				t.Error("same request, different embeddings")
			}
		})
	}
}

func TestEmbeddingsFormatsAgree(t *testing.T) {
	srv := newServer(t, Options{})
	_, fb := post(t, srv, PathEmbeddings, `{"model":"e","input":"same text","dimensions":64}`, nil)
	_, bb := post(t, srv, PathEmbeddings, `{"model":"e","input":"same text","dimensions":64,"encoding_format":"base64"}`, nil)
	f := floats(t, decode[embeddingList](t, fb).Data[0].Embedding)
	b := floats(t, decode[embeddingList](t, bb).Data[0].Embedding)
	if !slices.Equal(f, b) {
		t.Errorf("float and base64 encodings differ")
	}
	_, ob := post(t, srv, PathEmbeddings, `{"model":"e","input":"another text","dimensions":64}`, nil)
	if slices.Equal(f, floats(t, decode[embeddingList](t, ob).Data[0].Embedding)) {
		t.Error("different texts, same vector")
	}
}

func TestModels(t *testing.T) {
	srv := newServer(t, Options{Model: "my-model"})
	resp, err := srv.Client().Get(srv.URL + PathModels)
	if err != nil {
		t.Fatal(err)
	}
	var l struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string `json:"id"`
			Object  string `json:"object"`
			Created int64  `json:"created"`
			OwnedBy string `json:"owned_by"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if l.Object != "list" || len(l.Data) < 2 || l.Data[0].ID != "my-model" {
		t.Fatalf("list %+v", l)
	}
	for _, m := range l.Data {
		if m.Object != "model" || m.Created == 0 || m.OwnedBy == "" {
			t.Errorf("model %+v", m)
		}
	}
	resp, err = srv.Client().Get(srv.URL + PathModels + "/gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	var one struct {
		ID     string `json:"id"`
		Object string `json:"object"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&one)
	resp.Body.Close()
	if resp.StatusCode != 200 || one.ID != "gpt-4o" || one.Object != "model" {
		t.Errorf("GET model: %d %+v", resp.StatusCode, one)
	}
}
