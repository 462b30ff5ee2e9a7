package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func fullRecord() *Record {
	return &Record{
		Time:             time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("CET", 3600)),
		Listener:         "public",
		Method:           "POST",
		Authority:        "api.example.com",
		Path:             "/v1/chat/completions?stream=true",
		Protocol:         "HTTP/1.1",
		ClientAddr:       "192.0.2.7:51234",
		UserAgent:        "openai-python/1.40.0",
		Status:           200,
		Route:            "chat",
		Cluster:          "openai",
		UpstreamHost:     "10.0.0.5:443",
		Duration:         12345678 * time.Microsecond,
		UpstreamDuration: 12300*time.Millisecond + 1500*time.Nanosecond,
		TimeToFirstByte:  250 * time.Millisecond,
		BytesIn:          812,
		BytesOut:         20480,
		RequestID:        "5f0c6b8e-6a43-4f11-9f7b-3c1f8f0a2b11",
		ResponseDetails:  "via_upstream",
		AILog:            json.RawMessage("{\"model\": \"gpt-4o\",\n  \"input_token\": 12, \"output_token\": 345, \"note\": \"a b\\tc\"}"),
		TraceID:          "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

func writeOne(t *testing.T, r *Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	NewAccessLogWriter(&buf).Write(r)
	line := buf.Bytes()
	if n := bytes.Count(line, []byte{'\n'}); n != 1 || line[len(line)-1] != '\n' {
		t.Fatalf("want exactly one line ending in \\n, got %d newlines: %q", n, line)
	}
	if !json.Valid(line) {
		t.Fatalf("line is not valid JSON: %q", line)
	}
	if !utf8.Valid(line) {
		t.Fatalf("line is not valid UTF-8: %q", line)
	}
	return line
}

func TestAccessLogGolden(t *testing.T) {
	line := writeOne(t, fullRecord())
	golden := filepath.Join("testdata", "accesslog.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, line, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(line, want) {
		t.Errorf("access log line differs from %s (go test -update rewrites it)\n got: %s\nwant: %s", golden, line, want)
	}
}

func TestAccessLogFieldsAndOrder(t *testing.T) {
	line := writeOne(t, fullRecord())

	// Keys in the documented order.
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var keys []string
	got := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		key := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
		got[key] = v
	}
	wantKeys := "time listener method authority path protocol client_addr user_agent status route cluster upstream_host " +
		"duration_ms upstream_duration_ms ttfb_ms bytes_in bytes_out request_id response_details ai_log trace_id"
	if strings.Join(keys, " ") != wantKeys {
		t.Errorf("keys\n got: %s\nwant: %s", strings.Join(keys, " "), wantKeys)
	}

	tests := []struct {
		key  string
		want any
	}{
		{"time", "2026-03-14T14:09:26.535897932Z"},
		{"listener", "public"},
		{"method", "POST"},
		{"authority", "api.example.com"},
		{"path", "/v1/chat/completions?stream=true"},
		{"protocol", "HTTP/1.1"},
		{"client_addr", "192.0.2.7:51234"},
		{"user_agent", "openai-python/1.40.0"},
		{"status", json.Number("200")},
		{"route", "chat"},
		{"cluster", "openai"},
		{"upstream_host", "10.0.0.5:443"},
		{"duration_ms", json.Number("12345.678")},
		{"upstream_duration_ms", json.Number("12300.001")},
		{"ttfb_ms", json.Number("250.000")},
		{"bytes_in", json.Number("812")},
		{"bytes_out", json.Number("20480")},
		{"request_id", "5f0c6b8e-6a43-4f11-9f7b-3c1f8f0a2b11"},
		{"response_details", "via_upstream"},
		{"trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got[tt.key] != tt.want {
				t.Errorf("%s = %#v, want %#v", tt.key, got[tt.key], tt.want)
			}
		})
	}
	ai, ok := got["ai_log"].(map[string]any)
	if !ok {
		t.Fatalf("ai_log = %#v, want an embedded object", got["ai_log"])
	}
	if ai["model"] != "gpt-4o" || ai["note"] != "a b\tc" || ai["output_token"] != json.Number("345") {
		t.Errorf("ai_log = %#v", ai)
	}
}

