package wasmhost

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"unicode"

	"github.com/sluicegw/sluice/internal/gateway"
)

func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// property resolves a NUL-joined path (spec/host.md §3.2, §3.3).
func (in *Instance) property(path string) ([]byte, bool) {
	p := in.plugin
	switch path {
	case "plugin_name":
		return []byte(p.spec.Name), true
	case "plugin_root_id":
		return []byte(p.spec.RootID), true
	case "plugin_vm_id":
		return nil, true
	case "plugin_vm_memory":
		return le64(uint64(in.mem.Size())), true // inside a guest call: the live size
	}
	f := in.effectiveStream()
	if f == nil {
		return nil, false
	}
	st := f.stream()
	switch path {
	case "route_name":
		return []byte(st.RouteName()), true
	case "cluster_name":
		return []byte(st.ClusterName()), true
	case "source\x00address":
		return []byte(st.ClientAddr()), true
	case "source\x00port":
		_, port, err := net.SplitHostPort(st.ClientAddr())
		if n, perr := strconv.Atoi(port); err == nil && perr == nil {
			return le64(uint64(n)), true
		}
		return nil, false
	case "upstream\x00address":
		if st.UpstreamHost() == "" {
			return nil, false
		}
		return []byte(st.UpstreamHost()), true
	case "request\x00protocol":
		return []byte(st.Protocol()), true
	case "request\x00id", "x_request_id_header":
		return []byte(st.ID()), true
	case "request\x00scheme":
		return []byte(st.Scheme()), true
	case "request\x00time":
		return le64(uint64(st.StartTime().UnixNano())), true
	case "connection\x00requested_server_name":
		return []byte(st.ServerName()), true
	case "response\x00code_details":
		if st.ResponseDetails() == "" {
			return nil, false
		}
		return []byte(st.ResponseDetails()), true
	case "response\x00code":
		if h := st.ResponseHeaders(); h != nil {
			if n, err := strconv.Atoi(h.Value(":status")); err == nil {
				return le64(uint64(n)), true
			}
		}
		return nil, false
	}
	if h := st.RequestHeaders(); h != nil {
		switch path {
		case "request\x00path":
			return []byte(h.Value(":path")), true
		case "request\x00url_path":
			pth, _, _ := strings.Cut(h.Value(":path"), "?")
			return []byte(pth), true
		case "request\x00host":
			return []byte(h.Value(":authority")), true
		case "request\x00method":
			return []byte(h.Value(":method")), true
		case "request\x00useragent":
			return []byte(h.Value("user-agent")), true
		case "request\x00referer":
			return []byte(h.Value("referer")), true
		case "request\x00query":
			_, q, _ := strings.Cut(h.Value(":path"), "?")
			return []byte(q), true
		}
	}
	v, ok := st.Property(path)
	return v, ok
}

// proxy_get_property(path_ptr, path_len, ret_ptr_ptr, ret_size_ptr)
func hcGetProperty(in *Instance, s []uint64) Status {
	path, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	path = strings.TrimSuffix(path, "\x00")
	v, found := in.property(path)
	if !found {
		return StatusNotFound
	}
	return in.returnBytes(v, u32(s[2]), u32(s[3]))
}

// proxy_set_property(path_ptr, path_len, val_ptr, val_len)
func hcSetProperty(in *Instance, s []uint64) Status {
	path, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	val, ok := in.readCopy(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	path = strings.TrimSuffix(path, "\x00")
	if path == "wasm_need_rebuild" {
		if strings.EqualFold(string(val), "true") {
			in.needRebuild.Store(true)
		}
		return StatusOK
	}
	f := in.effectiveStream()
	if f == nil {
		return StatusNotFound
	}
	st := f.stream()
	switch path {
	case "set_decoder_buffer_limit", "set_encoder_buffer_limit":
		n, err := strconv.ParseUint(strings.TrimFunc(string(val), unicode.IsSpace), 10, 32)
		if err != nil {
			return StatusBadArgument
		}
		dir := gateway.Request
		if path == "set_encoder_buffer_limit" {
			dir = gateway.Response
		}
		st.SetBufferLimit(dir, int64(n))
		return StatusOK
	}
	st.SetProperty(path, val)
	return StatusOK
}
