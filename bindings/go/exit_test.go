package rarchlog

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestExitClosesEveryLogger runs this test binary again as a child that logs with two loggers
// of different pipelines and ends with Exit(0), never calling Close: every entry must arrive
// (os.Exit alone would lose those still in memory).
func TestExitClosesEveryLogger(t *testing.T) {
	r := startReceiver(t)
	const n = 3000
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitChild$")
	cmd.Env = append(os.Environ(),
		"RARCHLOG_EXIT_CHILD=1", "RARCHLOG_EXIT_URL="+r.url(), "RARCHLOG_EXIT_KEY="+r.key,
		"RARCHLOG_EXIT_DIR="+t.TempDir(), "RARCHLOG_EXIT_N="+strconv.Itoa(n))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	es := r.waitEntries(2*n, 20*time.Second)
	seen := map[string]bool{}
	for _, e := range es {
		seen[e.str("message")] = true
	}
	for _, svc := range []string{"exit-a", "exit-b"} {
		for i := 0; i < n; i++ {
			if m := fmt.Sprintf("%s-%d", svc, i); !seen[m] {
				t.Fatalf("%s is lost", m)
			}
		}
	}
}

// TestExitChild is the child of TestExitClosesEveryLogger (skipped otherwise).
func TestExitChild(t *testing.T) {
	if os.Getenv("RARCHLOG_EXIT_CHILD") == "" {
		t.Skip("the child of TestExitClosesEveryLogger")
	}
	n, _ := strconv.Atoi(os.Getenv("RARCHLOG_EXIT_N"))
	var ls []*Logger
	for i, svc := range []string{"exit-a", "exit-b"} {
		l, err := New(svc, "", Options{
			URL:            os.Getenv("RARCHLOG_EXIT_URL"),
			APIKey:         os.Getenv("RARCHLOG_EXIT_KEY"),
			BufferDir:      os.Getenv("RARCHLOG_EXIT_DIR"),
			CloseTimeoutMs: new(15000),
			QueueCapacity:  new(16384 + i), // two pipelines
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		ls = append(ls, l)
	}
	for i := 0; i < n; i++ {
		for _, l := range ls {
			if err := l.Info(fmt.Sprintf("%s-%d", l.Service(), i)); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
		}
	}
	Exit(0)
}
