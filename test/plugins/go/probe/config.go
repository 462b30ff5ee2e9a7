package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// config is the probe's plugin configuration (README.md, "Configuration").
type config struct {
	// Name prefixes log lines: "probe[<name>]: …". Optional.
	Name string `json:"name"`
	// On maps a callback name to what the probe does in it.
	On map[string]*callback `json:"on"`
}

// Callback names accepted under "on".
var callbackNames = map[string]bool{
	"configure": true, "request_headers": true, "request_body": true, "request_trailers": true,
	"response_headers": true, "response_body": true, "response_trailers": true,
	"log": true, "done": true, "http_call_response": true, "redis_call_response": true,
	"tick": true, "queue_ready": true,
}

// callback is what runs in one callback: steps, then the return value.
// Written either as {"steps": [...], "action": ..., "result": ...} or as a
// bare list of steps.
type callback struct {
	Steps  []*step `json:"steps"`
	Action *action `json:"action"`
	Result *bool   `json:"result"`
}

func (c *callback) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		return strictDecode(b, &c.Steps)
	}
	type plain struct {
		Steps  []*step `json:"steps"`
		Action *action `json:"action"`
		Result *bool   `json:"result"`
	}
	var p plain
	if err := strictDecode(b, &p); err != nil {
		return err
	}
	c.Steps, c.Action, c.Result = p.Steps, p.Action, p.Result
	return nil
}

// action is the value a header/body/trailer callback returns: a raw number,
// a name, or {"eos": N, "not_eos": M} chosen by the end_of_stream flag.
type action struct {
	eos, notEOS uint32
}

var actionNames = map[string]action{
	"continue":                {0, 0},
	"pause":                   {1, 1},
	"stop_iteration":          {1, 1},
	"continue_and_end_stream": {2, 2},
	"stop_all_buffer":         {3, 3},
	"stop_all_watermark":      {4, 4},
	"stop_buffer":             {1, 1},
	"stop_watermark":          {2, 2},
	"stop_no_buffer":          {3, 3},
	"pause_until_eos":         {0, 1},
	"continue_on_eos":         {0, 3},
}

func (a *action) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, ok := actionNames[s]
		if !ok {
			return fmt.Errorf("unknown action %q (use a number, {\"eos\":N,\"not_eos\":M} or one of %s)", s, sortedKeys(actionNames))
		}
		*a = v
		return nil
	case len(b) > 0 && b[0] == '{':
		var o struct {
			EOS    *uint32 `json:"eos"`
			NotEOS *uint32 `json:"not_eos"`
		}
		if err := strictDecode(b, &o); err != nil {
			return err
		}
		if o.EOS == nil || o.NotEOS == nil {
			return errors.New(`action object needs both "eos" and "not_eos"`)
		}
		*a = action{*o.EOS, *o.NotEOS}
		return nil
	default:
		var n uint32
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("action: %v", err)
		}
		*a = action{n, n}
		return nil
	}
}