func TestAccessLogAILog(t *testing.T) {
	tests := []struct {
		name    string
		ailog   json.RawMessage
		present bool
		want    string // the raw JSON of the ai_log field
	}{
		{name: "nil is omitted", ailog: nil},
		{name: "empty is omitted", ailog: json.RawMessage{}},
		{name: "compact object kept as is", ailog: json.RawMessage(`{"a":1,"b":"x y"}`), present: true, want: `{"a":1,"b":"x y"}`},
		{name: "whitespace and newlines removed outside strings", ailog: json.RawMessage("{\n\t\"a\" : [ 1 , 2 ],\r\n \"s\": \"keep  \\\" this \"\n}\n"), present: true, want: `{"a":[1,2],"s":"keep  \" this "}`},
		{name: "escaped backslash before quote", ailog: json.RawMessage(`{"p": "c:\\" , "q": 1}`), present: true, want: `{"p":"c:\\","q":1}`},
		{name: "invalid JSON becomes a string", ailog: json.RawMessage(`{"a":`), present: true, want: `"{\"a\":"`},
		{name: "plain text becomes a string", ailog: json.RawMessage("model=gpt\nx"), present: true, want: `"model=gpt\nx"`},
		{name: "DEL, C1 and U+2028 inside strings escaped", ailog: json.RawMessage("{\"q\":\"a\x7fb\u009bc\u2028d\u2029é\"}"), present: true, want: `{"q":"a\u007fb\u009bc\u2028d\u2029é"}`},
		{name: "invalid UTF-8 inside valid JSON becomes a string", ailog: json.RawMessage("{\"a\":\"\xff\"}"), present: true, want: `"{\"a\":\"\ufffd\"}"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := writeOne(t, &Record{AILog: tt.ailog})
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(line, &fields); err != nil {
				t.Fatal(err)
			}
			got, ok := fields["ai_log"]
			if ok != tt.present {
				t.Fatalf("ai_log present = %v, want %v: %s", ok, tt.present, line)
			}
			if ok && string(got) != tt.want {
				t.Errorf("ai_log = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAccessLogEscapesNastyStrings(t *testing.T) {
	var allControls strings.Builder
	for c := range 0x20 {
		allControls.WriteByte(byte(c))
	}
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"quotes and backslashes", `a"b\c\"d\\`},
		{"all C0 controls", allControls.String()},
		{"newline injection", "/x\n{\"forged\":true}\r\n"},
		{"DEL and C1 controls", "a\x7fb\u0085c\u009b[31m"},
		{"ANSI escape", "\x1b[2J\x1b[31mred"},
		{"invalid UTF-8 bytes", "a\xffb\xfe\xc0\xafc"},
		{"truncated multibyte", "caf\xc3"},
		{"UTF-8 encoded surrogate", "\xed\xa0\x80x"},
		{"line and paragraph separators", "a\u2028b\u2029c"},
		{"emoji and CJK", "héllo 世界 🚀"},
		{"NUL only", "\x00"},
		{"long mixed", strings.Repeat("ok\"\x01\xff世", 500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Path: tt.in, UserAgent: tt.in, Authority: tt.in, RequestID: tt.in, AILog: json.RawMessage(tt.in)}
			line := writeOne(t, r)
			if bytes.ContainsAny(line[:len(line)-1], "\n\r\x1b\x7f\u0085\u009b\u2028\u2029") {
				t.Errorf("raw control character in line: %q", line)
			}
			var got struct {
				Path      string `json:"path"`
				UserAgent string `json:"user_agent"`
			}
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			// Each invalid byte becomes one U+FFFD, as ranging over a string does.
			want := string([]rune(tt.in))
			if got.Path != want || got.UserAgent != want {
				t.Errorf("round trip\n got: %q\nwant: %q", got.Path, want)
			}
		})
	}
}

func TestAppendMillis(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"zero", 0, "0.000"},
		{"sub-microsecond truncates", 999, "0.000"},
		{"one microsecond", time.Microsecond, "0.001"},
		{"one and a half ms", 1500 * time.Microsecond, "1.500"},
		{"nanoseconds dropped", 1234567891, "1234.567"},
		{"five minutes", 5 * time.Minute, "300000.000"},
		{"negative", -1500 * time.Microsecond, "-1.500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendMillis(nil, tt.d)); got != tt.want {
				t.Errorf("appendMillis(%v) = %s, want %s", tt.d, got, tt.want)
			}
		})
	}
}

func TestAccessLogZeroTimeIsWriteTime(t *testing.T) {
	before := time.Now()
	line := writeOne(t, &Record{})
	after := time.Now()
	var got struct{ Time time.Time }
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if got.Time.Before(before.Truncate(time.Microsecond)) || got.Time.After(after) {
		t.Errorf("time %v not within [%v, %v]", got.Time, before, after)
	}
}

// callRecorder records every Write call separately.
type callRecorder struct {
	mu    sync.Mutex
	calls [][]byte
}

func (c *callRecorder) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, bytes.Clone(p))
	return len(p), nil
}

func TestAccessLogOneWritePerLineUnderConcurrency(t *testing.T) {
	const goroutines, perG = 16, 200
	rec := &callRecorder{}
	al := NewAccessLogWriter(rec)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			r := fullRecord()
			r.RequestID = strings.Repeat("x", g*100) // lines of varying length
			for range perG {
				al.Write(r)
			}
		})
	}
	wg.Wait()
	if len(rec.calls) != goroutines*perG {
		t.Fatalf("%d Write calls, want %d", len(rec.calls), goroutines*perG)
	}
	for i, c := range rec.calls {
		if bytes.Count(c, []byte{'\n'}) != 1 || c[len(c)-1] != '\n' || !json.Valid(c) {
			t.Fatalf("call %d is not exactly one JSON line: %q", i, c)
		}
	}
}

