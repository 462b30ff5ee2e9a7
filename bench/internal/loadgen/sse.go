package loadgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"time"
)

// maxEventLine bounds one SSE line; longer lines fail the request.
const maxEventLine = 1 << 20

// readStream reads an OpenAI-style server-sent event stream to its end. It
// returns the time from start to the first "data:" event carrying content
// (a role-only first delta does not count) and the number of bytes read.
// The stream must carry content and end with "data: [DONE]".
func readStream(body io.Reader, start time.Time) (ttft time.Duration, n int64, err error) {
	cr := &countingReader{r: body}
	sc := bufio.NewScanner(cr)
	sc.Buffer(make([]byte, 0, 4096), maxEventLine)
	gotContent, done := false, false
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if bytes.Equal(data, []byte("[DONE]")) {
			done = true // keep reading to EOF so the connection is reused
			continue
		}
		if !gotContent && hasContent(data) {
			ttft = time.Since(start)
			gotContent = true
		}
	}
	if err := sc.Err(); err != nil {
		return ttft, cr.n, &readError{err}
	}
	if !gotContent {
		return 0, cr.n, errNoContent
	}
	if !done {
		return ttft, cr.n, errNoDone
	}
	return ttft, cr.n, nil
}

// chunk is the part of a chat.completion.chunk (or a legacy completion
// chunk) that says whether it carries generated text.
type chunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Text string `json:"text"`
	} `json:"choices"`
}

func hasContent(data []byte) bool {
	var c chunk
	if json.Unmarshal(data, &c) != nil {
		return false
	}
	for _, ch := range c.Choices {
		if ch.Delta.Content != "" || ch.Text != "" {
			return true
		}
	}
	return false
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