// step is one operation. All fields of all operations share this struct;
// which ones an operation reads is listed in README.md. Unknown fields are
// an error.
type step struct {
	Op   string `json:"op"`
	When string `json:"when"`

	// Outputs.
	To     string `json:"to"`
	Header string `json:"header"` // shorthand for "to": "header:<name>"
	Status string `json:"status"`
	CasTo  string `json:"cas_to"`
	MsgTo  string `json:"msg_to"`

	Encoding string `json:"encoding"`

	// Targets.
	Map    *enumVal `json:"map"`
	Buffer *enumVal `json:"buffer"`
	Stream *enumVal `json:"stream"`
	Level  *enumVal `json:"level"`
	Type   *enumVal `json:"type"`

	Key      string    `json:"key"`
	Value    string    `json:"value"`
	ValueHex string    `json:"value_hex"`
	Old      string    `json:"old"`
	New      string    `json:"new"`
	Pairs    *pairsVal `json:"pairs"`
	Headers  *pairsVal `json:"headers"`
	Trailers *pairsVal `json:"trailers"`
	Path     pathVal   `json:"path"`
	Name     string    `json:"name"`
	Arg      string    `json:"arg"`

	Start *uint32 `json:"start"`
	Size  *uint32 `json:"size"`
	Max   *uint32 `json:"max"`

	Code       *uint32 `json:"code"`
	Details    string  `json:"details"`
	Body       string  `json:"body"`
	BodyHex    string  `json:"body_hex"`
	GrpcStatus *int32  `json:"grpc_status"`

	Cluster   string   `json:"cluster"`
	TimeoutMs *uint32  `json:"timeout_ms"`
	Then      []*step  `json:"then"`
	Command   []string `json:"command"`
	Resp      string   `json:"resp"`
	Username  string   `json:"username"`
	Password  string   `json:"password"`

	Cas     *uint32 `json:"cas"`
	CasVar  string  `json:"cas_var"`
	By      *int64  `json:"by"`
	Retries *int    `json:"retries"`

	ID    *uint32 `json:"id"`
	Delta *int64  `json:"delta"`
	VMID  string  `json:"vm_id"`

	EndStream bool   `json:"end_stream"`
	Args      string `json:"args"`
	ArgsHex   string `json:"args_hex"`

	Message string  `json:"message"`
	Number  *int64  `json:"number"`
	Ms      *uint32 `json:"ms"`
	MiB     *uint32 `json:"mib"`
	Bytes   *uint32 `json:"bytes"`
	File    string  `json:"file"`
	Count   *uint32 `json:"count"`
	Steps   []*step `json:"steps"`

	// Resolved at validation time.
	mapType, bufType, streamType, level, metricType uint32
	hasMap, hasBuffer                               bool
	to, status, casTo, msgTo                        sink
	value, body, args                               []byte
	whenKind                                        int
	whenN                                           int
}

// enumVal is a field given as a name or a raw number.
type enumVal struct {
	name  string
	num   uint32
	isNum bool
}

func (e *enumVal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &e.name); err != nil {
			return err
		}
		if n, err := strconv.ParseUint(e.name, 10, 32); err == nil {
			e.num, e.isNum = uint32(n), true
		}
		return nil
	}
	if err := json.Unmarshal(b, &e.num); err != nil {
		return fmt.Errorf("want a name or a non-negative number: %v", err)
	}
	e.isNum = true
	return nil
}

func (e *enumVal) resolve(kind string, names map[string]uint32) (uint32, error) {
	if e.isNum {
		return e.num, nil
	}
	v, ok := names[e.name]
	if !ok {
		return 0, fmt.Errorf("unknown %s %q (use a number or one of %s)", kind, e.name, sortedKeys(names))
	}
	return v, nil
}

// pathVal is a property path: a list of segments, or one string that is a
// single segment (it is not split on dots).
type pathVal []string

func (p *pathVal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = pathVal{s}
		return nil
	}
	var segs []string
	if err := json.Unmarshal(b, &segs); err != nil {
		return fmt.Errorf("path: want a string or a list of strings: %v", err)
	}
	*p = segs
	return nil
}

// pairsVal is a header list: [["k","v"], ...] (order and repeats kept) or
// {"k": "v", ...} (sorted by key).
type pairsVal [][2]string

func (p *pairsVal) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(b, &m); err != nil {
			return err
		}
		out := make(pairsVal, 0, len(m))
		for _, k := range keysOf(m) {
			out = append(out, [2]string{k, m[k]})
		}
		*p = out
		return nil
	}
	var list [][]string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("headers: want [[\"k\",\"v\"],...] or {\"k\":\"v\"}: %v", err)
	}
	out := make(pairsVal, 0, len(list))
	for i, kv := range list {
		if len(kv) != 2 {
			return fmt.Errorf("headers[%d]: want [\"key\", \"value\"], got %d strings", i, len(kv))
		}
		out = append(out, [2]string{kv[0], kv[1]})
	}
	*p = out
	return nil
}

func (p *pairsVal) list() [][2]string {
	if p == nil {
		return nil
	}
	return *p
}

var mapNames = map[string]uint32{
	"request_headers": 0, "request_trailers": 1, "response_headers": 2, "response_trailers": 3,
	"grpc_receive_initial_metadata": 4, "grpc_receive_trailing_metadata": 5,
	"http_call_response_headers": 6, "http_call_response_trailers": 7,
}

