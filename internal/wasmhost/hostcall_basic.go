package wasmhost

import (
	"context"
	"encoding/binary"
	"log/slog"
	"time"
	"unsafe"

	"github.com/sluicegw/sluice/internal/gateway"
	"github.com/sluicegw/sluice/internal/usagescan"
)

func (in *Instance) hostLevel() int {
	lvl := slog.LevelInfo
	if f := in.plugin.svc.LogLevel; f != nil {
		lvl = f()
	}
	switch {
	case lvl <= slog.LevelDebug-4:
		return LogTrace
	case lvl <= slog.LevelDebug:
		return LogDebug
	case lvl <= slog.LevelInfo:
		return LogInfo
	case lvl <= slog.LevelWarn:
		return LogWarn
	}
	return LogError
}

var proxyToSlog = [...]slog.Level{slog.LevelDebug - 4, slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelError + 4}

// proxy_log(level, msg_ptr, msg_len)
func hcLog(in *Instance, s []uint64) Status {
	level := u32(s[0])
	if level >= 6 {
		return StatusBadArgument
	}
	msg, ok := in.readString(u32(s[1]), u32(s[2]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	lvl := proxyToSlog[level]
	if !in.logger.Enabled(context.Background(), lvl) {
		return StatusOK
	}
	attrs := []any{}
	if f := in.effectiveStream(); f != nil {
		attrs = append(attrs, "request_id", f.stream().ID())
	}
	in.logger.Log(context.Background(), lvl, msg, attrs...)
	return StatusOK
}

// proxy_get_log_level(ret_ptr)
func hcGetLogLevel(in *Instance, s []uint64) Status {
	if !in.writeU32(u32(s[0]), uint32(in.hostLevel())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// proxy_get_current_time_nanoseconds(ret_ptr)
func hcGetTime(in *Instance, s []uint64) Status {
	if !in.writeU64(u32(s[0]), uint64(time.Now().UnixNano())) {
		return StatusInvalidMemoryAccess
	}
	return StatusOK
}

// proxy_get_configuration(ptr_ptr, size_ptr): ABI 0.1.0.
func hcGetConfiguration(in *Instance, s []uint64) Status {
	return in.returnBytes(in.configBuf, u32(s[0]), u32(s[1]))
}

// proxy_get_status(code_ptr, msg_ptr_ptr, msg_size_ptr)
func hcGetStatus(in *Instance, s []uint64) Status {
	if !in.writeU32(u32(s[0]), uint32(in.status)) {
		return StatusInvalidMemoryAccess
	}
	return in.returnBytes([]byte(in.statusMsg), u32(s[1]), u32(s[2]))
}

// proxy_set_effective_context(id)
func hcSetEffectiveContext(in *Instance, s []uint64) Status {
	id := u32(s[0])
	if _, ok := in.contexts[id]; !ok {
		return StatusBadArgument
	}
	in.effective = id
	return StatusOK
}

// proxy_done(): no root context of ours waits for it.
func hcDone(*Instance, []uint64) Status { return StatusNotFound }

// proxy_set_tick_period_milliseconds(period)
func hcSetTickPeriod(in *Instance, s []uint64) Status {
	root := in.rootOf()
	gc := in.contexts[root]
	if gc == nil || gc.rs == nil {
		return StatusBadArgument
	}
	in.setTick(gc, time.Duration(u32(s[0]))*time.Millisecond)
	return StatusOK
}

// setTick arms, re-arms or stops the root's tick. Caller holds in.mu.
func (in *Instance) setTick(gc *guestContext, period time.Duration) {
	rs := gc.rs
	if rs.tickStop != nil {
		close(rs.tickStop)
		rs.tickStop = nil
	}
	rs.tickPeriod = period
	if period <= 0 {
		return
	}
	stop := make(chan struct{})
	rs.tickStop = stop
	root := gc.id
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			in.mu.Lock()
			select {
			case <-stop: // period changed (or 0) while waiting for mu
				in.mu.Unlock()
				return
			default:
			}
			if in.dead.Load() || in.closed.Load() || rs.deleted {
				in.mu.Unlock()
				return
			}
			_, _ = in.call(in.fnTick, root, uint64(root))
			in.mu.Unlock()
		}
	}()
}

// proxy_call_foreign_function(name_ptr, name_len, args_ptr, args_len, ret_ptr_ptr, ret_size_ptr)
func hcCallForeignFunction(in *Instance, s []uint64) Status {
	name, ok := in.readString(u32(s[0]), u32(s[1]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	if name == usagescan.ForeignFunction {
		// Scanned in place: the view of guest memory is used up before
		// returnBytes calls the guest's allocator.
		event, ok := in.read(u32(s[2]), u32(s[3]))
		if !ok {
			return StatusInvalidMemoryAccess
		}
		var f usagescan.Fields
		f.Scan(unsafe.String(unsafe.SliceData(event), len(event)))
		ret := usagescan.Append(nil, &f)
		if u32(s[4]) == 0 {
			return StatusOK
		}
		return in.returnBytes(ret, u32(s[4]), u32(s[5]))
	}
	args, ok := in.readCopy(u32(s[2]), u32(s[3]))
	if !ok {
		return StatusInvalidMemoryAccess
	}
	var ret []byte
	switch name {
	case "get_log_level":
		ret = binary.LittleEndian.AppendUint32(nil, uint32(in.hostLevel()))
	case "set_global_max_requests_per_io_cycle":
		return StatusOK
	case "inject_encoded_data_to_filter_chain_on_header", "inject_encoded_data_to_filter_chain":
		body, eos, err := decodeInjectProto(args)
		if err != nil {
			return StatusBadArgument
		}
		f := in.effectiveStream()
		if f == nil {
			return StatusNotFound
		}
		if name == "inject_encoded_data_to_filter_chain_on_header" {
			f.h.AttachBody(gateway.Response, body)
		} else {
			f.h.InjectData(gateway.Response, body, eos)
		}
	default:
		return StatusNotFound
	}
	if u32(s[4]) == 0 {
		return StatusOK
	}
	return in.returnBytes(ret, u32(s[4]), u32(s[5]))
}

// decodeInjectProto reads {1: body (bytes), 2: endstream (bool)}.
func decodeInjectProto(b []byte) (body []byte, eos bool, err error) {
	for len(b) > 0 {
		key, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, false, errBadPairs
		}
		b = b[n:]
		field, wire := key>>3, key&7
		switch wire {
		case 0:
			v, n := binary.Uvarint(b)
			if n <= 0 {
				return nil, false, errBadPairs
			}
			b = b[n:]
			if field == 2 {
				eos = v != 0
			}
		case 2:
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, false, errBadPairs
			}
			v := b[n : n+int(l)]
			b = b[n+int(l):]
			if field == 1 {
				body = append([]byte(nil), v...)
			}
		case 1:
			if len(b) < 8 {
				return nil, false, errBadPairs
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return nil, false, errBadPairs
			}
			b = b[4:]
		default:
			return nil, false, errBadPairs
		}
	}
	return body, eos, nil
}
