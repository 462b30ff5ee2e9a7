package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/sluicegw/sluice/api/v1alpha1"
)

// This file turns YAML bytes into typed resources, strictly. yaml.v3 can
// only reject unknown fields when decoding a stream (Decoder.KnownFields),
// not a Node, and its type errors carry a line but no field path. So each
// document is parsed to a yaml.Node and walked together with its Go type:
// the walker reports unknown keys (with a "did you mean"), duplicate keys
// and wrong node kinds with path and line, fills the Go value itself, and
// records where every field was written so later checks can point at it.

// maxNodesPerDocument bounds the work one document may cause. Aliases can
// make a small file expand exponentially ("billion laughs"); a document that
// needs more visits than this is rejected.
const maxNodesPerDocument = 250_000

// document is one decoded YAML document: a resource and where its fields
// were written.
type document struct {
	file string
	kind string // as written; "" when missing
	name string // metadata.name as written; "" when missing
	// obj is a *v1alpha1.Gateway, *Cluster, *Route or *WasmPlugin, or nil
	// when the kind is not known.
	obj any
	// lines maps a field path ("spec.endpoints[1].address") to the line it
	// was written on; "" is the document's first line.
	lines map[string]int
	// shadow lists the paths whose values could not be read. Validation
	// does not report on them or below them: its findings would only echo
	// the decoding error ("address is required" after "unknown field
	// adress"). "" shadows the whole document.
	shadow map[string]bool
}

// shadowed reports whether path lies at or below a value that could not be
// decoded.
func (d *document) shadowed(path string) bool {
	for {
		if d.shadow[path] {
			return true
		}
		if path == "" {
			return false
		}
		path = parentPath(path)
	}
}

// has reports whether path was written in the document.
func (d *document) has(path string) bool {
	_, ok := d.lines[path]
	return ok
}

