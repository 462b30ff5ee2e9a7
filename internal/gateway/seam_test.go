package gateway_test

// Tests of the stream-driver seam (spec/host.md §2.5–§2.8) with native Go
// filters: every action value, deferred control, async resumption, local
// replies, buffering limits, route recomputation and the end-of-stream
// callbacks, each checked through what the upstream and the client saw.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicegw/sluice/internal/gateway"
)

// finalOnly drops the non-final body events, whose number depends on how
// the bytes happened to be chunked.
func finalOnly(e event) bool {
	if e.kind == "reqBody" || e.kind == "respBody" {
		return e.eos
	}
	return true
}

// bodyLen sums the body lengths of events, i.e. the bytes a streaming
// filter (Continue on every chunk) saw.
func bodyLen(evs []event) int {
	n := 0
	for _, e := range evs {
		n += e.n
	}
	return n
}

// checkChunkOrder asserts that every body chunk of kind visited the filters
// in order (each run of events is order[0], order[1], …).
func checkChunkOrder(t *testing.T, rec *recorder, kind string, order ...string) {
	t.Helper()
	var got []string
	for _, e := range rec.all() {
		if e.kind == kind {
			got = append(got, e.filter)
		}
	}
	if len(got) == 0 || len(got)%len(order) != 0 {
		t.Fatalf("%s events by filter: %v, want whole rounds of %v", kind, got, order)
	}
	for i, f := range got {
		if f != order[i%len(order)] {
			t.Fatalf("%s events by filter: %v, want rounds of %v", kind, got, order)
		}
	}
}

// 1. Continue everywhere: callback order and header mutations both ways.
func TestContinueChainOrderAndHeaderMutations(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 3)
	var f2SawF1 string
	var logInfo []string
	fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		if err := h.Add("x-chain", "f0"); err != nil {
			t.Errorf("f0 Add: %v", err)
		}
		return gateway.HeadersContinue
	}
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		if err := h.Set("x-f1", "set-by-f1"); err != nil {
			t.Errorf("f1 Set: %v", err)
		}
		return gateway.HeadersContinue
	}
	fs[2].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f2SawF1 = h.Value("X-F1")
		_ = h.Add("x-chain", "f2")
		return gateway.HeadersContinue
	}
	fs[2].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		_ = h.Set("x-resp-chain", "f2")
		return gateway.HeadersContinue
	}
	fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		_ = h.Set("x-resp-chain", h.Value("x-resp-chain")+",f1")
		return gateway.HeadersContinue
	}
	fs[0].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		_ = h.Del("x-upstream")
		return gateway.HeadersContinue
	}
	fs[0].hk.log = func(f *tfilter) {
		s := f.h.Stream()
		logInfo = []string{s.RouteName(), s.ClusterName(), s.UpstreamHost(), s.ResponseDetails()}
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)

	r := e.do("POST", "/v1/chat?x=1", strings.NewReader("hello"), map[string]string{"Content-Type": "text/plain"})
	e.finished(fs)

	if r.status != 200 || string(r.body) != "upstream a" {
		t.Fatalf("client got %d %q", r.status, r.body)
	}
	if got := r.header.Get("X-Resp-Chain"); got != "f2,f1" {
		t.Errorf("client X-Resp-Chain = %q, want f2,f1 (response filters run in reverse order)", got)
	}
	if _, ok := r.header["X-Upstream"]; ok {
		t.Errorf("client still sees X-Upstream, which f0 deleted")
	}
	seen := up.only(t)
	if got := seen.Header.Get("X-F1"); got != "set-by-f1" {
		t.Errorf("upstream X-F1 = %q", got)
	}
	equalStrings(t, "upstream X-Chain", seen.Header.Values("X-Chain"), []string{"f0", "f2"})
	if f2SawF1 != "set-by-f1" {
		t.Errorf("f2 saw x-f1 %q: request filters must see earlier filters' changes", f2SawF1)
	}
	if seen.Path != "/v1/chat?x=1" || string(seen.Body) != "hello" {
		t.Errorf("upstream got %s %q", seen.Path, seen.Body)
	}

	equalStrings(t, "callback order", rec.names(finalOnly), []string{
		"f0:reqHeaders", "f1:reqHeaders", "f2:reqHeaders",
		"f0:reqBody", "f1:reqBody", "f2:reqBody",
		"f2:respHeaders", "f1:respHeaders", "f0:respHeaders",
		"f2:respBody", "f1:respBody", "f0:respBody",
		"f0:log", "f1:log", "f2:log",
		"f0:destroy", "f1:destroy", "f2:destroy",
	})
	checkChunkOrder(t, rec, "reqBody", "f0", "f1", "f2")
	checkChunkOrder(t, rec, "respBody", "f2", "f1", "f0")
	for _, f := range []string{"f0", "f1", "f2"} {
		if n := bodyLen(rec.of(f, "reqBody")); n != 5 {
			t.Errorf("%s saw %d request body bytes, want 5", f, n)
		}
		if n := bodyLen(rec.of(f, "respBody")); n != len("upstream a") {
			t.Errorf("%s saw %d response body bytes", f, n)
		}
		if evs := rec.of(f, "reqHeaders"); len(evs) != 1 || evs[0].eos {
			t.Errorf("%s request headers: %v (want one call, eos=false: a body follows)", f, evs)
		}
	}
	equalStrings(t, "stream info in OnLog", logInfo, []string{"all", "outbound|" + up.addr[strings.LastIndexByte(up.addr, ':')+1:] + "||up", up.addr, "via_upstream"})
}

// A request without a body carries end of stream on its headers and no
// body callbacks follow.
func TestHeadersOnlyRequestHasEOSOnHeaders(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 2)
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	for _, f := range []string{"f0", "f1"} {
		if evs := rec.of(f, "reqHeaders"); len(evs) != 1 || !evs[0].eos {
			t.Errorf("%s request headers: %v, want one call with eos=true", f, evs)
		}
		if evs := rec.of(f, "reqBody"); len(evs) != 0 {
			t.Errorf("%s got request body calls %v for a bodyless request", f, evs)
		}
	}
}

// 2. HeadersStopIteration + DataStopAndBuffer until eos, then DataContinue
// with a rewritten body: the upstream reads exactly the new body.
func TestStopIterationBufferAndRewriteRequestBody(t *testing.T) {
	orig := pattern(100 << 10)
	newBody := []byte(`{"rewritten":true}`)
	for _, tc := range []struct {
		name    string
		chunked bool
	}{{"content-length", false}, {"chunked", true}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			up := startUpstream(t, "a", nil)
			fs := chain(rec, 3)
			var lens []int
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				_ = h.Del("content-length")
				return gateway.HeadersStopIteration
			}
			fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
				lens = append(lens, b.Len())
				if !eos {
					return gateway.DataStopAndBuffer
				}
				if !bytes.Equal(b.Bytes(), orig) {
					t.Errorf("f1 accumulated %d bytes, not the original body", b.Len())
				}
				b.Set(newBody)
				return gateway.DataContinue
			}
			e := startGateway(t, rec, catchAll(up.addr), fs...)
			var body io.Reader = bytes.NewReader(orig)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length: chunked
			}
			r := e.do("POST", "/", body, nil)
			e.finished(fs)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			seen := up.only(t)
			if !bytes.Equal(seen.Body, newBody) {
				t.Errorf("upstream body %q, want %q", seen.Body, newBody)
			}
			if seen.ContentLength != int64(len(newBody)) || len(seen.TransferEncoding) != 0 {
				t.Errorf("upstream framing: Content-Length %d, Transfer-Encoding %v; want %d, none",
					seen.ContentLength, seen.TransferEncoding, len(newBody))
			}
			for i := 1; i < len(lens); i++ {
				if lens[i] < lens[i-1] {
					t.Errorf("f1 body lengths %v: a buffering filter must see the accumulated body", lens)
				}
			}
			if len(lens) < 2 {
				t.Errorf("f1 body calls %v: expected several chunks for a 100 KiB body", lens)
			}
			// f2 sees headers only once f1 released them, then one body call.
			names := rec.names(kindIs("reqHeaders"))
			equalStrings(t, "header order", names, []string{"f0:reqHeaders", "f1:reqHeaders", "f2:reqHeaders"})
			lastF1 := -1
			f2Headers := -1
			for i, ev := range rec.all() {
				if ev.filter == "f1" && ev.kind == "reqBody" && ev.eos {
					lastF1 = i
				}
				if ev.filter == "f2" && ev.kind == "reqHeaders" {
					f2Headers = i
				}
			}
			if f2Headers < lastF1 {
				t.Errorf("f2 got request headers before f1 released them:\n%s", rec.dump())
			}
			if evs := rec.of("f2", "reqBody"); len(evs) != 1 || evs[0].n != len(newBody) || !evs[0].eos {
				t.Errorf("f2 body calls %v, want one with the %d new bytes and eos", evs, len(newBody))
			}
		})
	}
}