func TestOpenAccessLog(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		path     string
		wantW    io.Writer
		discards bool
		wantErr  string
	}{
		{name: "stdout", path: "stdout", wantW: os.Stdout},
		{name: "empty means stdout", path: "", wantW: os.Stdout},
		{name: "stderr", path: "stderr", wantW: os.Stderr},
		{name: "off", path: "off", discards: true},
		{name: "file", path: filepath.Join(dir, "access.log")},
		{name: "missing directory", path: filepath.Join(dir, "nope", "access.log"), wantErr: filepath.Join(dir, "nope", "access.log")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			al, err := OpenAccessLog(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer al.Close()
			switch {
			case tt.discards:
				if al.w != nil {
					t.Errorf("off: writer %v, want none", al.w)
				}
				al.Write(fullRecord()) // must not panic
			case tt.wantW != nil:
				if al.w != tt.wantW {
					t.Errorf("writer %v, want %v", al.w, tt.wantW)
				}
			}
		})
	}
}

func TestAccessLogFileAppendsAndCloses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte(`{"existing":true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	al, err := OpenAccessLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				al.Write(fullRecord())
			}
		})
	}
	wg.Wait()
	if err := al.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := al.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	al.Write(fullRecord()) // after Close: discarded, no panic

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		if !json.Valid(sc.Bytes()) {
			t.Fatalf("line %d is not JSON: %q", n+1, sc.Bytes())
		}
		n++
	}
	if n != 1+8*50 {
		t.Errorf("%d lines, want %d (the existing one plus 400 appended)", n, 1+8*50)
	}
}

type closeTracker struct {
	bytes.Buffer
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestAccessLogCloseLeavesForeignWritersOpen(t *testing.T) {
	w := &closeTracker{}
	al := NewAccessLogWriter(w)
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}
	if w.closed {
		t.Error("Close closed a writer it did not open")
	}
	al.Write(fullRecord())
	if w.Len() != 0 {
		t.Errorf("write after Close reached the writer: %q", w.String())
	}
}

func TestAccessLogNilSafe(t *testing.T) {
	var al *AccessLog
	al.Write(fullRecord())
	if err := al.Close(); err != nil {
		t.Errorf("nil Close = %v", err)
	}
	if n := al.WriteErrors(); n != 0 {
		t.Errorf("nil WriteErrors = %d", n)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestAccessLogCountsWriteErrors(t *testing.T) {
	al := NewAccessLogWriter(failingWriter{})
	al.Write(fullRecord())
	al.Write(fullRecord())
	if n := al.WriteErrors(); n != 2 {
		t.Errorf("WriteErrors = %d, want 2", n)
	}
}

func FuzzRecordJSON(f *testing.F) {
	f.Add("/v1/chat", "curl/8", []byte(`{"model":"x"}`))
	f.Add("\x00\xff\"\\\u2028", "\x1b[31m", []byte("{\"a\":\"\xff\"}"))
	f.Add("", "", []byte(" \n{ \"a\" : [ ] }\n "))
	f.Add("\u0085", "\u2029", []byte("[\"\x7f\u009b\u2028\", 1]"))
	f.Fuzz(func(t *testing.T, path, ua string, ailog []byte) {
		b := (&Record{Path: path, UserAgent: ua, AILog: ailog}).AppendJSON(nil)
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("invalid output: %q", b)
		}
		if bytes.ContainsAny(b, "\n\r\x1b\x7f\u0085\u009b\u2028\u2029") {
			t.Fatalf("raw control character in output: %q", b)
		}
		var got struct {
			Path      string `json:"path"`
			UserAgent string `json:"user_agent"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.Path != string([]rune(path)) || got.UserAgent != string([]rune(ua)) {
			t.Fatalf("round trip: got %q %q from %q %q", got.Path, got.UserAgent, path, ua)
		}
	})
}

func BenchmarkAccessLogWrite(b *testing.B) {
	cases := []struct {
		name string
		rec  *Record
	}{
		{"typical", func() *Record { r := fullRecord(); r.AILog = nil; return r }()},
		{"with_ai_log", fullRecord()},
		{"escaping", func() *Record {
			r := fullRecord()
			r.Path = "/v1/chat?q=\"quoted\"\t\x01\xff"
			r.UserAgent = "Mozilla/5.0 (X11; Linux x86_64) \u2028 café"
			return r
		}()},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			al := NewAccessLogWriter(io.Discard)
			b.ReportAllocs()
			for b.Loop() {
				al.Write(c.rec)
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		al := NewAccessLogWriter(io.Discard)
		r := fullRecord()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				al.Write(r)
			}
		})
	})
}