// lineOf is the line of path, or of its nearest written parent.
func (d *document) lineOf(path string) int {
	for {
		if l, ok := d.lines[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// problem builds a finding about path in this document.
func (d *document) problem(path, msg, hint string) *Error {
	return &Error{
		File:    d.file,
		Line:    d.lineOf(path),
		Kind:    d.kind,
		Name:    d.name,
		Field:   path,
		Message: msg,
		Hint:    hint,
	}
}

// kindInfo describes a kind Sluice understands.
type kindInfo struct {
	apiVersion string
	new        func() any
}

var kinds = map[string]kindInfo{
	v1alpha1.KindGateway:    {v1alpha1.GroupVersion, func() any { return new(v1alpha1.Gateway) }},
	v1alpha1.KindCluster:    {v1alpha1.GroupVersion, func() any { return new(v1alpha1.Cluster) }},
	v1alpha1.KindRoute:      {v1alpha1.GroupVersion, func() any { return new(v1alpha1.Route) }},
	v1alpha1.KindWasmPlugin: {v1alpha1.HigressGroupVersion, func() any { return new(v1alpha1.WasmPlugin) }},
}

var kindNames = []string{v1alpha1.KindGateway, v1alpha1.KindCluster, v1alpha1.KindRoute, v1alpha1.KindWasmPlugin}

const validKinds = "valid kinds: Gateway, Cluster and Route with apiVersion sluice.dev/v1alpha1; " +
	"WasmPlugin with apiVersion extensions.higress.io/v1alpha1"

// decodeFile decodes every document of one file. It reports problems to f
// and returns the documents it could read, and whether the file parsed as
// YAML at all (a syntax error stops reading the file).
func decodeFile(file string, data []byte, f *findings) (docs []*document, parsed bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var root yaml.Node
		err := dec.Decode(&root)
		if errors.Is(err, io.EOF) {
			return docs, true
		}
		if err != nil {
			f.err(syntaxError(file, data, err))
			return docs, false
		}
		if len(root.Content) == 0 || isNull(root.Content[0]) {
			continue // an empty document, e.g. between two "---"
		}
		docs = append(docs, decodeDocument(file, root.Content[0], f))
	}
}

// decodeDocument reads one document: it checks apiVersion and kind, then
// walks the document into the kind's Go type.
func decodeDocument(file string, top *yaml.Node, f *findings) *document {
	doc := &document{file: file, lines: map[string]int{"": top.Line}, shadow: map[string]bool{}}
	if top.Kind != yaml.MappingNode {
		f.err(&Error{File: file, Line: top.Line,
			Message: "a document must be a mapping with apiVersion, kind, metadata and spec, got " + describe(top),
			Hint:    validKinds})
		return doc
	}
	kindNode := scalarAt(top, "kind")
	avNode := scalarAt(top, "apiVersion")
	if meta := valueAt(top, "metadata"); meta != nil {
		if n := scalarAt(meta, "name"); n != nil {
			doc.name = n.Value
		}
	}
	if kindNode != nil {
		doc.kind = kindNode.Value
	}
	ki, known := kinds[doc.kind]
	switch {
	case kindNode == nil:
		f.err(&Error{File: file, Line: top.Line, Field: "kind", Message: "every document needs a kind", Hint: validKinds})
	case !known:
		f.err(&Error{File: file, Line: kindNode.Line, Kind: doc.kind, Name: doc.name, Field: "kind",
			Message: fmt.Sprintf("unknown kind %q", doc.kind), Hint: hintJoin(didYouMean(doc.kind, kindNames), validKinds)})
	}
	if !known {
		return doc
	}
	// With a wrong apiVersion the fields are still decoded (and reported),
	// but the whole document is shadowed: its meaning is in doubt.
	switch {
	case avNode == nil:
		f.err(doc.problem("apiVersion", "every document needs an apiVersion", "set apiVersion: "+ki.apiVersion))
		doc.shadow[""] = true
	case avNode.Value != ki.apiVersion:
		e := doc.problem("apiVersion", fmt.Sprintf("apiVersion %q does not serve kind %s", avNode.Value, doc.kind),
			"use apiVersion: "+ki.apiVersion)
		e.Line = avNode.Line
		f.err(e)
		doc.shadow[""] = true
	}
	obj := ki.new()
	w := &walker{doc: doc, f: f, active: map[*yaml.Node]bool{}}
	w.value(top, reflect.ValueOf(obj).Elem(), "", false)
	doc.obj = obj
	return doc
}

// valueAt is the value of key in mapping n (aliases followed one level),
// or nil.
func valueAt(n *yaml.Node, key string) *yaml.Node {
	n = follow(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := follow(n.Content[i]); k != nil && k.Kind == yaml.ScalarNode && k.Value == key {
			return follow(n.Content[i+1])
		}
	}
	return nil
}

// scalarAt is the scalar value of key in mapping n, or nil.
func scalarAt(n *yaml.Node, key string) *yaml.Node {
	v := valueAt(n, key)
	if v == nil || v.Kind != yaml.ScalarNode || isNull(v) {
		return nil
	}
	return v
}

// follow resolves an alias (one level; aliases of aliases do not exist in
// yaml.v3 trees).
func follow(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node's kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		default:
			return "a string"
		}
	case yaml.AliasNode:
		return "an alias"
	}
	return "an empty value"
}

// walker decodes one document into its Go value. Not safe for concurrent use.
type walker struct {
	doc    *document
	f      *findings
	visits int
	// active holds the nodes being walked, to detect an alias that
	// refers to a node containing it.
	active map[*yaml.Node]bool
	// exhausted is set once the visit budget is spent.
	exhausted bool
}

// fail reports a problem at path. The value at path could not be read, so
// validation stays quiet about it (see document.shadowed).
func (w *walker) fail(path string, line int, msg, hint string) {
	w.report(path, path, line, msg, hint)
}

// report reports a problem at path and shadows the subtree at shadow.
func (w *walker) report(shadow, path string, line int, msg, hint string) {
	w.doc.shadow[shadow] = true
	e := w.doc.problem(path, msg, hint)
	if line > 0 {
		e.Line = line
	}
	w.f.err(e)
}

