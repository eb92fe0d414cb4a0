package rarchlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendContext appends v as a JSON object. A result of length 0 means "absent" (nil, or a
// value that marshals to null). Maps with string keys and basic values are encoded here
// without reflection (keys sorted, as encoding/json does); anything else goes through
// encoding/json.
func appendContext(dst []byte, v any) ([]byte, error) {
	start := len(dst)
	switch m := v.(type) {
	case nil:
		return dst, nil
	case json.RawMessage:
		if len(m) == 0 || string(m) == "null" {
			return dst, nil
		}
		return append(dst, m...), nil // the library checks it is one JSON object
	case map[string]any:
		if m == nil {
			return dst, nil
		}
		return appendMapAny(dst, m)
	case map[string]string:
		if m == nil {
			return dst, nil
		}
		return appendMapString(dst, m), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst[:start], err
	}
	if string(b) == "null" {
		return dst, nil
	}
	if len(b) == 0 || b[0] != '{' {
		return dst[:start], fmt.Errorf("context must be a JSON object, %T marshals to %.20s", v, b)
	}
	return append(dst, b...), nil
}

// sortedKeys returns m's keys sorted, in buf when they fit.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func appendMapAny(dst []byte, m map[string]any) ([]byte, error) {
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(buf[:], m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = appendAny(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendMapString(dst []byte, m map[string]string) []byte {
	var buf [16]string
	dst = append(dst, '{')
	for i, k := range sortedKeys(buf[:], m) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		dst = appendString(dst, m[k])
	}
	return append(dst, '}')
}

// appendAny appends one JSON value the way encoding/json would.
func appendAny(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10), nil
	case float64:
		if f, ok := appendFloat(dst, x); ok {
			return f, nil
		}
	case map[string]any:
		if x != nil {
			return appendMapAny(dst, x)
		}
	case map[string]string:
		if x != nil {
			return appendMapString(dst, x), nil
		}
	case json.RawMessage:
		if len(x) > 0 {
			return append(dst, x...), nil
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendFloat writes f like encoding/json for the common range; ok is false otherwise.
func appendFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, false
	}
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		return dst, false
	}
	return strconv.AppendFloat(dst, f, 'f', -1, 64), true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD, as in encoding/json.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendSlogLike is used by the slog handler for values of kind Any.
func appendAnyValue(dst []byte, v any) []byte {
	switch x := v.(type) {
	case error:
		// encoding/json would print most errors as {}: use the message, as slog.JSONHandler does.
		if _, ok := x.(json.Marshaler); !ok {
			return appendString(dst, x.Error())
		}
	case time.Duration:
		return strconv.AppendInt(dst, int64(x), 10)
	case []byte:
		return appendString(dst, string(x))
	}
	b, err := appendAny(dst, v)
	if err != nil {
		var ute *json.UnsupportedTypeError
		if errors.As(err, &ute) || reflect.ValueOf(v).Kind() == reflect.Func {
			return appendString(dst, fmt.Sprintf("%+v", v))
		}
		return appendString(dst, "!ERROR:"+err.Error())
	}
	return b
}