// DataContinue on every chunk streams a rewritten body upstream without
// buffering it: chunked framing, every byte rewritten.
func TestStreamingRequestBodyRewrite(t *testing.T) {
	orig := pattern(200 << 10)
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 2)
	fs[0].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		b.Set(bytes.ToUpper(b.Bytes()))
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", bytes.NewReader(orig), nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	seen := up.only(t)
	if !bytes.Equal(seen.Body, bytes.ToUpper(orig)) {
		t.Errorf("upstream got %d bytes, not the rewritten body", len(seen.Body))
	}
	if seen.ContentLength != -1 {
		t.Errorf("upstream Content-Length %d: a streamed body has no known length", seen.ContentLength)
	}
	if n := len(rec.of("f1", "reqBody")); n < 2 {
		t.Errorf("f1 got %d body calls; a streamed body arrives in chunks", n)
	}
}

// 3. HeadersStopAllBuffer, then an async callout resumes: the body buffered
// at the host meanwhile goes to the same filter first, then onwards.
func TestStopAllBufferResumedByCallout(t *testing.T) {
	orig := pattern(40 << 10)
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 3)
	bodyIn := make(chan struct{})
	var once sync.Once
	fs[0].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		if eos {
			once.Do(func() { close(bodyIn) })
		}
		return gateway.DataContinue
	}
	postOK := make(chan bool, 1)
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		h1 := f.h
		go func() { // the "callout"
			// Wait until the whole body passed f0, i.e. sits in the host
			// buffer at f1, then answer a little later.
			select {
			case <-bodyIn:
			case <-time.After(waitLimit):
			}
			time.Sleep(10 * time.Millisecond)
			postOK <- h1.Post(func() {
				rec.mark("resume")
				h1.Continue(gateway.Request)
			})
		}()
		return gateway.HeadersStopAllBuffer
	}
	var f1Body []byte
	fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		f1Body = append(f1Body, b.Bytes()...)
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", bytes.NewReader(orig), nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if !recv(t, postOK, "post result") {
		t.Fatal("Post during the stream returned false")
	}
	if seen := up.only(t); !bytes.Equal(seen.Body, orig) {
		t.Errorf("upstream got %d bytes, want the original %d", len(seen.Body), len(orig))
	}
	if !bytes.Equal(f1Body, orig) {
		t.Errorf("f1 saw %d body bytes, want %d", len(f1Body), len(orig))
	}
	evs := rec.of("f1", "reqBody")
	if len(evs) != 1 || !evs[0].eos || evs[0].n != len(orig) {
		t.Errorf("f1 body calls %v: the host-buffered body must come in one call with eos", evs)
	}
	// Envoy's order after a StopAll resume: headers onwards from the next
	// filter, then the buffered data from the filter that stopped.
	equalStrings(t, "order", rec.names(finalOnly), []string{
		"f0:reqHeaders", "f1:reqHeaders", "f0:reqBody",
		"resume", "f2:reqHeaders", "f1:reqBody", "f2:reqBody",
		"f2:respHeaders", "f1:respHeaders", "f0:respHeaders",
		"f2:respBody", "f1:respBody", "f0:respBody",
		"f0:log", "f1:log", "f2:log", "f0:destroy", "f1:destroy", "f2:destroy",
	})
}

// 4. HeadersStopAllWatermark with a small buffer limit: a multi-MiB body
// applies back-pressure instead of failing, and arrives whole.
func TestStopAllWatermarkBackpressure(t *testing.T) {
	const limit = 64 << 10
	orig := pattern(4 << 20)
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 3)
	var f0Bytes atomic.Int64
	fs[0].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		f0Bytes.Add(int64(b.Len()))
		return gateway.DataContinue
	}
	atResume := make(chan int64, 1)
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f.h.Stream().SetBufferLimit(gateway.Request, limit)
		h1 := f.h
		go func() {
			deadline := time.Now().Add(waitLimit)
			for f0Bytes.Load() < limit && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			// Give a broken back-pressure time to over-read.
			time.Sleep(100 * time.Millisecond)
			h1.Post(func() {
				atResume <- f0Bytes.Load()
				h1.Continue(gateway.Request)
			})
		}()
		return gateway.HeadersStopAllWatermark
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", bytes.NewReader(orig), nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d %s: a watermark must not answer 413", r.status, r.body)
	}
	if seen := up.only(t); !bytes.Equal(seen.Body, orig) {
		t.Errorf("upstream got %d bytes, want the %d sent", len(seen.Body), len(orig))
	}
	got := recv(t, atResume, "resume")
	// The driver stops reading once the host buffer reaches the limit;
	// at most one more read (32 KiB) may be in flight.
	if got < limit || got > limit+64<<10 {
		t.Errorf("the gateway read %d bytes of the body while paused at a %d-byte watermark", got, limit)
	}
	if evs := rec.of("f1", "reqBody"); len(evs) == 0 || evs[0].n > limit+64<<10 {
		t.Errorf("f1's first body call after resume: %v", evs[:min(1, len(evs))])
	}
	if n := bodyLen(rec.of("f2", "reqBody")); n != len(orig) {
		t.Errorf("f2 saw %d bytes", n)
	}
}

// 5. A buffer over the limit answers 413 on the request path and 500 on the
// response path, with the details in the JSON error body.
func TestBufferLimitExceeded(t *testing.T) {
	const limit = 16 << 10
	big := pattern(64 << 10)
	viaUpstream := func(f *tfilter) bool { return f.h.Stream().ResponseDetails() == gateway.DetailsViaUpstream }
	cases := []struct {
		name    string
		program func(fs []*factory)
		status  int
		code    string
	}{
		{"request/StopAllBuffer", func(fs []*factory) {
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				f.h.Stream().SetBufferLimit(gateway.Request, limit)
				return gateway.HeadersStopAllBuffer
			}
		}, 413, "request_payload_too_large"},
		{"request/DataStopAndBuffer", func(fs []*factory) {
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				f.h.Stream().SetBufferLimit(gateway.Request, limit)
				return gateway.HeadersStopIteration
			}
			fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
				return gateway.DataStopAndBuffer
			}
		}, 413, "request_payload_too_large"},
		{"response/StopAllBuffer", func(fs []*factory) {
			fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				if !viaUpstream(f) {
					return gateway.HeadersContinue
				}
				f.h.Stream().SetBufferLimit(gateway.Response, limit)
				return gateway.HeadersStopAllBuffer
			}
		}, 500, "response_payload_too_large"},
		{"response/DataStopAndBuffer", func(fs []*factory) {
			fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				if !viaUpstream(f) {
					return gateway.HeadersContinue
				}
				f.h.Stream().SetBufferLimit(gateway.Response, limit)
				return gateway.HeadersStopIteration
			}
			fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
				if !viaUpstream(f) {
					return gateway.DataContinue
				}
				return gateway.DataStopAndBuffer
			}
		}, 500, "response_payload_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
				_, _ = w.Write(big)
			})
			fs := chain(rec, 3)
			tc.program(fs)
			e := startGateway(t, rec, catchAll(up.addr), fs...)
			var body io.Reader
			if tc.status == 413 {
				body = bytes.NewReader(big)
			}
			r := e.do("POST", "/", body, nil)
			e.finished(fs)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			ge := parseGatewayError(t, r)
			if ge.Error.Code != tc.code || ge.Error.Status != tc.status {
				t.Errorf("error body %s, want code %s", r.body, tc.code)
			}
			if tc.status == 413 {
				if n := up.count(); n != 0 {
					t.Errorf("the upstream got %d requests", n)
				}
				if rec.has("f2", "respHeaders") {
					t.Errorf("f2 never saw the request but got response callbacks")
				}
			}
			// The reply went through f1 and f0 with the details.
			for _, f := range []string{"f1", "f0"} {
				evs := rec.of(f, "respHeaders")
				if len(evs) == 0 || evs[len(evs)-1].note != fmt.Sprint(tc.status) {
					t.Errorf("%s response headers %v, want the %d reply last", f, evs, tc.status)
				}
			}
			rec2 := e.accessRecords(1)[0]
			if rec2["response_details"] != tc.code || rec2["status"] != float64(tc.status) {
				t.Errorf("access log: details %v status %v", rec2["response_details"], rec2["status"])
			}
		})
	}
}

