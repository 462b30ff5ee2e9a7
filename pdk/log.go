package pdk

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm"
	"github.com/higress-group/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/sluicegw/sluice/pdk/internal/hostenv"
)

// This file is logging: a Logger that prefixes lines the way wasm-go does
// and drops them before formatting when the host's level is higher.

// LogLevel is a Proxy-Wasm log level.
type LogLevel uint32

// The Proxy-Wasm log levels, lowest first.
const (
	LevelTrace LogLevel = iota
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelCritical
)

var levelNames = [...]string{"trace", "debug", "info", "warn", "error", "critical"}

// String returns the level's lower-case name.
func (l LogLevel) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", uint32(l))
}

// levelCache holds the host's log level for the current guest call. The
// host can change its level at any time, so the value is forgotten at the
// start of every guest call the kit handles (enter) and asked again, once,
// by the first log line that needs it.
var levelCache struct {
	valid bool
	level LogLevel
	// unsupported: the host has no get_log_level (plain Envoy); wasm-go
	// then assumes trace and lets proxy_log filter. Never asked again.
	unsupported bool
}

func resetLogLevel() { levelCache.valid = false }

// hostLogLevel returns the host's current log level, asking the host at
// most once per guest call.
func hostLogLevel() LogLevel {
	if levelCache.valid {
		return levelCache.level
	}
	levelCache.valid = true
	levelCache.level = LevelTrace
	if levelCache.unsupported || !hostenv.QueryLogLevel {
		return LevelTrace
	}
	b, err := proxywasm.CallForeignFunction("get_log_level", nil)
	switch {
	case errors.Is(err, types.ErrorStatusNotFound):
		levelCache.unsupported = true
	case err == nil && len(b) >= 4:
		if l := LogLevel(binary.LittleEndian.Uint32(b)); l <= LevelCritical {
			levelCache.level = l
		}
	}
	return levelCache.level
}

// Logger writes a plugin's log lines through proxy_log, prefixed as wasm-go
// prefixes them:
//
//	[<plugin name>] [<plugin id or nil>] [<x-request-id or nil>] message
//
// A line below the host's level is dropped before it is formatted. The
// zero Logger logs with the prefix [pdk] [nil] [nil].
type Logger struct {
	plugin    *pluginMeta
	requestID string
}

// Enabled reports whether a line at level would be written now.
func (l Logger) Enabled(level LogLevel) bool { return level >= hostLogLevel() }

func (l Logger) prefix() string {
	name, id := "pdk", "nil"
	if l.plugin != nil {
		if l.plugin.name != "" {
			name = l.plugin.name
		}
		if l.plugin.id != "" {
			id = l.plugin.id
		}
	}
	rid := l.requestID
	if rid == "" {
		rid = "nil"
	}
	return "[" + name + "] [" + id + "] [" + rid + "] "
}

func (l Logger) emit(level LogLevel, msg string) {
	line := l.prefix() + msg
	switch level {
	case LevelTrace:
		proxywasm.LogTrace(line)
	case LevelDebug:
		proxywasm.LogDebug(line)
	case LevelInfo:
		proxywasm.LogInfo(line)
	case LevelWarn:
		proxywasm.LogWarn(line)
	case LevelError:
		proxywasm.LogError(line)
	default:
		proxywasm.LogCritical(line)
	}
}

// Log writes msg at level.
func (l Logger) Log(level LogLevel, msg string) {
	if l.Enabled(level) {
		l.emit(level, msg)
	}
}

// Logf formats and writes a line at level.
func (l Logger) Logf(level LogLevel, format string, args ...any) {
	if l.Enabled(level) {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

// Trace writes msg at trace level.
func (l Logger) Trace(msg string) { l.Log(LevelTrace, msg) }

// Tracef formats and writes a line at trace level.
func (l Logger) Tracef(format string, args ...any) { l.Logf(LevelTrace, format, args...) }

// Debug writes msg at debug level.
func (l Logger) Debug(msg string) { l.Log(LevelDebug, msg) }

// Debugf formats and writes a line at debug level.
func (l Logger) Debugf(format string, args ...any) { l.Logf(LevelDebug, format, args...) }

// Info writes msg at info level.
func (l Logger) Info(msg string) { l.Log(LevelInfo, msg) }

// Infof formats and writes a line at info level.
func (l Logger) Infof(format string, args ...any) { l.Logf(LevelInfo, format, args...) }

// Warn writes msg at warn level.
func (l Logger) Warn(msg string) { l.Log(LevelWarn, msg) }

// Warnf formats and writes a line at warn level.
func (l Logger) Warnf(format string, args ...any) { l.Logf(LevelWarn, format, args...) }

// Error writes msg at error level.
func (l Logger) Error(msg string) { l.Log(LevelError, msg) }

// Errorf formats and writes a line at error level.
func (l Logger) Errorf(format string, args ...any) { l.Logf(LevelError, format, args...) }

// Critical writes msg at critical level.
func (l Logger) Critical(msg string) { l.Log(LevelCritical, msg) }

// Criticalf formats and writes a line at critical level.
func (l Logger) Criticalf(format string, args ...any) { l.Logf(LevelCritical, format, args...) }

// Log returns the logger of the plugin running now, carrying the current
// request's id when called during a request (also from callout callbacks).
// Use it where no Context is at hand, e.g. in a Parse function.
func Log() Logger {
	if current.ctx != nil {
		return current.ctx.Log()
	}
	return Logger{plugin: current.plugin}
}
