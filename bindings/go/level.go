package rarchlog

import "fmt"

// Level is a log level. DEBUG < INFO < WARN < ERROR < FATAL. The zero value is not a level:
// in Options it means "unset" (the RARCH_LOGGING_DEFAULT_LEVEL variable, else DEBUG), and
// logging or SetLevel with it fails with ErrInvalidLevel.
type Level int8

const (
	LevelDebug Level = iota + 1
	LevelInfo
	LevelWarn
	LevelError
	LevelFatal
)

var levelNames = [...]string{"", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}

// String returns the protocol's name: DEBUG, INFO, WARN, ERROR or FATAL.
func (l Level) String() string {
	if l >= LevelDebug && l <= LevelFatal {
		return levelNames[l]
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// ParseLevel parses DEBUG, INFO, WARN, ERROR or FATAL (case-insensitive).
func ParseLevel(s string) (Level, error) {
	for l := LevelDebug; l <= LevelFatal; l++ {
		if equalFold(s, levelNames[l]) {
			return l, nil
		}
	}
	return 0, &Error{Status: ErrInvalidLevel.(Status), Op: "ParseLevel", Msg: fmt.Sprintf("%q is not DEBUG, INFO, WARN, ERROR or FATAL", s)}
}

// c is the C API's value (RARCH_LEVEL_DEBUG = 0 ...); an invalid Level maps outside the range.
func (l Level) c() int { return int(l) - 1 }

func levelFromC(v int) Level { return Level(v + 1) }

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