// Over the response limit once headers went downstream, the only thing left
// is a reset: the client must not see a clean, truncated response.
func TestResponseBufferLimitAfterHeadersSentResets(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
		_, _ = w.Write(pattern(64 << 10))
	})
	fs := chain(rec, 2)
	fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f.h.Stream().SetBufferLimit(gateway.Response, 8<<10)
		return gateway.HeadersContinue
	}
	fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		return gateway.DataStopAndBuffer
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	resp, err := e.client().Get(e.base + "/")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatalf("the client read a complete response; want a reset")
	}
	e.finished(fs)
}

// 6. A local reply from f1's request headers: no upstream request; the reply
// passes f1 then f0 (not f2); every filter still gets OnLog/OnDestroy.
func TestLocalReplyFromRequestHeaders(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 3)
	var first, second bool
	details := map[string]string{}
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		first = f.h.SendLocalReply(403, []byte("denied by f1"), []gateway.HeaderField{{Name: "x-deny", Value: "f1"}}, "f1_denied")
		second = f.h.SendLocalReply(500, []byte("again"), nil, "f1_again")
		return gateway.HeadersContinue // overridden: the reply stops the request
	}
	for _, fa := range fs {
		fa.hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
			details[f.name] = f.h.Stream().ResponseDetails()
			return gateway.HeadersContinue
		}
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", strings.NewReader("some body"), nil)
	e.finished(fs)

	if r.status != 403 || string(r.body) != "denied by f1" || r.header.Get("X-Deny") != "f1" {
		t.Errorf("client got %d %q x-deny=%q", r.status, r.body, r.header.Get("X-Deny"))
	}
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Errorf("Content-Type %q, want the text/plain default of local replies", r.header.Get("Content-Type"))
	}
	if n := up.count(); n != 0 {
		t.Errorf("upstream contacted %d times", n)
	}
	if !first || second {
		t.Errorf("SendLocalReply returned %v then %v, want true then false", first, second)
	}
	equalStrings(t, "order", rec.names(kindIs("reqHeaders", "respHeaders", "respBody", "log", "destroy")), []string{
		"f0:reqHeaders", "f1:reqHeaders",
		"f1:respHeaders", "f0:respHeaders", "f1:respBody", "f0:respBody",
		"f0:log", "f1:log", "f2:log", "f0:destroy", "f1:destroy", "f2:destroy",
	})
	if rec.has("f2", "reqHeaders") || rec.has("f2", "respHeaders") {
		t.Errorf("f2 took part in the stream")
	}
	for _, f := range []string{"f0", "f1"} {
		if details[f] != "f1_denied" {
			t.Errorf("%s saw response details %q, want f1_denied", f, details[f])
		}
	}
	if got := e.accessRecords(1)[0]["response_details"]; got != "f1_denied" {
		t.Errorf("access log response_details %v", got)
	}
}

// 7. A local reply from a response-headers callback replaces the upstream
// response before anything went downstream.
func TestLocalReplyFromResponseHeaders(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
		w.Header().Set("X-Upstream-Only", "1")
		_, _ = io.WriteString(w, "upstream body must not leak")
	})
	fs := chain(rec, 3)
	fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		if f.h.Stream().ResponseDetails() == gateway.DetailsViaUpstream {
			if !f.h.SendLocalReply(418, []byte("teapot"), []gateway.HeaderField{{Name: "content-type", Value: "text/x-tea"}}, "f1_replaced") {
				t.Errorf("SendLocalReply refused")
			}
		}
		return gateway.HeadersContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 418 || string(r.body) != "teapot" || r.header.Get("Content-Type") != "text/x-tea" {
		t.Errorf("client got %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
	}
	if r.header.Get("X-Upstream-Only") != "" {
		t.Errorf("upstream header leaked into the local reply")
	}
	if up.count() != 1 {
		t.Errorf("upstream requests: %d", up.count())
	}
	// f0 comes after f1 on the response path: it only ever sees the reply.
	if evs := rec.of("f0", "respHeaders"); len(evs) != 1 || evs[0].note != "418" {
		t.Errorf("f0 response headers %v, want only the 418 reply", evs)
	}
	if got := e.accessRecords(1)[0]; got["response_details"] != "f1_replaced" || got["status"] != float64(418) {
		t.Errorf("access log %v", got)
	}
}

// 8. A streaming (SSE) response rewritten chunk by chunk reaches the client
// event by event.
func TestStreamingResponseRewrittenPerChunk(t *testing.T) {
	const events = 4
	const gap = 50 * time.Millisecond
	acks := make(chan int, events)
	var ackMissed atomic.Bool
	sent := make([]time.Time, events)
	var sentMu sync.Mutex
	up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		for i := 0; i < events; i++ {
			if i > 0 {
				time.Sleep(gap)
			}
			sentMu.Lock()
			sent[i] = time.Now()
			sentMu.Unlock()
			fmt.Fprintf(w, "data: event %d\n\n", i)
			fl.Flush()
			if i == events-1 {
				break
			}
			// Lock-step: the next event goes out only once the client has
			// this one. A gateway that buffers fails here.
			select {
			case <-acks:
			case <-r.Context().Done():
				return
			case <-time.After(5 * time.Second):
				ackMissed.Store(true)
			}
		}
	})
	rec := &recorder{}
	fs := chain(rec, 2)
	fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		b.Set(bytes.ToUpper(b.Bytes()))
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	resp, err := e.client().Get(e.base + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	arrived := make([]time.Time, events)
	for i := 0; i < events; i++ {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		blank, err := br.ReadString('\n')
		if err != nil || blank != "\n" {
			t.Fatalf("event %d: separator %q %v", i, blank, err)
		}
		arrived[i] = time.Now()
		if want := fmt.Sprintf("DATA: EVENT %d\n", i); line != want {
			t.Errorf("event %d = %q, want %q", i, line, want)
		}
		acks <- i
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("trailing bytes %q", rest)
	}
	e.finished(fs)
	if ackMissed.Load() {
		t.Fatalf("the upstream waited in vain for the client to receive an event: the response was not streamed")
	}
	sentMu.Lock()
	lastSent := sent[events-1]
	sentMu.Unlock()
	if !arrived[0].Before(lastSent) {
		t.Errorf("first event arrived at %v, after the last was sent at %v", arrived[0], lastSent)
	}
	if d := arrived[events-1].Sub(arrived[0]); d < time.Duration(events-1)*gap {
		t.Errorf("events arrived within %v of each other; the upstream spaced them %v apart", d, gap)
	}
	if n := len(rec.of("f1", "respBody")); n < events {
		t.Errorf("f1 got %d body calls for %d flushed events", n, events)
	}
}

