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
//
// A chunk is copied into the parser only for the part that is not a
// complete event (or when it has '\r' to normalise), and the search for
// the blank line ending an event resumes where the previous chunk's search
// stopped, so a long event arriving in many chunks is scanned once.
type SSEParser struct {
	// MaxEventSize bounds the bytes kept for an unfinished event; past it
	// the partial event is returned as is (0: DefaultMaxSSEEvent).
	MaxEventSize int

	buf       []byte
	pendingCR bool
	// scanned: buf[:scanned] holds no "\n\n".
	scanned int
}

// Feed adds a chunk and returns the events it completed, in order. The
// events own their bytes (Data shares Raw's array when the event has one
// data line).
func (p *SSEParser) Feed(chunk []byte) []SSEEvent {
	var events []SSEEvent
	p.feedRaw(chunk, func(text []byte) {
		events = append(events, parseSSEEvent(bytes.Clone(text)))
	})
	return events
}

// Flush returns what is left as a final event (a stream that ended
// without a blank line) and empties the parser. Call it at end of stream.
func (p *SSEParser) Flush() []SSEEvent {
	var events []SSEEvent
	p.flushRaw(func(text []byte) {
		events = []SSEEvent{parseSSEEvent(bytes.Clone(text))}
	})
	return events
}

// Pending returns the bytes of the unfinished event.
func (p *SSEParser) Pending() []byte { return p.buf }

// feedRaw adds a chunk and calls fn with the normalised text of every
// non-empty event it completes, in order. The text is in the parser's
// buffer or in chunk: it is valid only during the call.
func (p *SSEParser) feedRaw(chunk []byte, fn func(text []byte)) {
	src, from := chunk, 0
	inPlace := len(p.buf) == 0 && !p.pendingCR && bytes.IndexByte(chunk, '\r') < 0
	if !inPlace { // else read the events in place and keep only the rest
		from = p.scanned
		p.appendNormalised(chunk)
		src = p.buf
	}
	start := 0
	for {
		i := bytes.Index(src[from:], eventEnd)
		if i < 0 {
			break
		}
		end := from + i
		if end > start {
			fn(src[start:end])
		}
		start = end + 2
		from = start
	}
	rest := src[start:]
	switch {
	case len(rest) == 0:
		p.buf = p.buf[:0]
	case inPlace || start > 0:
		p.buf = append(p.buf[:0], rest...)
	}
	// A "\n\n" may start at the last byte scanned.
	p.scanned = max(len(p.buf)-1, 0)
	limit := p.MaxEventSize
	if limit <= 0 {
		limit = DefaultMaxSSEEvent
	}
	if len(p.buf) > limit {
		p.flushRaw(fn)
	}
}

var eventEnd = []byte("\n\n")

// flushRaw calls fn with what is left (trailing newlines removed) unless
// it is empty, and empties the parser.
func (p *SSEParser) flushRaw(fn func(text []byte)) {
	rest := bytes.TrimRight(p.buf, "\n")
	p.pendingCR = false
	p.scanned = 0
	if len(rest) > 0 {
		fn(rest)
	}
	p.buf = p.buf[:0]
}

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

// sseData returns the data of an event's text without parsing its other
// fields: the data lines joined with "\n" (a single line is returned in
// place), or text itself when there is no data line (as a caller reading
// Data, or Raw when Data is nil, would).
func sseData(text []byte) []byte {
	var data []byte
	found := false
	for rest := text; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		value, ok := dataLine(line)
		if !ok {
			continue
		}
		if !found {
			data, found = value[:len(value):len(value)], true
			continue
		}
		data = append(data, '\n')
		data = append(data, value...)
	}
	if !found {
		return text
	}
	return data
}

// dataLine returns the value of a "data" line.
func dataLine(line []byte) ([]byte, bool) {
	if len(line) < 4 || string(line[:4]) != "data" {
		return nil, false
	}
	switch {
	case len(line) == 4:
		return line[4:], true
	case line[4] != ':':
		return nil, false
	case len(line) > 5 && line[5] == ' ':
		return line[6:], true
	}
	return line[5:], true
}

// parseSSEEvent reads one event's lines; raw becomes the event's Raw.
func parseSSEEvent(raw []byte) SSEEvent {
	ev := SSEEvent{Retry: -1, Raw: raw}
	for line := range bytes.SplitSeq(raw, []byte("\n")) {
		if len(line) == 0 || line[0] == ':' {
			continue
		}
		field, value := line, []byte{}
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if ev.Data == nil {
				// Capacity ends at the value: appending to Data
				// never writes into Raw.
				ev.Data = value[:len(value):len(value)]
				continue
			}
			ev.Data = append(ev.Data, '\n')
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
	return ev
}