var bufferNames = map[string]uint32{
	"request_body": 0, "response_body": 1, "downstream_data": 2, "upstream_data": 3,
	"http_call_response_body": 4, "grpc_receive_buffer": 5, "vm_configuration": 6,
	"plugin_configuration": 7, "call_data": 8, "redis_call_response": 9,
}

var streamNames = map[string]uint32{"request": 0, "response": 1, "downstream": 2, "upstream": 3}

var levelNames = map[string]uint32{"trace": 0, "debug": 1, "info": 2, "warn": 3, "error": 4, "critical": 5}

var metricTypeNames = map[string]uint32{"counter": 0, "gauge": 1, "histogram": 2}

// encodings are the ways a byte value is written to a sink.
var encodings = map[string]bool{
	"": true, "raw": true, "hex": true, "base64": true, "len": true, "pairs": true,
	"u64le": true, "i64le": true, "u32le": true, "f64le": true, "bool": true,
}

const (
	whenAlways = iota
	whenEOS
	whenNotEOS
	whenCall
	whenStream
)

// sink is where a step writes a value.
type sink struct {
	kind    string // "", "header", "log", "var", "property", "shared"
	name    string
	mapType uint32
	hasMap  bool
}

func parseSink(s string) (sink, error) {
	if s == "" {
		return sink{}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return sink{}, fmt.Errorf("output %q: want <kind>:<name> with kind header, log, var, property or shared", s)
	}
	switch kind {
	case "header":
		// header:<map>:<key> names the map; a bare header:<key> uses the
		// callback's default map. Keys such as ":path" keep their colon.
		if m, key, ok := strings.Cut(rest, ":"); ok && m != "" && key != "" {
			if v, ok := mapNames[m]; ok {
				return sink{kind: kind, name: key, mapType: v, hasMap: true}, nil
			}
			if n, err := strconv.ParseUint(m, 10, 32); err == nil {
				return sink{kind: kind, name: key, mapType: uint32(n), hasMap: true}, nil
			}
		}
		return sink{kind: kind, name: rest}, nil
	case "log", "var", "property", "shared":
		return sink{kind: kind, name: rest}, nil
	}
	return sink{}, fmt.Errorf("output %q: unknown kind %q (header, log, var, property, shared)", s, kind)
}

// parseConfig decodes and validates a configuration; every problem is
// reported, one per line.
func parseConfig(data []byte) (*config, error) {
	cfg := &config{}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	if err := strictDecode(data, cfg); err != nil {
		return nil, fmt.Errorf("probe configuration: %w", err)
	}
	var problems []string
	for _, name := range keysOf(cfg.On) {
		if !callbackNames[name] {
			problems = append(problems, fmt.Sprintf("on.%s: unknown callback (one of %s)", name, sortedKeys(callbackNames)))
			continue
		}
		cb := cfg.On[name]
		if cb == nil {
			continue
		}
		if cb.Action != nil && !hasAction(name) {
			problems = append(problems, fmt.Sprintf("on.%s.action: this callback returns no action", name))
		}
		if cb.Result != nil && name != "configure" && name != "done" {
			problems = append(problems, fmt.Sprintf("on.%s.result: only configure and done return a result", name))
		}
		problems = append(problems, validateSteps("on."+name+".steps", cb.Steps)...)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("probe configuration:\n  %s", strings.Join(problems, "\n  "))
	}
	return cfg, nil
}

func hasAction(cb string) bool {
	return strings.HasPrefix(cb, "request_") || strings.HasPrefix(cb, "response_")
}

func validateSteps(where string, steps []*step) []string {
	var problems []string
	for i, s := range steps {
		at := fmt.Sprintf("%s[%d]", where, i)
		if s == nil {
			problems = append(problems, at+": empty step")
			continue
		}
		for _, err := range s.validate() {
			problems = append(problems, fmt.Sprintf("%s (%s): %v", at, s.Op, err))
		}
		problems = append(problems, validateSteps(at+".then", s.Then)...)
		problems = append(problems, validateSteps(at+".steps", s.Steps)...)
	}
	return problems
}