// 9. Response DataStopAndBuffer until eos, then the whole body replaced.
func TestResponseBufferedAndReplaced(t *testing.T) {
	up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "30")
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "part-%d....", i) // 10 bytes
			w.(http.Flusher).Flush()
		}
	})
	rec := &recorder{}
	fs := chain(rec, 3)
	var lens []int
	var whole string
	fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		_ = h.Del("content-length")
		_ = h.Set("x-replaced", "1")
		return gateway.HeadersStopIteration
	}
	fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		lens = append(lens, b.Len())
		if !eos {
			return gateway.DataStopAndBuffer
		}
		whole = string(b.Bytes())
		b.Set([]byte("the whole new body"))
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 200 || string(r.body) != "the whole new body" || r.header.Get("X-Replaced") != "1" {
		t.Errorf("client got %d %q x-replaced=%q", r.status, r.body, r.header.Get("X-Replaced"))
	}
	if whole != "part-0....part-1....part-2...." {
		t.Errorf("f1 saw %q at eos, want the whole upstream body", whole)
	}
	for i := 1; i < len(lens); i++ {
		if lens[i] < lens[i-1] {
			t.Errorf("f1 body lengths %v are not cumulative", lens)
		}
	}
	// f0 gets the headers only after f1 released them, and one body call.
	if evs := rec.of("f0", "respBody"); len(evs) != 1 || evs[0].n != len("the whole new body") || !evs[0].eos {
		t.Errorf("f0 body calls %v", evs)
	}
}

// 10. DataStopNoBuffer + InjectData: a filter swallows every chunk and
// injects transformed data (and eos) after itself.
func TestNoBufferAndInjectData(t *testing.T) {
	up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		for _, s := range []string{"alpha ", "beta ", "gamma"} {
			_, _ = io.WriteString(w, s)
			w.(http.Flusher).Flush()
		}
	})
	rec := &recorder{}
	fs := chain(rec, 3)
	var f0Got []string
	fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		if b.Len() > 0 {
			f.h.InjectData(gateway.Response, []byte("<"+strings.ToUpper(string(b.Bytes()))+">"), false)
		}
		if eos {
			f.h.InjectData(gateway.Response, []byte("[done]"), true)
		}
		b.Set(nil)
		return gateway.DataStopNoBuffer
	}
	fs[0].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		f0Got = append(f0Got, fmt.Sprintf("%s|%v", b.Bytes(), eos))
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	got := string(r.body)
	if strings.ReplaceAll(strings.ReplaceAll(got, "<", ""), ">", "") != "ALPHA BETA GAMMA[done]" || !strings.HasSuffix(got, ">[done]") {
		t.Errorf("client body %q", got)
	}
	if len(f0Got) < 2 || f0Got[len(f0Got)-1] != "[done]|true" {
		t.Errorf("f0 saw %q, want the injected chunks ending with [done] and eos", f0Got)
	}
	for _, s := range f0Got {
		if strings.Contains(s, "alpha") || strings.Contains(s, "beta") {
			t.Errorf("f0 saw an untransformed chunk %q: DataStopNoBuffer must drop it", s)
		}
	}
	// f2 (upstream side of f1) saw the original data.
	if n := bodyLen(rec.of("f2", "respBody")); n != len("alpha beta gamma") {
		t.Errorf("f2 saw %d bytes", n)
	}
}

// 11. Route recomputation after a header change, and clear_route_cache=off.
func TestRouteRecomputation(t *testing.T) {
	cases := []struct {
		name      string
		changeAt  int  // filter index that rewrites :path
		off       bool // SetProperty clear_route_cache=off first
		offAPI    bool // SetRouteRecompute(false) first
		wantRoute string
		wantB     bool
	}{
		{"recompute", 0, false, false, "route-b", true},
		{"clear_route_cache off", 0, true, false, "route-a", false},
		{"SetRouteRecompute false", 0, false, true, "route-a", false},
		{"last filter changes path", 2, false, false, "route-a", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upA := startUpstream(t, "a", nil)
			upB := startUpstream(t, "b", nil)
			docs := clusterDoc("ca", upA.addr) + clusterDoc("cb", upB.addr) +
				routeDoc("route-a", "  match:\n    path:\n      prefix: /a/\n  cluster: ca\n") +
				routeDoc("route-b", "  match:\n    path:\n      prefix: /b/\n  cluster: cb\n")
			rec := &recorder{}
			fs := chain(rec, 3)
			var f1Route, f1Cluster string
			fs[tc.changeAt].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				if tc.off {
					f.h.Stream().SetProperty("clear_route_cache", []byte("off"))
				}
				if tc.offAPI {
					f.h.Stream().SetRouteRecompute(false)
				}
				if err := h.Set(":path", "/b/moved?q=1"); err != nil {
					t.Errorf("Set :path: %v", err)
				}
				return gateway.HeadersContinue
			}
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				f1Route, f1Cluster = f.h.Stream().RouteName(), f.h.Stream().ClusterName()
				return gateway.HeadersContinue
			}
			e := startGateway(t, rec, docs, fs...)
			r := e.do("GET", "/a/start", nil, nil)
			e.finished(fs)
			if r.status != 200 {
				t.Fatalf("status %d %s", r.status, r.body)
			}
			target, other := upA, upB
			if tc.wantB {
				target, other = upB, upA
			}
			if other.count() != 0 {
				t.Errorf("the other cluster got %d requests", other.count())
			}
			if seen := target.only(t); seen.Path != "/b/moved?q=1" {
				t.Errorf("upstream path %q", seen.Path)
			}
			if tc.changeAt == 0 {
				if f1Route != tc.wantRoute {
					t.Errorf("f1 saw route %q, want %q", f1Route, tc.wantRoute)
				}
				wantCluster := "||ca"
				if tc.wantB {
					wantCluster = "||cb"
				}
				if !strings.HasSuffix(f1Cluster, wantCluster) {
					t.Errorf("f1 saw cluster %q, want …%s", f1Cluster, wantCluster)
				}
			}
			wantRoute := "route-a"
			if tc.wantB {
				wantRoute = "route-b"
			}
			if got := e.accessRecords(1)[0]["route"]; got != wantRoute {
				t.Errorf("access log route %v, want %s", got, wantRoute)
			}
		})
	}
}

// 12. SetUpstreamOverride picks the named endpoint of a two-endpoint
// cluster; without it both endpoints take traffic.
func TestUpstreamOverride(t *testing.T) {
	for _, override := range []bool{true, false} {
		t.Run(fmt.Sprintf("override=%v", override), func(t *testing.T) {
			upA := startUpstream(t, "a", nil)
			upB := startUpstream(t, "b", nil)
			rec := &recorder{}
			fs := chain(rec, 2)
			var hostsMu sync.Mutex
			var hosts []string
			if override {
				fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
					f.h.Stream().SetUpstreamOverride(upB.addr)
					return gateway.HeadersContinue
				}
			}
			fs[1].hk.log = func(f *tfilter) {
				hostsMu.Lock()
				hosts = append(hosts, f.h.Stream().UpstreamHost())
				hostsMu.Unlock()
			}
			e := startGateway(t, rec, catchAll(upA.addr, upB.addr), fs...)
			const n = 6
			for i := 0; i < n; i++ {
				if r := e.do("GET", "/", nil, nil); r.status != 200 {
					t.Fatalf("status %d", r.status)
				}
			}
			eventually(t, "all OnLog calls", func() bool { return len(rec.of("f1", "log")) == n })
			if override {
				if upA.count() != 0 || upB.count() != n {
					t.Errorf("requests: a=%d b=%d, want all %d on b", upA.count(), upB.count(), n)
				}
				hostsMu.Lock()
				for _, h := range hosts {
					if h != upB.addr {
						t.Errorf("UpstreamHost %q, want %q", h, upB.addr)
					}
				}
				hostsMu.Unlock()
			} else if upA.count() == 0 || upB.count() == 0 {
				t.Errorf("round robin: a=%d b=%d", upA.count(), upB.count())
			}
		})
	}
}

