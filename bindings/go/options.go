package rarchlog

import (
	"slices"
	"strconv"
)

// Mode is the `mode` option.
type Mode string

const (
	ModeThreaded Mode = "threaded" // Log enqueues and returns; the library's threads deliver (default)
	ModeBlocking Mode = "blocking" // Log posts on the calling thread and returns the outcome
)

// Mirror is the `mirror` option.
type Mirror string

const (
	MirrorOff    Mirror = "off"
	MirrorStdout Mirror = "stdout"
	MirrorStderr Mirror = "stderr"
)

// OnFull is the `on_full` option: what Log does when the in-memory queue is full.
type OnFull string

const (
	OnFullSpill OnFull = "spill" // write to the disk buffer, never block (default)
	OnFullBlock OnFull = "block" // wait up to BlockTimeoutMs, then ErrQueueFull
	OnFullDrop  OnFull = "drop"  // drop it and return ErrQueueFull
)

// Sink is the `sink` option: the wire protocol.
type Sink string

const (
	SinkRarch Sink = "rarch" // the rarch logging API: one JWT-signed entry per POST (default)
	SinkOTLP  Sink = "otlp"  // OTLP/HTTP logs (protobuf or JSON), batched, to an OpenTelemetry Collector or backend
)

// OTLPProtocol is the `otlp_protocol` option (sink=otlp): the request body's encoding.
type OTLPProtocol string

const (
	OTLPProtobuf OTLPProtocol = "http/protobuf" // default
	OTLPJSON     OTLPProtocol = "http/json"
)

// Compression is the `compression` option (sink=otlp): the request body's encoding.
type Compression string

const (
	CompressionNone Compression = "none" // default
	CompressionGzip Compression = "gzip"
)

// Options are the keys of rarch_options_set, one field per key, in Go style. A field left at
// its zero value (an empty string, a nil pointer) is not set, so the library takes it from its
// environment variable (url, api_key, level, headers) or its default, exactly as in C. Numbers
// and the bool are pointers because 0 and false are meaningful values of some keys (max_retries = 0,
// close_timeout_ms = 0): write `TimeoutMs: new(500)` (Go 1.26) or take the address of a
// variable. Values are checked by the library when New runs; a bad one is an ErrConfig whose
// message names the key.
type Options struct {
	Sink                Sink         // sink (rarch): SinkRarch or SinkOTLP
	URL                 string       // url (RARCH_LOGGING_URL, http://localhost:8080/log): with SinkOTLP, unset falls back to OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT + /v1/logs, http://localhost:4318/v1/logs
	APIKey              string       // api_key (RARCH_LOGGING_API_KEY, empty): the HS256 secret
	Level               Level        // level (RARCH_LOGGING_DEFAULT_LEVEL, DEBUG)
	Mode                Mode         // mode (threaded)
	BufferDir           string       // buffer_dir (./var/log): the buffer is <BufferDir>/<service>/buffer.jsonl
	TimeoutMs           *int         // timeout_ms (2000): timeout of each phase of a request
	QueueCapacity       *int         // queue_capacity (8192): entries held in memory
	BurstMemoryBytes    *int         // burst_memory_bytes (8388608): lanes' memory past it in a burst
	Connections         *int         // connections (64): the most requests in flight
	Concurrency         string       // concurrency (adaptive): "adaptive" or "fixed" (always Connections)
	CloseTimeoutMs      *int         // close_timeout_ms (5000): how long Close delivers before writing the rest to disk
	Mirror              Mirror       // mirror (off): also print each entry as one line
	MaxRetries          *int         // max_retries (5): in-memory retries before an entry goes to disk
	MaxAttempts         *int         // max_attempts (10): failed attempts, while others are delivered, before an entry is dead-lettered
	BackoffInitialMs    *int         // backoff_initial_ms (100)
	BackoffMaxMs        *int         // backoff_max_ms (30000)
	OnFull              OnFull       // on_full (spill)
	BlockTimeoutMs      *int         // block_timeout_ms (100): the wait of OnFullBlock
	MaxEntryBytes       *int         // max_entry_bytes (1048576): largest JSON entry accepted
	BufferMaxFileBytes  *int64       // buffer_max_file_bytes (5242880): rotation size of buffer.jsonl
	BufferMaxTotalBytes *int64       // buffer_max_total_bytes (268435456): cap of a service's buffer files
	Durable             *bool        // durable (false): each entry is in the crash journal before Log returns
	CAFile              string       // ca_file (empty: the system roots): PEM CA certificates to trust for https
	TokenLifetimeS      *int         // token_lifetime_s (3600): JWT lifetime
	Headers             string       // headers (OTEL_EXPORTER_OTLP_LOGS_HEADERS, empty): with SinkOTLP, request headers "k1=v1,k2=v2"; a secret, never printed or written
	Compression         Compression  // compression (none): with SinkOTLP, CompressionNone or CompressionGzip
	BatchMaxEntries     *int         // batch_max_entries (512): with SinkOTLP, the most entries in one request
	BatchMaxBytes       *int         // batch_max_bytes (1048576): with SinkOTLP, the most bytes of entries in one request
	BatchLingerMs       *int         // batch_linger_ms (20): with SinkOTLP, how long a batch that is not full waits for more
	Events              string       // events (off): what Events reports: "off", "problems" (every kind but delivered) or "all"
	EventsCapacity      *int         // events_capacity (10000): the most events waiting; past it one EventsLost counts the rest
	RedactKeys          string       // redact_keys (empty): context keys, comma-separated, any case and depth, whose values become "[REDACTED]"
	RateLimit           *int         // rate_limit (0): entries a second below ERROR (0: no limit); the rest are dropped, counted and summarised
	RateLimitBurst      *int         // rate_limit_burst (0): entries taken at once above RateLimit (0: a second's worth)
	OTLPProtocol        OTLPProtocol // otlp_protocol (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, http/protobuf): with SinkOTLP, OTLPProtobuf or OTLPJSON (grpc is refused)
	ResourceAttributes  string       // resource_attributes (OTEL_RESOURCE_ATTRIBUTES, empty): with SinkOTLP, "k1=v1,k2=v2" merged over OTEL_RESOURCE_ATTRIBUTES's

	// Raw sets keys by their C name, for keys this version of the binding has no field for.
	// An unknown key is an error (ErrConfig), never ignored. A key set both here and by a
	// field is an error too.
	Raw map[string]string
}