// enter resolves an alias and marks the node as being walked. It returns
// nil when the node must not be walked (a cycle or the budget is spent);
// the caller must call w.leave(n) on a non-nil result.
func (w *walker) enter(n *yaml.Node, path string) *yaml.Node {
	if n.Kind == yaml.AliasNode {
		line := n.Line
		n = n.Alias
		if n == nil {
			w.fail(path, line, "alias refers to no anchor", "")
			return nil
		}
		if w.active[n] {
			w.fail(path, line, "alias refers to a value that contains it", "an anchor cannot be used inside itself")
			return nil
		}
	}
	if !w.spend(1) {
		return nil
	}
	w.active[n] = true
	return n
}

// spend counts work against the document's budget and reports whether
// any is left.
func (w *walker) spend(n int) bool {
	if w.exhausted {
		return false
	}
	w.visits += n
	if w.visits > maxNodesPerDocument {
		w.exhausted = true
		w.fail("", 0, fmt.Sprintf("document is too large: more than %d values after expanding aliases", maxNodesPerDocument),
			"split it, or use fewer aliases")
		return false
	}
	return true
}

func (w *walker) leave(n *yaml.Node) { delete(w.active, n) }

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// value decodes n into v. path is the field path of v; secret is set for
// fields whose values must never appear in messages.
func (w *walker) value(n *yaml.Node, v reflect.Value, path string, secret bool) {
	n = w.enter(n, path)
	if n == nil {
		return
	}
	defer w.leave(n)

	if v.Kind() == reflect.Pointer {
		if isNull(n) {
			v.SetZero()
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			w.fail(path, n.Line, decodeMessage(err, secret), "")
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		w.structure(n, v, path, secret)
	case reflect.Map:
		w.mapping(n, v, path, secret)
	case reflect.Slice:
		w.sequence(n, v, path, secret)
	case reflect.Interface:
		if val, ok := w.anyValue(n, path); ok && val != nil {
			v.Set(reflect.ValueOf(val))
		}
	default:
		w.scalar(n, v, path, secret)
	}
}

func decodeMessage(err error, secret bool) string {
	if secret {
		return "invalid value"
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = yamlLinePrefix.ReplaceAllString(te.Errors[0], "")
	}
	return msg
}

var yamlLinePrefix = regexp.MustCompile(`^line \d+: `)

func (w *walker) wrongKind(n *yaml.Node, path, want, hint string) {
	w.fail(path, n.Line, fmt.Sprintf("must be %s, got %s", want, describe(n)), hint)
}

// pair is one key/value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs lists the entries of mapping n, with YAML merge keys ("<<: *base")
// expanded: keys written in n win over merged ones, and among merged
// mappings the first wins. Keys must be scalars and appear once.
func (w *walker) pairs(n *yaml.Node, path string) []pair {
	if !w.spend(len(n.Content) / 2) {
		return nil
	}
	var out, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == "!!merge") {
			merged = append(merged, w.mergeSource(val, path)...)
			continue
		}
		if k.Kind == yaml.AliasNode && k.Alias != nil {
			k = k.Alias
		}
		if k.Kind != yaml.ScalarNode {
			w.fail(path, k.Line, "mapping keys must be strings, got "+describe(k), "")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			w.fail(joinKey(path, k.Value), k.Line, fmt.Sprintf("key %q is set twice; the first is on line %d", k.Value, first),
				"remove one of them")
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, val})
	}
	if !w.spend(len(merged)) {
		return nil
	}
	for _, p := range merged {
		if _, ok := seen[p.key.Value]; !ok {
			seen[p.key.Value] = p.key.Line
			out = append(out, p)
		}
	}
	return out
}

