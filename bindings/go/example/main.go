// Command example logs at every level through the direct API and through log/slog, then
// flushes and closes, so it exits only after its entries are delivered (or fails).
//
//	RARCH_LOGGING_URL=http://127.0.0.1:8080/log RARCH_LOGGING_API_KEY=secret go run ./example
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"rarch-logging/rarchlog"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run() error {
	// URL and APIKey are left unset: they come from RARCH_LOGGING_URL and
	// RARCH_LOGGING_API_KEY, as in every binding.
	lg, err := rarchlog.New("example", "go-example", rarchlog.Options{})
	if err != nil {
		return err
	}
	defer lg.Close()

	// The direct API: one method per level, fields optional.
	f := rarchlog.Fields{UserID: "u-17", TenantID: "acme", Context: map[string]any{"api": "direct"}}
	for _, log := range []func(string, ...rarchlog.Fields) error{lg.Debug, lg.Info, lg.Warn, lg.Error, lg.Fatal} {
		if err := log("hello from the direct API", f); err != nil {
			return err
		}
	}

	// log/slog: attributes become the context; user_id, tenant_id, request_id fill fields.
	sl := rarchlog.NewSlog(lg, nil).With("tenant_id", "acme", "api", "slog")
	sl.Debug("hello from slog", "user_id", "u-17")
	sl.Info("hello from slog", "user_id", "u-17", slog.Group("order", "id", 42))
	sl.Warn("hello from slog", "user_id", "u-17")
	sl.Error("hello from slog", "user_id", "u-17")
	sl.Log(context.Background(), rarchlog.SlogLevelFatal, "hello from slog", "user_id", "u-17")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lg.Flush(ctx); err != nil {
		return fmt.Errorf("entries not delivered: %w", err)
	}
	st, err := lg.Stats()
	if err != nil {
		return err
	}
	if err := lg.Close(); err != nil {
		return err
	}
	fmt.Printf("delivered %d entries (logged %d)\n", st.Delivered, st.Logged)
	return nil
}