type kv struct{ key, value string }

// pairs lists the keys the caller set, in the header's order, then Raw's.
func (o *Options) pairs() []kv {
	var out []kv
	str := func(k, v string) {
		if v != "" {
			out = append(out, kv{k, v})
		}
	}
	num := func(k string, v *int) {
		if v != nil {
			out = append(out, kv{k, strconv.Itoa(*v)})
		}
	}
	num64 := func(k string, v *int64) {
		if v != nil {
			out = append(out, kv{k, strconv.FormatInt(*v, 10)})
		}
	}
	str("sink", string(o.Sink))
	str("url", o.URL)
	str("api_key", o.APIKey)
	if o.Level != 0 {
		// An invalid Level is passed on as it prints, so the library reports it (ErrConfig).
		out = append(out, kv{"level", o.Level.String()})
	}
	str("mode", string(o.Mode))
	str("buffer_dir", o.BufferDir)
	num("timeout_ms", o.TimeoutMs)
	num("queue_capacity", o.QueueCapacity)
	num("burst_memory_bytes", o.BurstMemoryBytes)
	num("connections", o.Connections)
	str("concurrency", o.Concurrency)
	num("close_timeout_ms", o.CloseTimeoutMs)
	str("mirror", string(o.Mirror))
	num("max_retries", o.MaxRetries)
	num("max_attempts", o.MaxAttempts)
	num("backoff_initial_ms", o.BackoffInitialMs)
	num("backoff_max_ms", o.BackoffMaxMs)
	str("on_full", string(o.OnFull))
	num("block_timeout_ms", o.BlockTimeoutMs)
	num("max_entry_bytes", o.MaxEntryBytes)
	num64("buffer_max_file_bytes", o.BufferMaxFileBytes)
	num64("buffer_max_total_bytes", o.BufferMaxTotalBytes)
	if o.Durable != nil {
		out = append(out, kv{"durable", strconv.FormatBool(*o.Durable)})
	}
	str("ca_file", o.CAFile)
	num("token_lifetime_s", o.TokenLifetimeS)
	str("headers", o.Headers)
	str("compression", string(o.Compression))
	num("batch_max_entries", o.BatchMaxEntries)
	num("batch_max_bytes", o.BatchMaxBytes)
	num("batch_linger_ms", o.BatchLingerMs)
	str("events", o.Events)
	num("events_capacity", o.EventsCapacity)
	str("redact_keys", o.RedactKeys)
	num("rate_limit", o.RateLimit)
	num("rate_limit_burst", o.RateLimitBurst)
	str("otlp_protocol", string(o.OTLPProtocol))
	str("resource_attributes", o.ResourceAttributes)
	if len(o.Raw) > 0 {
		keys := make([]string, 0, len(o.Raw))
		for k := range o.Raw {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = append(out, kv{k, o.Raw[k]})
		}
	}
	return out
}
