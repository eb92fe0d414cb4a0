"""`ThreadedLogger`: the Python client's resilient logger, backed by the native pipeline.

The Python client's version ran a monitored subprocess; here the library's threads do
the work: `log` only validates and enqueues (a few microseconds), undelivered entries go to
./var/log/<service>/buffer.jsonl and are replayed on the next start.
"""

from .log_levels import LOG_LEVEL_DEBUG
from .logger import Logger

__all__ = ["ThreadedLogger"]


class ThreadedLogger(Logger):
    """Same constructor as the Python client: `ThreadedLogger(service, level=LOG_LEVEL_DEBUG,
    logger_name=None)` (plus keyword-only `options`, a dict of rarch_options_set keys).

    Differences from the Python client, as its README promises: `flush()` waits until the
    entries are delivered and the logger keeps working afterwards (the Python client stopped
    its worker on flush, so later entries were lost); `stop()` flushes and releases the native
    logger, and a later call opens a new one. The level methods accept a missing message
    (sent as ""), as in the README's `logger.debug()` placeholder.
    """

    _message_default = ""

    def __init__(self, service, level=LOG_LEVEL_DEBUG, logger_name=None, *, options=None):
        super().__init__(service, level=level, logger_name=logger_name, mode="threaded",
                         options=options)

    def debug(self, message="", **kwargs):
        super().debug(message, **kwargs)

    def info(self, message="", **kwargs):
        super().info(message, **kwargs)

    def warn(self, message="", **kwargs):
        super().warn(message, **kwargs)

    warning = warn

    def error(self, message="", **kwargs):
        super().error(message, **kwargs)

    def fatal(self, message="", **kwargs):
        super().fatal(message, **kwargs)

    def stop(self, timeout=10.0):
        """Delivers what is queued (up to `timeout` seconds), then releases the native logger;
        what could not be delivered is kept in the disk buffer. Returns True if all was
        delivered."""
        ok = self.flush(timeout)
        self.close()
        return ok
