package rarchlog

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// receiver is a local examples/receiver process started for one test.
type receiver struct {
	t    *testing.T
	base string // http://host:port
	key  string
}

// receiverBin is the receiver the tests start: $RARCH_RECEIVER, else the repository's
// examples/receiver/receiver, else one built from examples/receiver into a temporary directory
// (found by TestMain).
var receiverBin string

func TestMain(m *testing.M) {
	p, err := findReceiver()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rarchlog tests: no receiver:", err)
		os.Exit(1)
	}
	receiverBin = p
	os.Exit(m.Run())
}

func findReceiver() (string, error) {
	if p := os.Getenv("RARCH_RECEIVER"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("RARCH_RECEIVER=%s: %v", p, err)
		}
		return p, nil
	}
	src := filepath.Join("..", "..", "examples", "receiver")
	if _, err := os.Stat(filepath.Join(src, "receiver")); err == nil {
		return filepath.Join(src, "receiver"), nil
	}
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return "", fmt.Errorf("set RARCH_RECEIVER to the receiver's binary (examples/receiver in the repository; `make receiver` builds it)")
	}
	dir, err := os.MkdirTemp("", "rarchlog-receiver-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "receiver")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", src, err, out)
	}
	return bin, nil
}

func randomKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// startReceiver starts a receiver on a free port and stops it when the test ends.
func startReceiver(t *testing.T) *receiver {
	t.Helper()
	return startReceiverTB(t, t)
}

func startReceiverTB(tb testing.TB, t *testing.T) *receiver {
	key := randomKey()
	dir := tb.TempDir()
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(receiverBin, "-key", key, "-addr-file", addrFile, "-quiet")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start receiver: %v", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(addrFile)
		if err == nil && len(b) > 0 {
			return &receiver{t: t, base: "http://" + strings.TrimSpace(string(b)), key: key}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("receiver did not write %s within 10s", addrFile)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *receiver) url() string { return r.base + "/log" }

// options points a logger at the receiver, with its buffer in a temp dir and short backoffs.
func (r *receiver) options(t testing.TB) Options {
	return Options{
		URL:              r.url(),
		APIKey:           r.key,
		BufferDir:        t.TempDir(),
		BackoffInitialMs: new(10),
		BackoffMaxMs:     new(200),
		CloseTimeoutMs:   new(2000),
	}
}

func (r *receiver) post(path, body string) {
	resp, err := http.Post(r.base+path, "application/json", strings.NewReader(body))
	if err != nil {
		r.t.Fatalf("POST %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		r.t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

func (r *receiver) fault(js string) { r.post("/admin/fault", js) }
func (r *receiver) heal()           { r.fault(`{"mode":"none"}`) }

func (r *receiver) stats() map[string]int64 {
	resp, err := http.Get(r.base + "/stats")
	if err != nil {
		r.t.Fatalf("GET /stats: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		r.t.Fatalf("GET /stats: %v", err)
	}
	return m
}

// entry is one accepted request body, decoded.
type entry map[string]any

func (e entry) str(k string) string {
	s, _ := e[k].(string)
	return s
}

func (e entry) ctx() map[string]any {
	m, _ := e["context"].(map[string]any)
	return m
}

func (r *receiver) entries() []entry {
	resp, err := http.Get(r.base + "/entries")
	if err != nil {
		r.t.Fatalf("GET /entries: %v", err)
	}
	defer resp.Body.Close()
	var out []entry
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e entry
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			r.t.Fatalf("entry %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// waitEntries waits until the receiver holds at least n entries, or fails the test.
func (r *receiver) waitEntries(n int, within time.Duration) []entry {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		es := r.entries()
		if len(es) >= n {
			return es
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("receiver got %d entries, want %d within %v (stats %v)", len(es), n, within, r.stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