// mergeSource lists the pairs a merge key brings in.
func (w *walker) mergeSource(val *yaml.Node, path string) []pair {
	n := w.enter(val, path)
	if n == nil {
		return nil
	}
	defer w.leave(n)
	switch n.Kind {
	case yaml.MappingNode:
		return w.pairs(n, path)
	case yaml.SequenceNode:
		var out []pair
		seen := map[string]bool{}
		for _, item := range n.Content {
			m := w.enter(item, path)
			if m == nil {
				continue
			}
			if m.Kind != yaml.MappingNode {
				w.wrongKind(m, path, "a mapping to merge", "")
			} else {
				for _, p := range w.pairs(m, path) {
					if !seen[p.key.Value] {
						seen[p.key.Value] = true
						out = append(out, p)
					}
				}
			}
			w.leave(m)
		}
		return out
	}
	w.wrongKind(n, path, "a mapping or a list of mappings to merge (<<)", "")
	return nil
}

// fieldInfo is one YAML field of a struct.
type fieldInfo struct {
	name   string
	index  []int
	secret bool
}

// structInfo lists a struct type's YAML fields, inline fields flattened.
type structInfo struct {
	byName map[string]fieldInfo
	names  []string // in declaration order, for hints
}

var structCache sync.Map // reflect.Type → *structInfo

func structFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]fieldInfo{}}
	var add func(t reflect.Type, prefix []int)
	add = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			if !sf.IsExported() {
				continue
			}
			tag := sf.Tag.Get("yaml")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			index := append(append([]int(nil), prefix...), i)
			if strings.Contains(","+opts+",", ",inline,") && sf.Type.Kind() == reflect.Struct {
				add(sf.Type, index)
				continue
			}
			if name == "" {
				name = strings.ToLower(sf.Name)
			}
			si.byName[name] = fieldInfo{name: name, index: index, secret: sf.Tag.Get("sluice") == "secret"}
			si.names = append(si.names, name)
		}
	}
	add(t, nil)
	actual, _ := structCache.LoadOrStore(t, si)
	return actual.(*structInfo)
}

func (w *walker) structure(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.wrongKind(n, path, "a mapping (key: value lines)", "")
		return
	}
	si := structFields(v.Type())
	for _, p := range w.pairs(n, path) {
		key := p.key.Value
		child := joinKey(path, key)
		fi, ok := si.byName[key]
		if !ok {
			hint := didYouMean(key, si.names)
			if hint == "" {
				hint = "valid fields: " + strings.Join(si.names, ", ")
			}
			// A misspelt field leaves its intended field unset: shadow the
			// whole object so no "is required" follows for it.
			w.report(path, child, p.key.Line, fmt.Sprintf("unknown field %q", key), hint)
			continue
		}
		w.doc.lines[child] = p.key.Line
		w.value(p.val, v.FieldByIndex(fi.index), child, secret || fi.secret)
	}
}

func (w *walker) mapping(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		w.wrongKind(n, path, "a mapping (key: value lines)", "")
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		w.fail(path, n.Line, "internal error: unsupported map key type "+v.Type().Key().String(), "")
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range w.pairs(n, path) {
		child := joinKey(path, p.key.Value)
		w.doc.lines[child] = p.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		w.value(p.val, elem, child, secret)
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), elem)
	}
}

func (w *walker) sequence(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = "write a list: one \"- item\" line per entry, or [a, b]"
		}
		w.wrongKind(n, path, "a list", hint)
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		child := joinIndex(path, i)
		w.doc.lines[child] = item.Line
		w.value(item, s.Index(i), child, secret)
	}
	v.Set(s)
}

