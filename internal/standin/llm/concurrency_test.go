package llm

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

// TestConcurrentRequests hammers the shared buffer pools from many
// goroutines (run with -race): every answer must still be exactly the one
// its own request asked for.
func TestConcurrentRequests(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	const workers, perWorker = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				word := fmt.Sprintf("w%dr%d", w, i)
				errs <- checkOne(srv, i%3, word)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func checkOne(srv *httptest.Server, kind int, word string) error {
	switch kind {
	case 0:
		resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"`+word+`"}]}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var c struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) != 1 || c.Choices[0].Message.Content != "Echo: "+word {
			return fmt.Errorf("chat %s: %+v %v", word, c, err)
		}
	case 1:
		resp, err := srv.Client().Post(srv.URL+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"c","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"`+word+` x"}]}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		events, err := ssetest.Read(resp.Body)
		if err != nil {
			return err
		}
		var text string
		for _, ev := range events {
			var e struct {
				Delta struct{ Text string } `json:"delta"`
			}
			if ev.Name == "content_block_delta" && json.Unmarshal([]byte(ev.Data), &e) == nil {
				text += e.Delta.Text
			}
		}
		if text != "Echo: "+word+" x" {
			return fmt.Errorf("messages stream %s: %q", word, text)
		}
	default:
		resp, err := srv.Client().Post(srv.URL+"/v1/embeddings", "application/json",
			strings.NewReader(`{"model":"e","input":"`+word+`","dimensions":4}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !json.Valid(b) || !strings.Contains(string(b), `"prompt_tokens":1`) {
			return fmt.Errorf("embeddings %s: %s", word, b)
		}
	}
	return nil
}
