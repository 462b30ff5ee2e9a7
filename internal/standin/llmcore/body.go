package llmcore

import (
	"bytes"
	"errors"
	"net/http"
	"strconv"
	"sync"
)

// ErrBodyTooLarge is returned by ReadBody when the body exceeds the limit.
var ErrBodyTooLarge = errors.New("request body too large")

var bodyPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 4096)) }}

// ReadBody reads the whole request body into a pooled buffer, bounded by
// limit. The caller must call ReleaseBody when done with the bytes.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	if r.ContentLength > limit {
		ReleaseBody(buf)
		return nil, ErrBodyTooLarge
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + 1)
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		ReleaseBody(buf)
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrBodyTooLarge
		}
		return nil, err
	}
	return buf, nil
}

// ReleaseBody returns a buffer from ReadBody to the pool.
func ReleaseBody(buf *bytes.Buffer) {
	if buf == nil || buf.Cap() > 1<<20 {
		return
	}
	bodyPool.Put(buf)
}

var contentTypeJSON = []string{"application/json"}

// WriteJSON answers status with a complete JSON body.
func WriteJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON // shared, never modified
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// GetBuffer returns an empty pooled byte slice for building a response.
func GetBuffer() *[]byte {
	b := outPool.Get().(*[]byte)
	*b = (*b)[:0]
	return b
}

// PutBuffer returns a slice from GetBuffer to the pool.
func PutBuffer(b *[]byte) {
	if cap(*b) > 1<<20 {
		return
	}
	outPool.Put(b)
}