// 13. The property store is shared between filters, and ai_log set in
// OnLog reaches the access log.
func TestPropertiesAndAILog(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 3)
	var f1Saw, f2SawInLog string
	var deleted bool
	fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f.h.Stream().SetProperty("tenant", []byte("acme"))
		f.h.Stream().SetProperty("scratch", []byte("x"))
		return gateway.HeadersContinue
	}
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		v, _ := f.h.Stream().Property("tenant")
		f1Saw = string(v)
		f.h.Stream().SetProperty("scratch", nil)
		return gateway.HeadersContinue
	}
	fs[0].hk.log = func(f *tfilter) {
		f.h.Stream().SetProperty("ai_log", []byte(`{"model":"gpt-test","input_token":3}`))
	}
	fs[2].hk.log = func(f *tfilter) {
		v, _ := f.h.Stream().Property("ai_log")
		f2SawInLog = string(v)
		_, ok := f.h.Stream().Property("scratch")
		deleted = !ok
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	if r := e.do("GET", "/p", nil, map[string]string{"X-Request-Id": "req-123"}); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	e.finished(fs)
	if f1Saw != "acme" {
		t.Errorf("f1 read tenant=%q", f1Saw)
	}
	if f2SawInLog != `{"model":"gpt-test","input_token":3}` {
		t.Errorf("f2 read ai_log=%q in OnLog", f2SawInLog)
	}
	if !deleted {
		t.Errorf("SetProperty(nil) did not delete")
	}
	lr := e.accessRecords(1)[0]
	ai, ok := lr["ai_log"].(map[string]any)
	if !ok || ai["model"] != "gpt-test" || ai["input_token"] != float64(3) {
		t.Errorf("access log ai_log = %#v", lr["ai_log"])
	}
	if lr["request_id"] != "req-123" || lr["route"] != "all" || lr["response_details"] != "via_upstream" {
		t.Errorf("access log %v", lr)
	}
}

// 14. Post after the stream ended returns false and never runs; a Post
// issued during the stream that has not run when the stream completes still
// runs, at close, before OnLog.
func TestPostLifecycle(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 2)
	var ran atomic.Int32
	var queued, inLog bool
	var handle *gateway.FilterHandle
	fs[0].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		if eos {
			// The last chunk completes the stream in this very callback:
			// the posted function cannot run before the stream ends.
			queued = f.h.Post(func() {
				ran.Add(1)
				rec.mark("posted")
			})
		}
		return gateway.DataContinue
	}
	fs[0].hk.log = func(f *tfilter) {
		handle = f.h
		inLog = f.h.Post(func() { ran.Add(100) })
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	if r := e.do("GET", "/", nil, nil); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	e.finished(fs)
	if !queued {
		t.Fatalf("Post during the stream returned false")
	}
	if inLog {
		t.Errorf("Post from OnLog (stream ended) returned true")
	}
	if late := handle.Post(func() { ran.Add(1000) }); late {
		t.Errorf("Post after the stream ended returned true")
	}
	if got := ran.Load(); got != 1 {
		t.Errorf("posted functions ran with counter %d, want 1 (only the one queued during the stream)", got)
	}
	equalStrings(t, "order", rec.names(kindIs("posted", "log", "destroy")), []string{
		"posted", "f0:log", "f1:log", "f0:destroy", "f1:destroy",
	})
}

// 15. Reset from a filter: the client sees a connection error, never a
// clean response.
func TestFilterReset(t *testing.T) {
	t.Run("request headers", func(t *testing.T) {
		rec := &recorder{}
		up := startUpstream(t, "a", nil)
		fs := chain(rec, 3)
		fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
			f.h.Reset()
			return gateway.HeadersContinue
		}
		e := startGateway(t, rec, catchAll(up.addr), fs...)
		resp, err := e.client().Post(e.base+"/", "text/plain", strings.NewReader("x"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Fatalf("client got a response %d %q; want a connection error", resp.StatusCode, b)
		}
		e.finished(fs)
		if up.count() != 0 {
			t.Errorf("the upstream was contacted")
		}
		if rec.has("f2", "reqHeaders") {
			t.Errorf("f2 saw the request after f1 reset it")
		}
		if got := e.accessRecords(1)[0]["response_details"]; got != "filter_reset" {
			t.Errorf("access log details %v", got)
		}
	})
	t.Run("response body", func(t *testing.T) {
		rec := &recorder{}
		up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "second")
		})
		fs := chain(rec, 2)
		fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
			f.h.Reset()
			return gateway.DataContinue
		}
		e := startGateway(t, rec, catchAll(up.addr), fs...)
		resp, err := e.client().Get(e.base + "/")
		if err != nil {
			t.Fatalf("response headers should have arrived: %v", err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("client read a clean body %q; want a connection error", b)
		}
		e.finished(fs)
	})
}

// 16. Upstream failures pass through the chain's response callbacks as
// gateway replies.
func TestUpstreamFailuresThroughChain(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	cases := []struct {
		name   string
		docs   string
		path   string
		status int
		code   string
	}{
		{"connect refused", catchAll(closedAddr(t)), "/", 503, gateway.DetailsConnectFailure},
		{"route timeout", clusterDoc("slow", slow.addr) + routeDoc("slow", "  cluster: slow\n  timeout: 200ms\n"), "/", 504, gateway.DetailsUpstreamTimeout},
		{"route not found", clusterDoc("up", slow.addr) + routeDoc("only", "  match:\n    path:\n      exact: /only\n  cluster: up\n"), "/other", 404, gateway.DetailsRouteNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			fs := chain(rec, 2)
			var seenStatus, seenDetails []string
			fs[0].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				seenStatus = append(seenStatus, h.Value(":status"))
				seenDetails = append(seenDetails, f.h.Stream().ResponseDetails())
				return gateway.HeadersContinue
			}
			e := startGateway(t, rec, tc.docs, fs...)
			start := time.Now()
			r := e.do("GET", tc.path, nil, nil)
			e.finished(fs)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if ge := parseGatewayError(t, r); ge.Error.Code != tc.code || ge.Error.Status != tc.status || ge.Error.Message == "" {
				t.Errorf("error body %s", r.body)
			}
			equalStrings(t, "f0 saw :status", seenStatus, []string{fmt.Sprint(tc.status)})
			equalStrings(t, "f0 saw details", seenDetails, []string{tc.code})
			equalStrings(t, "response order", rec.names(kindIs("respHeaders")), []string{"f1:respHeaders", "f0:respHeaders"})
			if tc.status == 504 && time.Since(start) > waitLimit/2 {
				t.Errorf("the 504 took %v", time.Since(start))
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Errorf("a gateway reply carries X-Request-Id")
			}
		})
	}
}

// 17. A client that goes away mid-stream cancels the upstream request, and
// the filters still get OnLog and OnDestroy.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	for _, midStream := range []bool{true, false} {
		name := "before response"
		if midStream {
			name = "mid-stream"
		}
		t.Run(name, func(t *testing.T) {
			arrived := make(chan struct{}, 1)
			cancelled := make(chan struct{}, 1)
			up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				if midStream {
					_, _ = io.WriteString(w, "data: first\n\n")
					w.(http.Flusher).Flush()
				}
				arrived <- struct{}{}
				select {
				case <-r.Context().Done():
					cancelled <- struct{}{}
				case <-time.After(waitLimit):
				}
			})
			rec := &recorder{}
			fs := chain(rec, 2)
			e := startGateway(t, rec, catchAll(up.addr), fs...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/", nil)
			done := make(chan error, 1)
			go func() {
				resp, err := e.client().Do(req)
				if err == nil {
					br := bufio.NewReader(resp.Body)
					_, err = br.ReadString('\n')
					if err == nil {
						<-ctx.Done()
					}
					resp.Body.Close()
				}
				done <- err
			}()
			recv(t, arrived, "the request upstream")
			if midStream {
				eventually(t, "the first chunk through f0", func() bool { return rec.has("f0", "respBody") })
			}
			cancel()
			recv(t, cancelled, "the upstream request's context to be cancelled")
			recv(t, done, "the client")
			e.finished(fs)
			equalStrings(t, "end", rec.names(kindIs("log", "destroy")), []string{"f0:log", "f1:log", "f0:destroy", "f1:destroy"})
			if got := e.accessRecords(1)[0]["response_details"]; got != gateway.DetailsDownstreamGone {
				t.Errorf("access log details %v", got)
			}
		})
	}
}

