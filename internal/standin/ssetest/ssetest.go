// Package ssetest reads server-sent event streams in tests, recording when
// each event arrived. It is test support for the stand-ins and anything that
// checks them; it must never be used in a production request path.
package ssetest

import (
	"bufio"
	"io"
	"strings"
	"time"
)

// Event is one server-sent event.
type Event struct {
	Name    string    // the "event:" field, "" when absent
	Data    string    // the "data:" lines joined by "\n"
	Arrived time.Time // when the blank line ending the event was read
}

// Read reads events until the stream ends. It returns the events read so
// far and the error that ended the stream (nil at a clean EOF). An event cut
// off by the end of the stream is not returned; a stream that ends inside an
// event yields io.ErrUnexpectedEOF.
func Read(r io.Reader) ([]Event, error) {
	br := bufio.NewReader(r)
	var (
		events  []Event
		cur     Event
		data    []string
		pending bool
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				if pending || line != "" {
					return events, io.ErrUnexpectedEOF
				}
				return events, nil
			}
			return events, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if pending {
				cur.Data = strings.Join(data, "\n")
				cur.Arrived = time.Now()
				events = append(events, cur)
			}
			cur, data, pending = Event{}, nil, false
			continue
		}
		pending = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			cur.Name = value
		case "data":
			data = append(data, value)
		}
	}
}
