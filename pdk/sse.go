package pdk

import (
	"bytes"
	"strconv"
)

// This file is a Server-Sent Events parser for streamed LLM responses:
// network chunks do not respect event boundaries, so it keeps the partial
// event between chunks.

// SSEEvent is one server-sent event.
type SSEEvent struct {
	// Event is the event field ("" when absent; SSE's default type is
	// "message").
	Event string
	// ID is the id field.
	ID string
	// Data is the data lines joined with "\n" (nil when the event had no
	// data line, e.g. a ": keep-alive" comment).
	Data []byte
	// Retry is the retry field in milliseconds, -1 when absent.
	Retry int
	// Raw is the event's text with line endings normalised to "\n" and
	// without the blank line that ended it; write Raw + "\n\n" to pass the
	// event on unchanged.
	Raw []byte
}

// DefaultMaxSSEEvent bounds an event's size in an SSEParser whose
// MaxEventSize is 0.
const DefaultMaxSSEEvent = 16 << 20

// SSEParser splits a text/event-stream into events across chunk
// boundaries. "\r\n" and "\r" line endings are normalised to "\n", also when
// split between chunks. The zero value is ready to use; use one parser per
// response.
type SSEParser struct {
	// MaxEventSize bounds the bytes kept for an unfinished event; past it
	// the partial event is returned as is (0: DefaultMaxSSEEvent).
	MaxEventSize int

	buf       []byte
	pendingCR bool
}

// Feed adds a chunk and returns the events it completed, in order.
func (p *SSEParser) Feed(chunk []byte) []SSEEvent {
	p.appendNormalised(chunk)
	var events []SSEEvent
	start := 0
	for {
		i := bytes.Index(p.buf[start:], []byte("\n\n"))
		if i < 0 {
			break
		}
		if ev, ok := parseSSEEvent(p.buf[start : start+i]); ok {
			events = append(events, ev)
		}
		start += i + 2
	}
	p.buf = append(p.buf[:0], p.buf[start:]...)
	max := p.MaxEventSize
	if max <= 0 {
		max = DefaultMaxSSEEvent
	}
	if len(p.buf) > max {
		events = append(events, p.Flush()...)
	}
	return events
}

// Flush returns what is left as a final event (a stream that ended
// without a blank line) and empties the parser. Call it at end of stream.
func (p *SSEParser) Flush() []SSEEvent {
	rest := bytes.TrimRight(p.buf, "\n")
	p.buf = p.buf[:0]
	p.pendingCR = false
	if ev, ok := parseSSEEvent(rest); ok {
		return []SSEEvent{ev}
	}
	return nil
}

// Pending returns the bytes of the unfinished event.
func (p *SSEParser) Pending() []byte { return p.buf }

func (p *SSEParser) appendNormalised(chunk []byte) {
	if p.pendingCR && len(chunk) > 0 && chunk[0] == '\n' {
		chunk = chunk[1:] // the '\r' before it already became '\n'
	}
	p.pendingCR = false
	if bytes.IndexByte(chunk, '\r') < 0 {
		p.buf = append(p.buf, chunk...)
		return
	}
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if c != '\r' {
			p.buf = append(p.buf, c)
			continue
		}
		p.buf = append(p.buf, '\n')
		switch {
		case i+1 < len(chunk) && chunk[i+1] == '\n':
			i++
		case i+1 == len(chunk):
			p.pendingCR = true
		}
	}
}

// parseSSEEvent reads one event's lines. ok is false for an empty event.
func parseSSEEvent(text []byte) (SSEEvent, bool) {
	if len(text) == 0 {
		return SSEEvent{}, false
	}
	ev := SSEEvent{Retry: -1, Raw: append([]byte(nil), text...)}
	for line := range bytes.SplitSeq(ev.Raw, []byte("\n")) {
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if ev.Data != nil {
				ev.Data = append(ev.Data, '\n')
			} else {
				ev.Data = make([]byte, 0, len(value))
			}
			ev.Data = append(ev.Data, value...)
		case "event":
			ev.Event = string(value)
		case "id":
			ev.ID = string(value)
		case "retry":
			if n, err := strconv.Atoi(string(value)); err == nil && n >= 0 {
				ev.Retry = n
			}
		}
	}
	return ev, true
}