// 18. Request and response trailers pass through a Continue chain, over
// HTTP/1.1 (chunked) and h2c, and filters may add to them.
func TestTrailersThroughChain(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
				w.Header().Set("Trailer", "X-Resp-Trailer")
				_, _ = io.WriteString(w, "response body")
				w.Header().Set("X-Resp-Trailer", "resp-value")
			})
			rec := &recorder{}
			fs := chain(rec, 3)
			var f2ReqTrailer string
			var reqTrl *gateway.Headers
			var sealErrs []error
			fs[0].hk.reqTrailers = func(f *tfilter, tr *gateway.Headers) gateway.TrailersAction {
				reqTrl = tr
				return gateway.TrailersContinue
			}
			fs[0].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				sealErrs = append(sealErrs, reqTrl.Set("x-late", "1"))
				return gateway.HeadersContinue
			}
			fs[0].hk.log = func(f *tfilter) {
				sealErrs = append(sealErrs, f.h.Stream().ResponseTrailers().Set("x-late", "1"))
			}
			fs[1].hk.reqTrailers = func(f *tfilter, tr *gateway.Headers) gateway.TrailersAction {
				if err := tr.Set("x-f1-req-trailer", "added"); err != nil {
					t.Errorf("set request trailer: %v", err)
				}
				return gateway.TrailersContinue
			}
			fs[2].hk.reqTrailers = func(f *tfilter, tr *gateway.Headers) gateway.TrailersAction {
				f2ReqTrailer = tr.Value("x-req-trailer")
				return gateway.TrailersContinue
			}
			fs[1].hk.respTrailers = func(f *tfilter, tr *gateway.Headers) gateway.TrailersAction {
				_ = tr.Set("x-f1-resp-trailer", "added")
				return gateway.TrailersContinue
			}
			e := startGateway(t, rec, catchAll(up.addr), fs...)
			c := e.client()
			if proto == "h2c" {
				c = e.h2cClient()
			}
			req, _ := http.NewRequest("POST", e.base+"/t", io.MultiReader(strings.NewReader("request body")))
			req.Trailer = http.Header{"X-Req-Trailer": {"req-value"}}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || string(b) != "response body" {
				t.Fatalf("body %q %v", b, err)
			}
			if resp.ProtoMajor != map[string]int{"HTTP/1.1": 1, "h2c": 2}[proto] {
				t.Errorf("client spoke %s", resp.Proto)
			}
			e.finished(fs)
			seen := up.only(t)
			if string(seen.Body) != "request body" {
				t.Errorf("upstream body %q", seen.Body)
			}
			if seen.Trailer.Get("X-Req-Trailer") != "req-value" || seen.Trailer.Get("X-F1-Req-Trailer") != "added" {
				t.Errorf("upstream trailers %v", seen.Trailer)
			}
			if f2ReqTrailer != "req-value" {
				t.Errorf("f2 saw request trailer %q", f2ReqTrailer)
			}
			if resp.Trailer.Get("X-Resp-Trailer") != "resp-value" || resp.Trailer.Get("X-F1-Resp-Trailer") != "added" {
				t.Errorf("client trailers %v", resp.Trailer)
			}
			for i, err := range sealErrs {
				if !errors.Is(err, gateway.ErrHeadersSealed) {
					t.Errorf("trailer write %d after forwarding: %v, want ErrHeadersSealed", i, err)
				}
			}
			if len(sealErrs) != 2 {
				t.Errorf("%d sealed-trailer checks ran, want 2", len(sealErrs))
			}
			equalStrings(t, "trailer order", rec.names(kindIs("reqTrailers", "respTrailers")), []string{
				"f0:reqTrailers", "f1:reqTrailers", "f2:reqTrailers",
				"f2:respTrailers", "f1:respTrailers", "f0:respTrailers",
			})
		})
	}
}

// A filter holding headers (StopIteration) and buffering the body still gets
// the trailers; continuing from the trailer callback, or stopping the
// trailers and calling Continue later, releases headers, body and trailers
// (spec/host.md §2.6: "when this plugin returns 0 from a body (or
// trailers) callback", "Trailer callbacks: … stop until continue_stream").
func TestTrailersReleaseHeldHeaders(t *testing.T) {
	for _, side := range []string{"request", "response"} {
		for _, later := range []bool{false, true} {
			name := side + "/continue from trailers"
			if later {
				name = side + "/stop trailers then Continue"
			}
			t.Run(name, func(t *testing.T) {
				up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
					w.Header().Set("Trailer", "X-Resp-Trailer")
					_, _ = io.WriteString(w, "response body")
					w.Header().Set("X-Resp-Trailer", "resp-value")
				})
				rec := &recorder{}
				fs := chain(rec, 3)
				dir := gateway.Request
				if side == "response" {
					dir = gateway.Response
				}
				stop := func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
					return gateway.HeadersStopIteration
				}
				buffer := func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
					return gateway.DataStopAndBuffer
				}
				trailers := func(f *tfilter, tr *gateway.Headers) gateway.TrailersAction {
					if !later {
						return gateway.TrailersContinue
					}
					h := f.h
					go h.Post(func() {
						rec.mark("resume")
						h.Continue(dir)
					})
					return gateway.TrailersStop
				}
				if side == "request" {
					fs[1].hk.reqHeaders, fs[1].hk.reqBody, fs[1].hk.reqTrailers = stop, buffer, trailers
				} else {
					fs[1].hk.respHeaders, fs[1].hk.respBody, fs[1].hk.respTrailers = stop, buffer, trailers
				}
				e := startGateway(t, rec, catchAll(up.addr), fs...)
				req, _ := http.NewRequest("POST", e.base+"/t", io.MultiReader(strings.NewReader("request body")))
				req.Trailer = http.Header{"X-Req-Trailer": {"req-value"}}
				c := e.client()
				c.Timeout = 10 * time.Second
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("the stream never completed: %v", err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != "response body" {
					t.Fatalf("client body %q %v", b, err)
				}
				e.finished(fs)
				seen := up.only(t)
				if string(seen.Body) != "request body" || seen.Trailer.Get("X-Req-Trailer") != "req-value" {
					t.Errorf("upstream got %q trailers %v", seen.Body, seen.Trailer)
				}
				if resp.Trailer.Get("X-Resp-Trailer") != "resp-value" {
					t.Errorf("client trailers %v", resp.Trailer)
				}
				prefix := "req"
				if side == "response" {
					prefix = "resp"
				}
				next := "f2"
				if side == "response" {
					next = "f0"
				}
				// The next filter sees headers, the held body, then the
				// trailers, all after f1 let go.
				want := []string{"f1:" + prefix + "Trailers"}
				if later {
					want = append(want, "resume")
				}
				want = append(want, next+":"+prefix+"Headers", next+":"+prefix+"Body", next+":"+prefix+"Trailers")
				equalStrings(t, "release order", rec.names(func(e event) bool {
					return e.kind == "resume" || (e.filter == "f1" && e.kind == prefix+"Trailers") ||
						(e.filter == next && strings.HasPrefix(e.kind, prefix))
				}), want)
			})
		}
	}
}