func (s *step) validate() []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	spec, ok := ops[s.Op]
	if !ok {
		fail("unknown op %q", s.Op)
		return errs
	}
	if s.Header != "" {
		if s.To != "" {
			fail(`"header" and "to" both set; use one`)
		}
		s.To = "header:" + s.Header
	}
	var err error
	for _, o := range []struct {
		src string
		dst *sink
	}{{s.To, &s.to}, {s.Status, &s.status}, {s.CasTo, &s.casTo}, {s.MsgTo, &s.msgTo}} {
		if *o.dst, err = parseSink(o.src); err != nil {
			fail("%v", err)
		}
	}
	if !encodings[s.Encoding] {
		fail("unknown encoding %q (one of %s)", s.Encoding, sortedKeys(encodings))
	}
	if s.Map != nil {
		if s.mapType, err = s.Map.resolve("map", mapNames); err != nil {
			fail("%v", err)
		}
		s.hasMap = true
	}
	if s.Buffer != nil {
		if s.bufType, err = s.Buffer.resolve("buffer", bufferNames); err != nil {
			fail("%v", err)
		}
		s.hasBuffer = true
	}
	if s.Stream != nil {
		if s.streamType, err = s.Stream.resolve("stream", streamNames); err != nil {
			fail("%v", err)
		}
	}
	s.level = 2
	if s.Level != nil {
		if s.level, err = s.Level.resolve("level", levelNames); err != nil {
			fail("%v", err)
		}
	}
	if s.Type != nil {
		if s.metricType, err = s.Type.resolve("metric type", metricTypeNames); err != nil {
			fail("%v", err)
		}
	}
	if s.value, err = textOrHex(s.Value, s.ValueHex, "value"); err != nil {
		fail("%v", err)
	}
	if s.body, err = textOrHex(s.Body, s.BodyHex, "body"); err != nil {
		fail("%v", err)
	}
	if s.args, err = textOrHex(s.Args, s.ArgsHex, "args"); err != nil {
		fail("%v", err)
	}
	switch {
	case s.When == "":
	case s.When == "eos":
		s.whenKind = whenEOS
	case s.When == "not_eos":
		s.whenKind = whenNotEOS
	case s.When == "first":
		s.whenKind, s.whenN = whenCall, 1
	case strings.HasPrefix(s.When, "call:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s.When, "call:"))
		if err != nil || n < 1 {
			fail("when %q: want call:N with N >= 1", s.When)
		}
		s.whenKind, s.whenN = whenCall, n
	case strings.HasPrefix(s.When, "stream:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s.When, "stream:"))
		if err != nil || n < 1 {
			fail("when %q: want stream:N with N >= 1", s.When)
		}
		s.whenKind, s.whenN = whenStream, n
	default:
		fail(`when %q: want "eos", "not_eos", "first", "call:N" or "stream:N"`, s.When)
	}
	for _, f := range spec.required {
		if !s.has(f) {
			fail("missing %q", f)
		}
	}
	return errs
}

func textOrHex(text, hexText, field string) ([]byte, error) {
	if hexText == "" {
		return []byte(text), nil
	}
	if text != "" {
		return nil, fmt.Errorf("%q and %q both set; use one", field, field+"_hex")
	}
	b, err := hex.DecodeString(hexText)
	if err != nil {
		return nil, fmt.Errorf("%s_hex: %v", field, err)
	}
	return b, nil
}

// has reports whether a required field was given.
func (s *step) has(field string) bool {
	switch field {
	case "key":
		return s.Key != ""
	case "path":
		return len(s.Path) > 0
	case "name":
		return s.Name != ""
	case "cluster":
		return s.Cluster != ""
	case "code":
		return s.Code != nil
	case "ms":
		return s.Ms != nil
	case "mib":
		return s.MiB != nil
	case "arg":
		return s.Arg != ""
	case "id":
		return s.ID != nil
	case "count":
		return s.Count != nil
	case "number":
		return s.Number != nil
	case "pairs":
		return s.Pairs != nil
	case "old":
		return s.Old != ""
	case "name|id":
		return s.Name != "" || s.ID != nil
	case "command|resp":
		return len(s.Command) > 0 || s.Resp != ""
	}
	panic("probe: unknown required field " + field)
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sortedKeys lists the non-empty keys of m for error messages.
func sortedKeys[V any](m map[string]V) string {
	var keys []string
	for _, k := range keysOf(m) {
		if k != "" {
			keys = append(keys, k)
		}
	}
	return strings.Join(keys, ", ")
}
