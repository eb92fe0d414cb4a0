"""Log levels, the same strings as the pure-Python client's ``log_levels`` module."""

LOG_LEVEL_DEBUG = "DEBUG"
LOG_LEVEL_INFO = "INFO"
LOG_LEVEL_WARN = "WARN"
LOG_LEVEL_ERROR = "ERROR"
LOG_LEVEL_FATAL = "FATAL"

LOG_LEVELS = [
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
]

# The library's numbers (rarch_level): DEBUG=0 .. FATAL=4.
_LEVEL_NUMBERS = {name: i for i, name in enumerate(LOG_LEVELS)}
_LEVEL_NUMBERS["WARNING"] = 2


def level_number(level):
    """Maps a level name (any case; "WARNING" is WARN) or a number 0..4 to the library's number."""
    if isinstance(level, int) and not isinstance(level, bool):
        if 0 <= level <= 4:
            return level
        raise ValueError(f"log level {level!r} is not 0..4")
    try:
        return _LEVEL_NUMBERS[str(level).upper()]
    except KeyError:
        raise ValueError(
            f"log level {level!r} is not one of DEBUG, INFO, WARN, ERROR, FATAL"
        ) from None