// Trailers the client did not declare in a Trailer header still reach the
// upstream, also when the upstream request started before they arrived.
func TestUndeclaredRequestTrailers(t *testing.T) {
	arrived := make(chan struct{}, 1)
	got := make(chan seenRequest, 1)
	up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		body, _ := io.ReadAll(r.Body)
		got <- seenRequest{Body: body, Trailer: r.Trailer.Clone()}
	})
	rec := &recorder{}
	fs := chain(rec, 1)
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(conn, "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	recv(t, arrived, "the upstream request to start")
	if _, err := io.WriteString(conn, "0\r\nX-Undeclared: u\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	seen := recv(t, got, "the upstream request")
	if string(seen.Body) != "hello" || seen.Trailer.Get("X-Undeclared") != "u" {
		t.Errorf("upstream got %q, trailers %v", seen.Body, seen.Trailer)
	}
}

// 19. Header maps are sealed once forwarded: later writes fail with
// ErrHeadersSealed and change nothing.
func TestHeadersSealedAfterForwarding(t *testing.T) {
	rec := &recorder{}
	up := startUpstream(t, "a", nil)
	fs := chain(rec, 2)
	var reqH, respH *gateway.Headers
	var errs []string
	check := func(where string, err error) {
		if !errors.Is(err, gateway.ErrHeadersSealed) {
			errs = append(errs, fmt.Sprintf("%s: %v", where, err))
		}
	}
	fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		reqH = h
		if err := h.Set("x-early", "1"); err != nil {
			errs = append(errs, "early write failed: "+err.Error())
		}
		return gateway.HeadersContinue
	}
	fs[0].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		respH = h
		if !reqH.Sealed() || !f.h.Stream().RequestHeaders().Sealed() {
			errs = append(errs, "request headers not sealed after going upstream")
		}
		check("req Set", reqH.Set("x-late", "1"))
		check("req Add", reqH.Add("x-late", "1"))
		check("req Del", reqH.Del("x-early"))
		check("req Replace", reqH.Replace(nil))
		return gateway.HeadersContinue
	}
	fs[0].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		check("resp Set", respH.Set("x-late", "1"))
		return gateway.DataContinue
	}
	fs[1].hk.log = func(f *tfilter) {
		check("resp Set in OnLog", f.h.Stream().ResponseHeaders().Set("x-late", "1"))
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 200 || r.header.Get("X-Late") != "" {
		t.Errorf("client got %d x-late=%q", r.status, r.header.Get("X-Late"))
	}
	seen := up.only(t)
	if seen.Header.Get("X-Early") != "1" || seen.Header.Get("X-Late") != "" {
		t.Errorf("upstream x-early=%q x-late=%q", seen.Header.Get("X-Early"), seen.Header.Get("X-Late"))
	}
	if reqH.Value("x-early") != "1" || reqH.Value("x-late") != "" {
		t.Errorf("a sealed map changed")
	}
	for _, s := range errs {
		t.Error(s)
	}
	if !rec.has("f0", "respBody") {
		t.Errorf("no response body callback ran")
	}
}

// Route rewrites (path prefix, whole path, host) apply to what goes
// upstream, after the filters.
func TestRouteRewriteUpstream(t *testing.T) {
	up := startUpstream(t, "a", nil)
	docs := clusterDoc("up", up.addr) +
		routeDoc("prefix", "  match:\n    path:\n      prefix: /api/\n  cluster: up\n  rewrite:\n    pathPrefix: /v1/\n    host: upstream.internal\n") +
		routeDoc("whole", "  match:\n    path:\n      exact: /old\n  cluster: up\n  rewrite:\n    path: /new\n")
	rec := &recorder{}
	fs := chain(rec, 1)
	e := startGateway(t, rec, docs, fs...)
	e.do("GET", "/api/chat/completions?stream=1", nil, map[string]string{"Host": "client.example"})
	e.do("GET", "/old?keep=q", nil, map[string]string{"Host": "client.example"})
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	if reqs[0].Path != "/v1/chat/completions?stream=1" || reqs[0].Host != "upstream.internal" {
		t.Errorf("prefix rewrite: %s host %s", reqs[0].Path, reqs[0].Host)
	}
	if reqs[1].Path != "/new?keep=q" || reqs[1].Host != "client.example" {
		t.Errorf("path rewrite: %s host %s", reqs[1].Path, reqs[1].Host)
	}
}

// Continue (Proxy-Wasm continue_stream) in its corner cases: a no-op when
// nothing is held, deferred when called inside the callback that stops,
// the only release for held headers that carry end of stream, and on the
// response direction.
func TestContinueSemantics(t *testing.T) {
	cases := []struct {
		name    string
		method  string
		program func(rec *recorder, fs []*factory)
	}{
		{"no-op when not paused", "POST", func(rec *recorder, fs []*factory) {
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				f.h.Continue(gateway.Request)
				f.h.Continue(gateway.Response)
				return gateway.HeadersContinue
			}
			fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
				f.h.Continue(gateway.Request)
				return gateway.DataContinue
			}
		}},
		{"inside the stopping callback", "POST", func(rec *recorder, fs []*factory) {
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				f.h.Continue(gateway.Request) // takes effect after the return
				return gateway.HeadersStopAllBuffer
			}
		}},
		{"held headers with end of stream", "GET", func(rec *recorder, fs []*factory) {
			fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				h1 := f.h
				go h1.Post(func() { h1.Continue(gateway.Request) })
				return gateway.HeadersStopIteration
			}
		}},
		{"response direction, async", "POST", func(rec *recorder, fs []*factory) {
			fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
				h1 := f.h
				go func() {
					time.Sleep(20 * time.Millisecond)
					h1.Post(func() { h1.Continue(gateway.Response) })
				}()
				return gateway.HeadersStopAllBuffer
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, "a", nil)
			rec := &recorder{}
			fs := chain(rec, 3)
			tc.program(rec, fs)
			e := startGateway(t, rec, catchAll(up.addr), fs...)
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("payload")
			}
			r := e.do(tc.method, "/", body, nil)
			e.finished(fs)
			if r.status != 200 || string(r.body) != "upstream a" {
				t.Fatalf("client got %d %q", r.status, r.body)
			}
			seen := up.only(t)
			if tc.method == "POST" && string(seen.Body) != "payload" {
				t.Errorf("upstream body %q", seen.Body)
			}
			for _, f := range []string{"f0", "f1", "f2"} {
				if n := len(rec.of(f, "reqHeaders")); n != 1 {
					t.Errorf("%s got request headers %d times", f, n)
				}
				if n := len(rec.of(f, "respHeaders")); n != 1 {
					t.Errorf("%s got response headers %d times", f, n)
				}
				if tc.method == "POST" && bodyLen(rec.of(f, "reqBody")) != len("payload") {
					t.Errorf("%s saw %d request body bytes", f, bodyLen(rec.of(f, "reqBody")))
				}
				if bodyLen(rec.of(f, "respBody")) != len("upstream a") {
					t.Errorf("%s saw %d response body bytes", f, bodyLen(rec.of(f, "respBody")))
				}
			}
		})
	}
}

// A local reply sent from a callout's result while the request waits under
// a watermark (the ext-auth / quota deny path): the upstream is never
// contacted and the reply passes the filters that saw the request.
func TestLocalReplyFromCallout(t *testing.T) {
	up := startUpstream(t, "a", nil)
	rec := &recorder{}
	fs := chain(rec, 3)
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		h1 := f.h
		go func() {
			time.Sleep(20 * time.Millisecond)
			h1.Post(func() {
				if !h1.SendLocalReply(429, []byte(`{"error":"quota"}`), []gateway.HeaderField{{Name: "content-type", Value: "application/json"}}, "quota_exceeded") {
					t.Errorf("SendLocalReply refused")
				}
			})
		}()
		return gateway.HeadersStopAllWatermark
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", strings.NewReader("prompt"), nil)
	e.finished(fs)
	if r.status != 429 || string(r.body) != `{"error":"quota"}` || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("client got %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
	}
	if up.count() != 0 {
		t.Errorf("the upstream was contacted")
	}
	equalStrings(t, "order", rec.names(kindIs("reqHeaders", "respHeaders")), []string{
		"f0:reqHeaders", "f1:reqHeaders", "f1:respHeaders", "f0:respHeaders",
	})
	if rec.has("f1", "reqBody") || rec.has("f2", "reqBody") {
		t.Errorf("the held body went on after the local reply:\n%s", rec.dump())
	}
}

// InjectData on the request path: a filter swallows the client's body and
// injects its own; the upstream reads exactly the injected bytes.
func TestRequestInjectData(t *testing.T) {
	up := startUpstream(t, "a", nil)
	rec := &recorder{}
	fs := chain(rec, 3)
	fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		if b.Len() > 0 {
			f.h.InjectData(gateway.Request, []byte("["+string(b.Bytes())+"]"), false)
		}
		if eos {
			f.h.InjectData(gateway.Request, []byte("!"), true)
		}
		return gateway.DataStopNoBuffer
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("POST", "/", strings.NewReader("abc"), nil)
	e.finished(fs)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	if seen := up.only(t); string(seen.Body) != "[abc]!" {
		t.Errorf("upstream body %q, want [abc]!", seen.Body)
	}
	if evs := rec.of("f2", "reqBody"); len(evs) == 0 || !evs[len(evs)-1].eos {
		t.Errorf("f2 body calls %v, want the injected data ending with eos", evs)
	}
}

