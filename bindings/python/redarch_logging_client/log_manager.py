"""The registry of the Python client: `get_logger` and `set_log_level`."""

import os
import threading

from .log_levels import LOG_LEVEL_DEBUG, LOG_LEVELS, level_number
from .logger import Logger

__all__ = ["LoggerManager", "logger_manager"]


class LoggerManager:
    def __init__(self):
        self._loggers = {}
        self._lock = threading.RLock()
        os.register_at_fork(after_in_child=self._reinit_lock)

    def _reinit_lock(self):
        self._lock = threading.RLock()

    def get_logger(self, service: str, logger_name: str = None):
        """The logger for (service, logger_name), made on first use. Its level starts at
        RARCH_LOGGING_DEFAULT_LEVEL (default DEBUG)."""
        logger_name = logger_name or service
        key = (service, logger_name)
        lg = self._loggers.get(key)
        if lg is not None:
            return lg
        with self._lock:
            lg = self._loggers.get(key)
            if lg is None:
                lg = Logger(service=service, logger_name=logger_name)
                self._loggers[key] = lg
            return lg

    def set_log_level(self, service: str, logger_name: str = None, level: str = LOG_LEVEL_DEBUG):
        """Changes the level of get_logger(service, logger_name) at run time."""
        LOG_LEVELS[level_number(level)]  # validate before making a logger
        self.get_logger(service, logger_name).level = level


# Singleton instance
logger_manager = LoggerManager()
