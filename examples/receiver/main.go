// Command receiver is a local implementation of the logging API's side of the contract
// (../../../shared/protocol.md), for development, tests and benchmarks.
//
// It verifies every JWT (HS256 with the API key, exp, sub equal to the entry's service) and
// every entry against the protocol's table; answers 200, 400 (bad entry), 401 (bad token) or
// 403 (sub mismatch) with a reason; keeps accepted entries (GET /entries, JSONL) and appends
// them to -out; counts duplicates by request_id; serves counters at GET /stats. POST
// /admin/fault makes it fail on purpose (a status, a rate, a delay, dropped or reset
// connections, malformed answers), for a share of requests or only for bodies that contain a
// text, and can delay every answer (latency_ms); POST /admin/key changes the key; POST /admin/reset clears.
//
// It also takes OTLP/HTTP logs, POST /v1/logs, as OTLP/JSON (gzip or not), the endpoint an
// OpenTelemetry Collector's otlphttp exporter (encoding: json) or the library's otlp sink sends
// to. A bearer token, when there is one, is verified as for /log (the Collector does not forward
// it); each log record is kept, flattened with its resource and scope exactly as received
// (GET /v1/logs/records, JSONL), and GET /otlp/stats counts requests, records, rejected records
// and gzip requests and shows the last request's headers. The same faults apply, and one more:
// "partial" rejects the records whose body contains a text (a partialSuccess answer). With
// -otlp-count-only the records are counted, not kept (the benchmark).
//
//	receiver -addr 127.0.0.1:0 -key secret -addr-file /tmp/addr
//
// With -tls-cert and -tls-key it serves the same endpoints over https instead.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Fault is what the receiver does instead of answering normally, for a fraction of requests.
type Fault struct {
	// Mode: "" or "none", "status" (answer Status), "drop" (close the connection without an
	// answer), "reset" (TCP reset), "malformed" (a broken HTTP answer), "delay" (wait DelayMs,
	// then answer normally), "partial" (/v1/logs only: reject the records whose
	// body.stringValue contains Match, keep the others, answer 200 with a partialSuccess).
	Mode       string  `json:"mode"`
	Status     int     `json:"status"`
	Rate       float64 `json:"rate"`        // probability of the fault per request (0 means 1)
	DelayMs    int     `json:"delay_ms"`    // with "delay", and before any other mode
	RetryAfter int     `json:"retry_after"` // seconds, sent with "status"
	// RetryAfterDate sends Retry-After as an HTTP date (now + RetryAfter seconds).
	RetryAfterDate bool  `json:"retry_after_date"`
	Count          int64 `json:"count"` // faults left; 0 means unlimited
	// Match: when set, only requests whose body contains this text are faulted (a "poison"
	// entry: `{"mode":"status","status":500,"match":"poison"}`); the rest are answered normally.
	// With "partial", the text a rejected record's body contains (Rate and Count still count
	// requests).
	Match string `json:"match"`
	// LatencyMs delays every answer (faulted or not) by this many milliseconds, without using
	// CPU: a distant server.
	LatencyMs int `json:"latency_ms"`
}

type server struct {
	mu       sync.Mutex
	key      []byte
	fault    Fault
	faultsN  int64
	keep     bool
	out      *bufio.Writer
	outFile  *os.File
	entries  [][]byte
	seen     map[string]int
	accepted atomic.Int64
	dups     atomic.Int64
	badAuth  atomic.Int64
	badSub   atomic.Int64
	badEntry atomic.Int64
	faulted  atomic.Int64
	requests atomic.Int64

	// OTLP (/v1/logs): records flattened to {"resource","scope","record"}, one JSON line each,
	// guarded by mu with otlpHeaders.
	otlpCountOnly bool
	otlpRecords   [][]byte
	otlpHeaders   map[string]string
	otlpRequests  atomic.Int64
	otlpN         atomic.Int64 // records accepted (kept, or counted with -otlp-count-only)
	otlpRejected  atomic.Int64 // records rejected by a "partial" fault
	otlpGzip      atomic.Int64
	otlpBadAuth   atomic.Int64
	otlpBad       atomic.Int64 // bodies that are not OTLP/JSON
	otlpFaulted   atomic.Int64
}

var levels = map[string]bool{"DEBUG": true, "INFO": true, "WARN": true, "ERROR": true, "FATAL": true}

