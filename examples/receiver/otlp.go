package main

// OTLP/HTTP logs: POST /v1/logs (OTLP/JSON, gzip or not), GET /v1/logs/records, GET /otlp/stats.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// otlpRequest is an ExportLogsServiceRequest as far as the receiver reads it: the resource, the
// scope and every log record stay the bytes received (numbers, int64 strings and all).
type otlpRequest struct {
	ResourceLogs []struct {
		Resource  json.RawMessage `json:"resource"`
		ScopeLogs []struct {
			Scope      json.RawMessage   `json:"scope"`
			LogRecords []json.RawMessage `json:"logRecords"`
		} `json:"scopeLogs"`
	} `json:"resourceLogs"`
}

// countRecords counts the log records of an OTLP/JSON export (-otlp-count-only) in one pass
// over its bytes, without decoding it or allocating (encoding/json takes about 4.5 us a record,
// as much CPU as the Collector that sends them): the values of every
// resourceLogs[].scopeLogs[].logRecords array. It checks the nesting, the strings and that each
// record is an object, not every token: the benchmark's sender is the Collector.
func countRecords(body []byte) (int, error) {
	// path[d] is the key under which the container at depth d+1 must sit for the walk to be on
	// the way to the records: root {, "resourceLogs" [, {, "scopeLogs" [, {, "logRecords" [.
	path := [...]string{"resourceLogs", "", "scopeLogs", "", "logRecords"}
	type frame struct {
		object, expectKey, onPath bool
		key                       []byte // the last key, in an object
	}
	var stack [64]frame
	depth, n := 0, 0
	// onRecords: the innermost container is a logRecords array on the path.
	onRecords := func() bool { return depth == 6 && stack[5].onPath }
	// child says whether a container opened now is on the path.
	child := func() bool {
		if depth == 0 {
			return true
		}
		p := &stack[depth-1]
		if !p.onPath || depth > 5 {
			return false
		}
		if p.object {
			return string(p.key) == path[depth-1]
		}
		return true
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case ' ', '\t', '\n', '\r', ':':
		case ',':
			if depth > 0 && stack[depth-1].object {
				stack[depth-1].expectKey = true
			}
		case '{', '[':
			if depth == len(stack) {
				return 0, errors.New("nested too deep")
			}
			if onRecords() {
				if c != '{' {
					return 0, errors.New("a log record is not an object")
				}
				n++
			}
			// on the path, objects and arrays alternate from the root object down
			on := child() && (c == '{') == (depth%2 == 0)
			stack[depth] = frame{object: c == '{', expectKey: c == '{', onPath: on}
			depth++
		case '}', ']':
			if depth == 0 || stack[depth-1].object != (c == '}') {
				return 0, fmt.Errorf("unbalanced %q at byte %d", c, i)
			}
			depth--
		case '"':
			j := i + 1
			for j < len(body) && body[j] != '"' {
				if body[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(body) {
				return 0, errors.New("unterminated string")
			}
			if depth > 0 && stack[depth-1].object && stack[depth-1].expectKey {
				stack[depth-1].key, stack[depth-1].expectKey = body[i+1:j], false
			} else if onRecords() {
				return 0, errors.New("a log record is not an object")
			}
			i = j
		default: // a number, true, false or null
			if depth == 0 {
				return 0, errors.New("the body is not a JSON object")
			}
			if onRecords() {
				return 0, errors.New("a log record is not an object")
			}
			for i+1 < len(body) && !endsScalar(body[i+1]) {
				i++
			}
		}
	}
	if depth != 0 {
		return 0, errors.New("truncated JSON")
	}
	return n, nil
}

func endsScalar(c byte) bool {
	switch c {
	case ',', ']', '}', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// otlpBody is what a "partial" fault reads of a record.
type otlpBody struct {
	Body struct {
		StringValue string `json:"stringValue"`
	} `json:"body"`
}

var (
	bufPool  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzipPool sync.Pool // *gzip.Reader
)

// readOTLPBody reads the request's body into buf, gunzipping it when Content-Encoding says gzip.
func readOTLPBody(r *http.Request, buf *bytes.Buffer) (gzipped bool, err error) {
	const limit = 64 << 20
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		_, err = buf.ReadFrom(io.LimitReader(r.Body, limit))
		return false, err
	case "gzip":
		zr, _ := gzipPool.Get().(*gzip.Reader)
		if zr == nil {
			zr, err = gzip.NewReader(r.Body)
		} else {
			err = zr.Reset(r.Body)
		}
		if err != nil {
			return true, fmt.Errorf("bad gzip body: %v", err)
		}
		defer gzipPool.Put(zr)
		if _, err = buf.ReadFrom(io.LimitReader(zr, limit)); err != nil {
			return true, fmt.Errorf("bad gzip body: %v", err)
		}
		return true, nil
	default:
		return false, fmt.Errorf("Content-Encoding %q is not supported (gzip or none)", enc)
	}
}

func isObject(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }

// orEmpty is a resource or scope as received, {} when it was absent or null.
func orEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}

func (s *server) otlpLogs(w http.ResponseWriter, r *http.Request) {
	s.otlpRequests.Add(1)
	headers := make(map[string]string, len(r.Header))
	for k, v := range r.Header {
		k = strings.ToLower(k)
		if k == "authorization" {
			headers[k] = "<present>"
		} else {
			headers[k] = strings.Join(v, ", ")
		}
	}
	s.mu.Lock()
	s.otlpHeaders = headers
	s.mu.Unlock()

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	gzipped, err := readOTLPBody(r, buf)
	if gzipped {
		s.otlpGzip.Add(1)
	}
	if err != nil {
		s.otlpBad.Add(1)
		code := http.StatusBadRequest
		if strings.HasPrefix(err.Error(), "Content-Encoding") {
			code = http.StatusUnsupportedMediaType
		}
		http.Error(w, err.Error(), code)
		return
	}
	body := buf.Bytes()
	match, done := s.injectFault(w, body, true)
	if done {
		return
	}
	if auth := r.Header.Get("Authorization"); auth != "" {
		const prefix = "Bearer "
		if len(auth) <= len(prefix) || auth[:len(prefix)] != prefix {
			s.otlpBadAuth.Add(1)
			http.Error(w, "Authorization is not a bearer token", http.StatusUnauthorized)
			return
		}
		if _, err := s.checkToken(auth[len(prefix):]); err != nil {
			s.otlpBadAuth.Add(1)
			http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
			return
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		s.otlpBad.Add(1)
		http.Error(w, fmt.Sprintf("Content-Type %q: only OTLP/JSON (application/json) is accepted", ct), http.StatusUnsupportedMediaType)
		return
	}
	if len(bytes.TrimSpace(body)) == 0 || bytes.TrimSpace(body)[0] != '{' {
		s.otlpBad.Add(1)
		http.Error(w, "invalid OTLP/JSON: the body is not a JSON object", http.StatusBadRequest)
		return
	}

	if s.otlpCountOnly && match == "" {
		n, err := countRecords(body)
		if err != nil {
			s.otlpBad.Add(1)
			http.Error(w, "invalid OTLP/JSON: "+err.Error(), http.StatusBadRequest)
			return
		}
		s.otlpN.Add(int64(n))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
		return
	}

	var req otlpRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.otlpBad.Add(1)
		http.Error(w, "invalid OTLP/JSON: "+err.Error(), http.StatusBadRequest)
		return
	}
	// Check the whole request before keeping any of it: a 400 keeps nothing.
	for i, rl := range req.ResourceLogs {
		if len(rl.Resource) > 0 && string(rl.Resource) != "null" && !isObject(rl.Resource) {
			s.otlpBad.Add(1)
			http.Error(w, fmt.Sprintf("invalid OTLP/JSON: resourceLogs[%d].resource is not an object", i), http.StatusBadRequest)
			return
		}
		for j, sl := range rl.ScopeLogs {
			if len(sl.Scope) > 0 && string(sl.Scope) != "null" && !isObject(sl.Scope) {
				s.otlpBad.Add(1)
				http.Error(w, fmt.Sprintf("invalid OTLP/JSON: resourceLogs[%d].scopeLogs[%d].scope is not an object", i, j), http.StatusBadRequest)
				return
			}
			for k, rec := range sl.LogRecords {
				if !isObject(rec) {
					s.otlpBad.Add(1)
					http.Error(w, fmt.Sprintf("invalid OTLP/JSON: resourceLogs[%d].scopeLogs[%d].logRecords[%d] is not an object", i, j, k), http.StatusBadRequest)
					return
				}
			}
		}
	}
	var kept [][]byte
	accepted, rejected := 0, 0
	for _, rl := range req.ResourceLogs {
		res := orEmpty(rl.Resource)
		for _, sl := range rl.ScopeLogs {
			scope := orEmpty(sl.Scope)
			for _, rec := range sl.LogRecords {
				if match != "" {
					var b otlpBody
					if json.Unmarshal(rec, &b) == nil && strings.Contains(b.Body.StringValue, match) {
						rejected++
						continue
					}
				}
				accepted++
				if s.otlpCountOnly {
					continue
				}
				line := make([]byte, 0, len(res)+len(scope)+len(rec)+32)
				line = append(line, `{"resource":`...)
				line = append(line, res...)
				line = append(line, `,"scope":`...)
				line = append(line, scope...)
				line = append(line, `,"record":`...)
				line = append(line, rec...)
				line = append(line, '}')
				kept = append(kept, line)
			}
		}
	}
	if len(kept) > 0 {
		s.mu.Lock()
		s.otlpRecords = append(s.otlpRecords, kept...)
		s.mu.Unlock()
	}
	s.otlpN.Add(int64(accepted))
	s.otlpRejected.Add(int64(rejected))
	w.Header().Set("Content-Type", "application/json")
	if rejected == 0 {
		w.Write([]byte(`{}`))
		return
	}
	answer, _ := json.Marshal(map[string]any{"partialSuccess": map[string]string{
		"rejectedLogRecords": strconv.Itoa(rejected),
		"errorMessage":       fmt.Sprintf("rejected %d record(s) matching %q", rejected, match),
	}})
	w.Write(answer)
}

func (s *server) otlpList(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	s.mu.Lock()
	records := s.otlpRecords
	s.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, rec := range records {
		bw.Write(rec)
		bw.WriteByte('\n')
	}
	bw.Flush()
}

func (s *server) otlpStats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	headers := s.otlpHeaders
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"requests":      s.otlpRequests.Load(),
		"records":       s.otlpN.Load(),
		"rejected":      s.otlpRejected.Load(),
		"gzip_requests": s.otlpGzip.Load(),
		"unauthorized":  s.otlpBadAuth.Load(),
		"bad_requests":  s.otlpBad.Load(),
		"faults":        s.otlpFaulted.Load(),
		"headers":       headers,
	})
}
