package gateway

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// responseTimer bounds the wait for the upstream's response headers. Like
// Envoy's route timeout it starts once the request has been sent completely
// (a slow upload is not the upstream's fault) and stops when headers arrive;
// a start after the stop is ignored. Safe for concurrent use: the transport
// starts it from its own goroutine.
type responseTimer struct {
	mu      sync.Mutex
	d       time.Duration
	fire    func()
	t       *time.Timer
	stopped bool
}

func newResponseTimer(d time.Duration, fire func()) *responseTimer {
	return &responseTimer{d: d, fire: fire}
}

func (rt *responseTimer) start() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.stopped || rt.t != nil {
		return
	}
	rt.t = time.AfterFunc(rt.d, rt.fire)
}

func (rt *responseTimer) stop() {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.stopped = true
	if rt.t != nil {
		rt.t.Stop()
	}
}

// countingBody counts request bytes read by the transport and reports the
// end of the body (EOF, or the declared length reached).
type countingBody struct {
	io.ReadCloser
	n      atomic.Int64
	length int64 // declared length, -1 when unknown
	once   sync.Once
	onEnd  func()
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	total := c.n.Add(int64(n))
	if err == io.EOF || (c.length > 0 && total >= c.length) {
		c.once.Do(c.onEnd)
	}
	return n, err
}