// checkEntry validates a body against the protocol's table and returns the service and request id.
func checkEntry(body []byte) (service, requestID string, err error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil {
		return "", "", fmt.Errorf("body is not a JSON object: %v", err)
	}
	if dec.More() {
		return "", "", errors.New("body has more than one JSON value")
	}
	str := func(k string, nullable bool) (string, error) {
		raw, ok := m[k]
		if !ok {
			return "", fmt.Errorf("field %q is missing (every field is always sent)", k)
		}
		if nullable && string(raw) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("field %q must be a string", k)
		}
		return s, nil
	}
	level, err := str("level", false)
	if err != nil {
		return "", "", err
	}
	if !levels[level] {
		return "", "", fmt.Errorf("level %q is not DEBUG, INFO, WARN, ERROR or FATAL", level)
	}
	if service, err = str("service", false); err != nil {
		return "", "", err
	}
	if service == "" {
		return "", "", errors.New("service is empty")
	}
	for _, k := range []string{"logger_name", "message"} {
		if _, err := str(k, false); err != nil {
			return "", "", err
		}
	}
	for _, k := range []string{"user_id", "tenant_id"} {
		if _, err := str(k, true); err != nil {
			return "", "", err
		}
	}
	if requestID, err = str("request_id", false); err != nil {
		return "", "", err
	}
	ctx, ok := m["context"]
	if !ok || len(ctx) == 0 || ctx[0] != '{' {
		return "", "", errors.New("context must be a JSON object")
	}
	ts, err := str("client_log_datetime", false)
	if err != nil {
		return "", "", err
	}
	if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		return "", "", fmt.Errorf("client_log_datetime %q is not RFC 3339", ts)
	}
	return service, requestID, nil
}

// currentFault says whether the fault applies to this request (otlp: one to /v1/logs, the only
// endpoint a "partial" fault applies to) and counts it.
func (s *server) currentFault(body []byte, otlp bool) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fault
	if f.Mode == "" || f.Mode == "none" || (f.Mode == "partial" && !otlp) {
		return f, false
	}
	if f.Match != "" && f.Mode != "partial" && !bytes.Contains(body, []byte(f.Match)) {
		return f, false
	}
	if f.Rate > 0 && rand.Float64() >= f.Rate {
		return f, false
	}
	if f.Count > 0 {
		if s.faultsN >= f.Count {
			return f, false
		}
		s.faultsN++
	}
	return f, true
}

func hijack(w http.ResponseWriter) net.Conn {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	c, _, err := hj.Hijack()
	if err != nil {
		return nil
	}
	return c
}

// injectFault applies the latency and the current fault to a request. It returns done when
// the fault answered it (or dropped the connection), and the text of a "partial" fault that
// applies to it (only /v1/logs acts on that).
func (s *server) injectFault(w http.ResponseWriter, body []byte, otlp bool) (partial string, done bool) {
	s.mu.Lock()
	latency := s.fault.LatencyMs
	s.mu.Unlock()
	if latency > 0 {
		time.Sleep(time.Duration(latency) * time.Millisecond)
	}
	f, on := s.currentFault(body, otlp)
	if !on {
		return "", false
	}
	if otlp {
		s.otlpFaulted.Add(1)
	} else {
		s.faulted.Add(1)
	}
	if f.DelayMs > 0 {
		time.Sleep(time.Duration(f.DelayMs) * time.Millisecond)
	}
	switch f.Mode {
	case "status":
		if f.RetryAfter > 0 {
			if f.RetryAfterDate {
				w.Header().Set("Retry-After", time.Now().Add(time.Duration(f.RetryAfter)*time.Second).UTC().Format(http.TimeFormat))
			} else {
				w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
			}
		}
		http.Error(w, "injected fault", f.Status)
		return "", true
	case "drop":
		if c := hijack(w); c != nil {
			c.Close()
		}
		return "", true
	case "reset":
		if c := hijack(w); c != nil {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
		}
		return "", true
	case "malformed":
		if c := hijack(w); c != nil {
			c.Write([]byte("HTTP/1.1 2OO NOT-A-STATUS\r\nContent-Length: x\r\n\r\n"))
			c.Close()
		}
		return "", true
	case "partial":
		return f.Match, false
	}
	return "", false
}

// checkToken verifies a bearer token: HS256 with the key, exp required, iat not in the future.
func (s *server) checkToken(tok string) (*jwt.RegisteredClaims, error) {
	s.mu.Lock()
	key := s.key
	s.mu.Unlock()
	claims := &jwt.RegisteredClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	return claims, err
}

