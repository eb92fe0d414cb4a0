package rarchlog

/*
#include <rarch_logging.h>
*/
import "C"

// Status is a rarch_status, the result code of a C call. Every failure status is exported as
// a sentinel error below (ErrQueueFull, ErrTimedOut, ...): match errors with errors.Is.
type Status int

// Error returns the library's static description of the status (rarch_status_str).
func (s Status) Error() string { return "rarchlog: " + C.GoString(C.rarch_status_str(C.int(s))) }

// The sentinels, one per rarch_status. Every error this package returns matches one of them
// with errors.Is (a bad Context value also matches the json error it wraps; a Flush cut short
// by its context also matches context.DeadlineExceeded or context.Canceled).
var (
	ErrNullArgument     error = Status(C.RARCH_ERR_NULL_ARGUMENT)     // a required argument was missing
	ErrInvalidArgument  error = Status(C.RARCH_ERR_INVALID_ARGUMENT)  // bad service name, entry above max_entry_bytes, ...
	ErrInvalidLevel     error = Status(C.RARCH_ERR_INVALID_LEVEL)     // a Level outside LevelDebug..LevelFatal
	ErrInvalidUTF8      error = Status(C.RARCH_ERR_INVALID_UTF8)      // a string is not valid UTF-8
	ErrInvalidJSON      error = Status(C.RARCH_ERR_INVALID_JSON)      // Context is not (or does not marshal to) a JSON object
	ErrInvalidTimestamp error = Status(C.RARCH_ERR_INVALID_TIMESTAMP) // client time not RFC 3339 (cannot happen with time.Time)
	ErrConfig           error = Status(C.RARCH_ERR_CONFIG)            // unknown option key or bad value (also from the environment)
	ErrQueueFull        error = Status(C.RARCH_ERR_QUEUE_FULL)        // the entry was not taken (on_full = block or drop)
	ErrTimedOut         error = Status(C.RARCH_ERR_TIMED_OUT)         // Flush: not everything delivered in time; nothing dropped
	ErrIO               error = Status(C.RARCH_ERR_IO)                // the disk buffer could not be used
	ErrTransport        error = Status(C.RARCH_ERR_TRANSPORT)         // blocking mode: network error, timeout or 5xx; entry buffered
	ErrAuth             error = Status(C.RARCH_ERR_AUTH)              // blocking mode: 401/403; entry buffered
	ErrRejected         error = Status(C.RARCH_ERR_REJECTED)          // blocking mode: 4xx; entry in buffer.rejected.jsonl
	ErrClosed           error = Status(C.RARCH_ERR_CLOSED)            // the Logger is closed
	ErrPanic            error = Status(C.RARCH_ERR_PANIC)             // an internal error was caught; the call did nothing
)

// Error is what the package returns for a failed call: the status (matched by errors.Is
// against the sentinels), the operation, and the message of rarch_last_error read on the
// OS thread that made the call. Use errors.As to get at the fields.
type Error struct {
	Status Status // the rarch_status
	Op     string // the Go method, e.g. "Info", "New", "Flush"
	Msg    string // rarch_last_error's message (never contains the API key)
	err    error  // an extra cause (a json error, a context error), or nil
}

func (e *Error) Error() string {
	s := "rarchlog: " + e.Op + ": " + C.GoString(C.rarch_status_str(C.int(e.Status)))
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

// Unwrap gives the status sentinel and, if any, the extra cause.
func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{e.Status, e.err}
	}
	return []error{e.Status}
}

func newError(op string, st C.int, msg string) error {
	return &Error{Status: Status(st), Op: op, Msg: msg}
}

func closedError(op string) error {
	return &Error{Status: Status(C.RARCH_ERR_CLOSED), Op: op, Msg: "the logger is closed"}
}
