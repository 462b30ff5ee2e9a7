package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/standin/llm"
	"github.com/sluicegw/sluice/internal/standin/ssetest"
)

// llmGateway starts the LLM stand-in and a gateway routing /v1/ to it.
func llmGateway(t *testing.T) *gw {
	t.Helper()
	up := httptest.NewServer(llm.New(llm.Options{}))
	t.Cleanup(up.Close)
	return startGateway(t, gwConfig{Docs: []string{
		clusterDoc("llm", []string{up.Listener.Addr().String()}),
		routeDoc("openai", "match: {path: {prefix: /v1/}}", "cluster: llm"),
	}})
}

const chatPrompt = "one two three four five six seven eight"

// newChatRequest builds an OpenAI chat completion request for chatPrompt.
func newChatRequest(url string, stream bool, header ...string) (*http.Request, error) {
	body, _ := json.Marshal(map[string]any{
		"model":    "mock-gpt",
		"stream":   stream,
		"messages": []map[string]string{{"role": "user", "content": chatPrompt}},
	})
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req, nil
}

func chatRequest(t *testing.T, url string, stream bool, header ...string) *http.Request {
	t.Helper()
	req, err := newChatRequest(url, stream, header...)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestSSEStreamsIncrementally checks that server-sent events leave the
// gateway as the upstream produces them, not when the stream ends.
func TestSSEStreamsIncrementally(t *testing.T) {
	g := llmGateway(t)
	const chunkDelay = 50 * time.Millisecond

	// The non-streaming answer is the reference text.
	resp, body := g.do(chatRequest(t, g.url("/v1/chat/completions"), false))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("non-stream: status %d: %s", resp.StatusCode, body)
	}
	var whole struct {
		Choices []struct {
			Message struct{ Content string } `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &whole); err != nil || len(whole.Choices) != 1 {
		t.Fatalf("non-stream answer: %v\n%s", err, body)
	}
	want := whole.Choices[0].Message.Content
	if !strings.HasSuffix(want, chatPrompt) {
		t.Fatalf("stand-in answer %q does not echo the prompt", want)
	}

	resp, err := g.client.Do(chatRequest(t, g.url("/v1/chat/completions"), true, "X-Mock-Chunk-Delay", chunkDelay.String()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events, err := ssetest.Read(resp.Body)
	if err != nil {
		t.Fatalf("reading the stream: %v (after %d events)", err, len(events))
	}
	var got strings.Builder
	var content []ssetest.Event
	done := false
	for _, ev := range events {
		if ev.Data == "[DONE]" {
			done = true
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.Data), &chunk); err != nil {
			t.Fatalf("event is not a chat chunk: %v\n%s", err, ev.Data)
		}
		if len(chunk.Choices) == 1 && chunk.Choices[0].Delta.Content != nil && *chunk.Choices[0].Delta.Content != "" {
			got.WriteString(*chunk.Choices[0].Delta.Content)
			content = append(content, ev)
		}
	}
	if !done {
		t.Errorf("stream did not end with [DONE]")
	}
	if got.String() != want {
		t.Errorf("streamed deltas concatenate to %q, want the non-stream answer %q", got.String(), want)
	}
	wantChunks := len(strings.Fields(want))
	if len(content) != wantChunks {
		t.Fatalf("%d content events, want %d (one word each)", len(content), wantChunks)
	}
	// The stand-in waits chunkDelay between content chunks, so if the
	// gateway forwards them as they come the first arrives at least
	// (n-1)·chunkDelay before the last; buffering collapses the spread.
	spread := content[len(content)-1].Arrived.Sub(content[0].Arrived)
	if floor := 3 * chunkDelay; spread < floor {
		var times []string
		for _, ev := range content {
			times = append(times, ev.Arrived.Sub(content[0].Arrived).String())
		}
		t.Errorf("first and last content events arrived %s apart, want ≥ %s (arrivals %v): the stream was buffered", spread, floor, times)
	}
}

// TestBidirectionalStreaming runs a ping-pong through the gateway: the
// upstream starts its response before the request body is complete and
// echoes each piece as it reads it; the client sends the next piece only
// after the echo of the previous one came back. Any buffering in either
// direction deadlocks it. The upstream speaks HTTP/1.1 in full-duplex mode;
// the client h2c, then HTTP/1.1 (which Go's client can do full duplex).
func TestBidirectionalStreaming(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if err := rc.EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		_ = rc.Flush()
		buf := make([]byte, 1024)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				_ = rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("up", "cluster: up"),
	}})
	for _, proto := range []string{"h2c", "HTTP/1.1"} {
		t.Run(proto, func(t *testing.T) {
			tr := &http.Transport{Protocols: new(http.Protocols)}
			if proto == "h2c" {
				tr.Protocols.SetUnencryptedHTTP2(true)
			} else {
				tr.Protocols.SetHTTP1(true)
			}
			t.Cleanup(tr.CloseIdleConnections)
			pingPong(t, g, &http.Client{Transport: tr}, "duplex-"+proto)
		})
	}
}

// pingPong is the client side of TestBidirectionalStreaming.
func pingPong(t *testing.T, g *gw, client *http.Client, id string) {
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, g.url("/duplex"), pr)
	req.Header.Set("X-Request-Id", id)
	type answer struct {
		resp *http.Response
		err  error
	}
	answers := make(chan answer, 1)
	go func() {
		resp, err := client.Do(req)
		answers <- answer{resp, err}
	}()
	if _, err := io.WriteString(pw, "ping-0;"); err != nil {
		t.Fatal(err)
	}
	a := receive(t, "response headers while the request body is still open", answers)
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.resp.Body.Close()
	echoes := make(chan string, 16)
	go func() {
		defer close(echoes)
		buf := make([]byte, 1024)
		for {
			n, err := a.resp.Body.Read(buf)
			if n > 0 {
				echoes <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	var got strings.Builder
	want := "ping-0;"
	for i := 1; i <= 5; i++ {
		// Wait for everything sent so far to come back before sending more.
		for got.Len() < len(want) {
			select {
			case s, ok := <-echoes:
				if !ok {
					t.Fatalf("response ended after %q, want %q", got.String(), want)
				}
				got.WriteString(s)
			case <-time.After(waitLimit):
				t.Fatalf("no echo of %q within %s (got %q): a direction is buffered", want[got.Len():], waitLimit, got.String())
			}
		}
		if got.String() != want {
			t.Fatalf("echo %q, want %q", got.String(), want)
		}
		piece := "ping-" + string(rune('0'+i)) + ";"
		if _, err := io.WriteString(pw, piece); err != nil {
			t.Fatal(err)
		}
		want += piece
	}
	pw.Close()
	rest := receive(t, "the end of the response", func() <-chan string {
		ch := make(chan string, 1)
		go func() {
			var b strings.Builder
			for s := range echoes {
				b.WriteString(s)
			}
			ch <- b.String()
		}()
		return ch
	}())
	got.WriteString(rest)
	if got.String() != want {
		t.Errorf("echo %q, want %q", got.String(), want)
	}
	if e := g.waitAccess(id); e.BytesIn != int64(len(want)) || e.BytesOut != int64(len(want)) {
		t.Errorf("access log bytes_in %d bytes_out %d, want %d each", e.BytesIn, e.BytesOut, len(want))
	}
}

// TestRequestBodyStreams checks that the gateway forwards a request body
// as it arrives: the upstream sees the first bytes while the client still
// holds the rest back.
func TestRequestBodyStreams(t *testing.T) {
	firstBytes := make(chan string, 1)
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		n, err := r.Body.Read(buf)
		if n == 0 {
			done <- result{err: err}
			http.Error(w, "no first bytes", http.StatusBadRequest)
			return
		}
		firstBytes <- string(buf[:n])
		rest, err := io.ReadAll(r.Body)
		done <- result{string(buf[:n]) + string(rest), err}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, gwConfig{Docs: []string{
		clusterDoc("up", []string{up.Listener.Addr().String()}),
		routeDoc("up", "cluster: up"),
	}})

	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, g.url("/upload"), pr)
	if err != nil {
		t.Fatal(err)
	}
	respCh := make(chan *http.Response, 1)
	errCh := make(chan error, 1)
	go func() {
		resp, err := g.client.Do(req)
		if err != nil {
			errCh <- err
			return
		}
		resp.Body.Close()
		respCh <- resp
	}()
	if _, err := io.WriteString(pw, "first-part;"); err != nil {
		t.Fatal(err)
	}
	// The client holds the rest of the body until the upstream has seen the
	// first part; a gateway that buffers whole bodies never gets here.
	select {
	case got := <-firstBytes:
		if !strings.HasPrefix("first-part;", got) {
			t.Errorf("upstream's first bytes %q, want a prefix of %q", got, "first-part;")
		}
	case err := <-errCh:
		t.Fatalf("request failed before the upstream saw the body: %v", err)
	case <-time.After(waitLimit):
		pw.CloseWithError(io.ErrUnexpectedEOF)
		t.Fatalf("the upstream did not see the first body bytes within %s while the client was still sending: the request body is buffered", waitLimit)
	}
	if _, err := io.WriteString(pw, "second-part"); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	select {
	case resp := <-respCh:
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("status %d, want 204", resp.StatusCode)
		}
	case err := <-errCh:
		t.Fatalf("request failed: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("no response")
	}
	r := receive(t, "the upstream's body", done)
	if r.err != nil || r.body != "first-part;second-part" {
		t.Errorf("upstream read %q (err %v), want %q", r.body, r.err, "first-part;second-part")
	}
}