// scalar decodes a string, number or boolean.
func (w *walker) scalar(n *yaml.Node, v reflect.Value, path string, secret bool) {
	if n.Kind != yaml.ScalarNode {
		var want string
		switch v.Kind() {
		case reflect.String:
			want = "a string"
		case reflect.Bool:
			want = "true or false"
		default:
			want = "a number"
		}
		w.wrongKind(n, path, want, "")
		return
	}
	if isNull(n) {
		v.SetZero()
		return
	}
	got := ""
	if !secret {
		got = fmt.Sprintf(", got %q", n.Value)
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			w.fail(path, n.Line, "must be true or false"+got, "")
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			w.fail(path, n.Line, "must be a whole number"+got, quotedNumberHint(n))
			return
		}
		if v.OverflowInt(i) {
			bits := v.Type().Bits()
			w.fail(path, n.Line, fmt.Sprintf("must be a whole number from %d to %d%s",
				int64(-1)<<(bits-1), int64(1)<<(bits-1)-1, got), "")
			return
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if n.ShortTag() != "!!int" || n.Decode(&u) != nil || v.OverflowUint(u) {
			w.fail(path, n.Line, "must be a non-negative whole number"+got, quotedNumberHint(n))
			return
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		var x float64
		tag := n.ShortTag()
		if (tag != "!!float" && tag != "!!int") || n.Decode(&x) != nil {
			w.fail(path, n.Line, "must be a number"+got, quotedNumberHint(n))
			return
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.fail(path, n.Line, "must be a finite number"+got, "")
			return
		}
		v.SetFloat(x)
	default:
		w.fail(path, n.Line, "internal error: unsupported field type "+v.Type().String(), "")
	}
}

// quotedNumberHint suggests dropping quotes around a number.
func quotedNumberHint(n *yaml.Node) string {
	if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) == 0 {
		return ""
	}
	if _, err := strconv.ParseFloat(n.Value, 64); err == nil {
		return "remove the quotes: a quoted number is a string"
	}
	return ""
}

// anyValue converts free-form YAML (plugin configuration) into values that
// encode to JSON unchanged: map[string]any, []any, string, bool, int64,
// uint64, float64 and nil. Timestamps and binary stay strings.
func (w *walker) anyValue(n *yaml.Node, path string) (any, bool) {
	n = w.enter(n, path)
	if n == nil {
		return nil, false
	}
	defer w.leave(n)
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		ok := true
		for _, p := range w.pairs(n, path) {
			child := joinKey(path, p.key.Value)
			w.doc.lines[child] = p.key.Line
			val, vok := w.anyValue(p.val, child)
			ok = ok && vok
			m[p.key.Value] = val
		}
		return m, ok
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		ok := true
		for i, item := range n.Content {
			child := joinIndex(path, i)
			w.doc.lines[child] = item.Line
			val, vok := w.anyValue(item, child)
			ok = ok && vok
			s[i] = val
		}
		return s, ok
	case yaml.ScalarNode:
		switch tag := n.ShortTag(); tag {
		case "!!null":
			return nil, true
		case "!!str", "!!timestamp", "!!binary":
			return n.Value, true
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i, true
			}
			var u uint64
			if n.Decode(&u) == nil {
				return u, true
			}
			var f float64
			if n.Decode(&f) == nil && !math.IsInf(f, 0) {
				return f, true
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					w.fail(path, n.Line, fmt.Sprintf("%q cannot be represented in JSON", n.Value),
						"plugin configuration is handed to the plugin as JSON; use a finite number or a string")
					return nil, false
				}
				return f, true
			}
		default:
			w.fail(path, n.Line, fmt.Sprintf("YAML tag %s is not supported", n.Tag), "remove the tag")
			return nil, false
		}
		w.fail(path, n.Line, fmt.Sprintf("%q is not a valid %s", n.Value, strings.TrimPrefix(n.ShortTag(), "!!")), "")
		return nil, false
	}
	w.fail(path, n.Line, "unsupported YAML node", "")
	return nil, false
}

// joinKey appends a mapping key to a field path: "spec" + "url" →
// "spec.url"; keys that are not plain words are quoted: spec.headers["a b"].
func joinKey(path, key string) string {
	if !plainKey(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func plainKey(key string) bool {
	if key == "" {
		return false
	}
	for _, r := range key {
		if !(r == '-' || r == '_' || r == '/' || r == ':' ||
			r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// joinIndex appends a list index to a field path.
func joinIndex(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parentPath drops the last element of a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(p, '.'); i > 0 {
		return p[:i]
	}
	return ""
}
