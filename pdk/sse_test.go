package pdk_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicegw/sluice/pdk"
)

func eventSummary(evs []pdk.SSEEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = fmt.Sprintf("event=%q id=%q retry=%d data=%q", e.Event, e.ID, e.Retry, e.Data)
	}
	return out
}

func TestSSEParser(t *testing.T) {
	stream := "data: {\"a\":1}\n\n" +
		": keep-alive\n\n" +
		"event: message_delta\r\nid: 7\r\ndata: line one\r\ndata:line two\r\nretry: 3000\r\n\r\n" +
		"data\n\n" +
		"\n\n" + // empty events are skipped
		"data: [DONE]" // no blank line: only Flush returns it
	want := []string{
		`event="" id="" retry=-1 data="{\"a\":1}"`,
		`event="" id="" retry=-1 data=""`,
		`event="message_delta" id="7" retry=3000 data="line one\nline two"`,
		`event="" id="" retry=-1 data=""`,
		`event="" id="" retry=-1 data="[DONE]"`,
	}
	var p pdk.SSEParser
	got := append(p.Feed([]byte(stream)), p.Flush()...)
	if s := eventSummary(got); !reflect.DeepEqual(s, want) {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(s, "\n"), strings.Join(want, "\n"))
	}
	if got[1].Data != nil || string(got[1].Raw) != ": keep-alive" {
		t.Errorf("comment event: data %q raw %q", got[1].Data, got[1].Raw)
	}
	if got[3].Data == nil {
		t.Error(`"data" without a colon is a data line with an empty value`)
	}
	if string(got[2].Raw) != "event: message_delta\nid: 7\ndata: line one\ndata:line two\nretry: 3000" {
		t.Errorf("raw is normalised: %q", got[2].Raw)
	}
}

// Events come out the same however the stream is cut, including between
// '\r' and '\n'.
func TestSSEParserSplitsAnywhere(t *testing.T) {
	stream := "data: {\"id\":1}\r\n\r\nevent: e\r\ndata: x\r\n\r\ndata: y\rdata: z\r\r: c\n\ndata: end\n\n"
	var whole pdk.SSEParser
	want := eventSummary(append(whole.Feed([]byte(stream)), whole.Flush()...))
	if len(want) != 5 {
		t.Fatalf("whole stream gives %d events: %q", len(want), want)
	}
	for cut := 0; cut <= len(stream); cut++ {
		var p pdk.SSEParser
		got := append(p.Feed([]byte(stream[:cut])), p.Feed([]byte(stream[cut:]))...)
		got = append(got, p.Flush()...)
		if s := eventSummary(got); !reflect.DeepEqual(s, want) {
			t.Fatalf("cut at %d (%q|%q):\n%s\nwant:\n%s", cut, stream[:cut], stream[cut:], strings.Join(s, "\n"), strings.Join(want, "\n"))
		}
	}
	for seed := uint64(0); seed < 50; seed++ {
		r := rand.New(rand.NewPCG(seed, 1))
		var p pdk.SSEParser
		var got []pdk.SSEEvent
		for rest := stream; rest != ""; {
			n := 1 + r.IntN(len(rest))
			got = append(got, p.Feed([]byte(rest[:n]))...)
			rest = rest[n:]
		}
		got = append(got, p.Flush()...)
		if s := eventSummary(got); !reflect.DeepEqual(s, want) {
			t.Fatalf("seed %d: %q", seed, s)
		}
	}
}

func TestSSEParserBoundsAnUnfinishedEvent(t *testing.T) {
	p := pdk.SSEParser{MaxEventSize: 10}
	if evs := p.Feed([]byte("data: 0123")); len(evs) != 0 {
		t.Fatalf("early events %q", eventSummary(evs))
	}
	evs := p.Feed([]byte("456789"))
	if len(evs) != 1 || string(evs[0].Data) != "0123456789" || len(p.Pending()) != 0 {
		t.Errorf("oversized event: %q, pending %q", eventSummary(evs), p.Pending())
	}
}

// FuzzSSEParser: two-chunk feeding equals one-chunk feeding.
func FuzzSSEParser(f *testing.F) {
	f.Add([]byte("data: a\r\n\r\ndata: b\n\n"), 3)
	f.Add([]byte("event: x\rdata: y\r\r"), 7)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		if cut < 0 || cut > len(b) {
			return
		}
		var one, two pdk.SSEParser
		a := eventSummary(append(one.Feed(b), one.Flush()...))
		c := eventSummary(append(append(two.Feed(b[:cut]), two.Feed(b[cut:])...), two.Flush()...))
		if !reflect.DeepEqual(a, c) {
			t.Fatalf("cut %d of %q:\n%q\n%q", cut, b, a, c)
		}
	})
}

// Appending to an event's Data never changes its Raw.
func TestSSEEventDataDoesNotWriteIntoRaw(t *testing.T) {
	var p pdk.SSEParser
	evs := p.Feed([]byte("data: abc\nid: 1\n\n"))
	if len(evs) != 1 {
		t.Fatalf("events %q", eventSummary(evs))
	}
	_ = append(evs[0].Data, "XYZ"...)
	if got := string(evs[0].Raw); got != "data: abc\nid: 1" {
		t.Errorf("raw %q", got)
	}
}