func (s *server) log(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, "cannot read body", http.StatusBadRequest)
		return
	}
	if _, done := s.injectFault(w, body, false); done {
		return
	}
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || auth[:len(prefix)] != prefix {
		s.badAuth.Add(1)
		http.Error(w, "missing bearer token", http.StatusUnauthorized)
		return
	}
	claims, err := s.checkToken(auth[len(prefix):])
	if err != nil {
		s.badAuth.Add(1)
		http.Error(w, "invalid token: "+err.Error(), http.StatusUnauthorized)
		return
	}
	service, rid, err := checkEntry(body)
	if err != nil {
		s.badEntry.Add(1)
		http.Error(w, "invalid entry: "+err.Error(), http.StatusBadRequest)
		return
	}
	if claims.Subject != service {
		s.badSub.Add(1)
		http.Error(w, fmt.Sprintf("token subject %q does not match service %q", claims.Subject, service), http.StatusForbidden)
		return
	}
	s.accepted.Add(1)
	s.mu.Lock()
	if s.seen[rid] > 0 {
		s.dups.Add(1)
	}
	s.seen[rid]++
	if s.keep {
		s.entries = append(s.entries, body)
	}
	if s.out != nil {
		s.out.Write(body)
		s.out.WriteByte('\n')
		s.out.Flush()
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"status":"accepted"}`))
}

func (s *server) stats(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	distinct := len(s.seen)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]int64{
		"requests":     s.requests.Load(),
		"accepted":     s.accepted.Load(),
		"distinct":     int64(distinct),
		"duplicates":   s.dups.Load(),
		"unauthorized": s.badAuth.Load(),
		"forbidden":    s.badSub.Load(),
		"bad_entries":  s.badEntry.Load(),
		"faults":       s.faulted.Load(),
	})
}

func (s *server) list(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	s.mu.Lock()
	entries := s.entries
	s.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, e := range entries {
		bw.Write(e)
		bw.WriteByte('\n')
	}
	bw.Flush()
}

func (s *server) admin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.URL.Path {
	case "/admin/fault":
		var f Fault
		if err := json.Unmarshal(body, &f); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.fault, s.faultsN = f, 0
	case "/admin/key":
		s.key = bytes.TrimRight(body, "\n")
	case "/admin/reset":
		s.entries, s.seen = nil, map[string]int{}
		s.otlpRecords, s.otlpHeaders = nil, map[string]string{}
		for _, c := range []*atomic.Int64{&s.accepted, &s.dups, &s.badAuth, &s.badSub, &s.badEntry, &s.faulted, &s.requests,
			&s.otlpRequests, &s.otlpN, &s.otlpRejected, &s.otlpGzip, &s.otlpBadAuth, &s.otlpBad, &s.otlpFaulted} {
			c.Store(0)
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.Write([]byte("ok\n"))
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address (port 0: a free port)")
	key := flag.String("key", os.Getenv("RARCH_LOGGING_API_KEY"), "API key (HS256 secret); default $RARCH_LOGGING_API_KEY")
	addrFile := flag.String("addr-file", "", "write the listening address (host:port) to this file")
	out := flag.String("out", "", "append accepted entries to this JSONL file")
	keep := flag.Bool("keep", true, "keep accepted entries in memory for GET /entries")
	quiet := flag.Bool("quiet", false, "print nothing but errors")
	tlsCert := flag.String("tls-cert", "", "serve https with this PEM certificate chain (needs -tls-key)")
	tlsKey := flag.String("tls-key", "", "PEM private key of -tls-cert")
	otlpCountOnly := flag.Bool("otlp-count-only", false, "count the OTLP log records of POST /v1/logs, do not keep them (benchmarks)")
	flag.Parse()

	s := &server{key: []byte(*key), keep: *keep, seen: map[string]int{}, otlpCountOnly: *otlpCountOnly, otlpHeaders: map[string]string{}}
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			log.Fatal(err)
		}
		s.outFile, s.out = f, bufio.NewWriter(f)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /log", s.log)
	mux.HandleFunc("GET /stats", s.stats)
	mux.HandleFunc("GET /entries", s.list)
	mux.HandleFunc("/admin/", s.admin)
	mux.HandleFunc("POST /v1/logs", s.otlpLogs)
	mux.HandleFunc("GET /v1/logs/records", s.otlpList)
	mux.HandleFunc("GET /otlp/stats", s.otlpStats)
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	if !*quiet {
		scheme := "http"
		if *tlsCert != "" {
			scheme = "https"
		}
		fmt.Printf("receiver listening on %s://%s/log\n", scheme, ln.Addr())
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		s.mu.Lock()
		if s.out != nil {
			s.out.Flush()
			s.outFile.Close()
		}
		s.mu.Unlock()
		os.Exit(0)
	}()
	if (*tlsCert == "") != (*tlsKey == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}
	if *tlsCert != "" {
		// The same handlers, over TLS: GET /stats, /entries and /admin/ are https too.
		err = srv.ServeTLS(ln, *tlsCert, *tlsKey)
	} else {
		err = srv.Serve(ln)
	}
	if err != nil {
		log.Fatal(err)
	}
}