// HeadersStopAllWatermark on the response path: a big upstream body is
// paused at the watermark, not failed, and arrives whole after Continue.
func TestResponseWatermarkBackpressure(t *testing.T) {
	const limit = 64 << 10
	payload := pattern(4 << 20)
	up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, _ seenRequest) {
		_, _ = w.Write(payload)
	})
	rec := &recorder{}
	fs := chain(rec, 3)
	var f2Bytes atomic.Int64
	fs[2].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		f2Bytes.Add(int64(b.Len()))
		return gateway.DataContinue
	}
	atResume := make(chan int64, 1)
	fs[1].hk.respHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f.h.Stream().SetBufferLimit(gateway.Response, limit)
		h1 := f.h
		go func() {
			deadline := time.Now().Add(waitLimit)
			for f2Bytes.Load() < limit && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // room for a broken back-pressure to over-read
			h1.Post(func() {
				atResume <- f2Bytes.Load()
				h1.Continue(gateway.Response)
			})
		}()
		return gateway.HeadersStopAllWatermark
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	r := e.do("GET", "/", nil, nil)
	e.finished(fs)
	if r.status != 200 || !bytes.Equal(r.body, payload) {
		t.Fatalf("client got %d and %d bytes, want 200 and %d", r.status, len(r.body), len(payload))
	}
	if got := recv(t, atResume, "resume"); got < limit || got > limit+64<<10 {
		t.Errorf("the gateway read %d bytes of the response while paused at a %d-byte watermark", got, limit)
	}
}

// Many streams at once through one chain with async resumes and body
// rewrites: every stream keeps its own state (run under -race).
func TestConcurrentStreams(t *testing.T) {
	up := startUpstream(t, "a", func(w http.ResponseWriter, r *http.Request, seen seenRequest) {
		_, _ = w.Write(seen.Body) // echo
	})
	rec := &recorder{}
	fs := chain(rec, 3)
	fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f.h.Stream().SetProperty("id", []byte(h.Value("x-n")))
		h1 := f.h
		go h1.Post(func() { h1.Continue(gateway.Request) })
		return gateway.HeadersStopAllBuffer
	}
	fs[1].hk.reqBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		if !eos {
			return gateway.DataStopAndBuffer
		}
		id, _ := f.h.Stream().Property("id")
		b.Set(append(append([]byte(nil), id...), b.Bytes()...))
		return gateway.DataContinue
	}
	fs[2].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		b.Set(bytes.ToUpper(b.Bytes()))
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.base+"/", strings.NewReader(fmt.Sprintf("-body-%d-", i)))
			req.Header.Set("X-N", fmt.Sprint(i))
			resp, err := e.client().Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := fmt.Sprintf("%d-BODY-%d-", i, i); string(b) != want {
				errs <- fmt.Sprintf("stream %d got %q, want %q", i, b, want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
	eventually(t, "every stream to end", func() bool { return len(rec.of("f2", "destroy")) == n })
}

// A local reply once the response went downstream is impossible: the
// stream is reset instead (spec/host.md §2.6).
func TestLocalReplyAfterResponseStartedResets(t *testing.T) {
	up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		_, _ = io.WriteString(w, "second")
	})
	rec := &recorder{}
	fs := chain(rec, 2)
	fs[1].hk.respBody = func(f *tfilter, b *gateway.Buffer, eos bool) gateway.DataAction {
		f.h.SendLocalReply(500, []byte("too late"), nil, "too_late")
		return gateway.DataContinue
	}
	e := startGateway(t, rec, catchAll(up.addr), fs...)
	resp, err := e.client().Get(e.base + "/")
	if err != nil {
		t.Fatalf("response headers should have arrived: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || resp.StatusCode != 200 || strings.Contains(string(b), "too late") {
		t.Fatalf("client got %d %q (err %v); want the 200 cut off by a reset", resp.StatusCode, b, err)
	}
	e.finished(fs)
}

// A header change that leaves no route answers 404 route_not_found, and the
// filters after the change see no route.
func TestRouteRecomputedToNone(t *testing.T) {
	up := startUpstream(t, "a", nil)
	docs := clusterDoc("ca", up.addr) + routeDoc("route-a", "  match:\n    path:\n      prefix: /a/\n  cluster: ca\n")
	rec := &recorder{}
	fs := chain(rec, 2)
	fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		_ = h.Set(":path", "/nowhere")
		return gateway.HeadersContinue
	}
	var f1Route = "unset"
	fs[1].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
		f1Route = f.h.Stream().RouteName()
		return gateway.HeadersContinue
	}
	e := startGateway(t, rec, docs, fs...)
	r := e.do("GET", "/a/x", nil, nil)
	e.finished(fs)
	if r.status != 404 || parseGatewayError(t, r).Error.Code != gateway.DetailsRouteNotFound {
		t.Errorf("client got %d %s", r.status, r.body)
	}
	if f1Route != "" {
		t.Errorf("f1 saw route %q, want none", f1Route)
	}
	if up.count() != 0 {
		t.Errorf("the upstream was contacted")
	}
}

// 20. A complete request whose filters wait for nothing has its upstream
// answer awaited on the driver goroutine itself; the request timeout and
// announced posts still work there. (Client aborts meanwhile: test 17.)
func TestUpstreamAwaitedOnDriver(t *testing.T) {
	t.Run("request timeout", func(t *testing.T) {
		up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done() // never answers
		})
		rec := &recorder{}
		fs := chain(rec, 1)
		gw := strings.Replace(gatewayDoc, "spec:\n", "spec:\n  timeouts:\n    request: 300ms\n", 1)
		e := startGatewayDoc(t, rec, gw, catchAll(up.addr), fs...)
		start := time.Now()
		res := e.do("POST", "/", strings.NewReader(`{"a":1}`), nil)
		if res.status != http.StatusGatewayTimeout || !strings.Contains(string(res.body), gateway.DetailsRequestTimeout) {
			t.Fatalf("got %d %s, want 504 %s", res.status, res.body, gateway.DetailsRequestTimeout)
		}
		if took := time.Since(start); took > waitLimit/2 {
			t.Errorf("the timeout took %v", took)
		}
		e.finished(fs)
		equalStrings(t, "f0", rec.names(func(ev event) bool { return ev.filter == "f0" }),
			[]string{"f0:reqHeaders", "f0:reqBody", "f0:respHeaders", "f0:respBody", "f0:log", "f0:destroy"})
		if got := e.accessRecords(1)[0]["response_details"]; got != gateway.DetailsRequestTimeout {
			t.Errorf("access log details %v", got)
		}
	})
	t.Run("announced post", func(t *testing.T) {
		// f0 starts an asynchronous call at request headers and lets the
		// request go on; the call completes while the upstream still
		// thinks. Its post must run then, not after the upstream answered.
		release := make(chan struct{})
		up := startRawUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-time.After(waitLimit):
			}
			_, _ = io.WriteString(w, "answer")
		})
		rec := &recorder{}
		fs := chain(rec, 1)
		fs[0].hk.reqHeaders = func(f *tfilter, h *gateway.Headers, eos bool) gateway.HeadersAction {
			f.h.Expect()
			go func() {
				time.Sleep(50 * time.Millisecond)
				f.h.Post(func() {
					f.h.Arrived()
					f.add("posted", 0, false, "")
					close(release)
				})
			}()
			return gateway.HeadersContinue
		}
		e := startGateway(t, rec, catchAll(up.addr), fs...)
		res := e.do("GET", "/", nil, nil)
		if res.status != http.StatusOK || string(res.body) != "answer" {
			t.Fatalf("got %d %s", res.status, res.body)
		}
		e.finished(fs)
		equalStrings(t, "f0", rec.names(func(ev event) bool { return ev.filter == "f0" }),
			[]string{"f0:reqHeaders", "f0:posted", "f0:respHeaders", "f0:respBody", "f0:log", "f0:destroy"})
	})
}
