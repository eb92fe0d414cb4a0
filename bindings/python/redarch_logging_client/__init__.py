"""redarch_logging_client: the rarch logging client, backed by the native librarch_logging.

A drop-in replacement of the pure-Python client (same import name, functions, classes and
environment variables), plus a `logging.Handler` (`RarchHandler`).
"""

from ._native import RarchError, library_path, version as library_version
from .log_levels import (
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_ERROR,
    LOG_LEVEL_FATAL,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVELS,
)
from .logger import Logger
from .log_manager import LoggerManager, logger_manager
from .threading import ThreadedLogger
from .handler import RarchHandler
from .events import Event, EventKind

__version__ = "0.1.0"

__all__ = [
    "LOG_LEVEL_DEBUG", "LOG_LEVEL_INFO", "LOG_LEVEL_WARN", "LOG_LEVEL_ERROR", "LOG_LEVEL_FATAL",
    "LOG_LEVELS", "Logger", "ThreadedLogger", "RarchHandler", "RarchError", "get_logger",
    "set_log_level", "log", "log_debug", "log_info", "log_warn", "log_error", "log_fatal",
    "logger_manager", "library_path", "library_version", "Event", "EventKind",
]

# Logger manager access
get_logger = logger_manager.get_logger
set_log_level = logger_manager.set_log_level

# The flat functions use one logger per service, at RARCH_LOGGING_DEFAULT_LEVEL (the Python
# client made a new Logger, with a new connection, for every call).
_flat = {}


def _flat_logger(service):
    lg = _flat.get(service)
    if lg is None:
        lg = _flat.setdefault(service, Logger(service=service))
    return lg


def log(level, service, message, user_id=None, tenant_id=None, request_id=None, context=None,
        client_log_datetime=None):
    _flat_logger(service)._send(level, message, user_id, tenant_id, request_id, context,
                                client_log_datetime)


def log_debug(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
    _flat_logger(service)._log(0, message, user_id, tenant_id, request_id, context,
                               client_log_datetime)


def log_info(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
             client_log_datetime=None):
    _flat_logger(service)._log(1, message, user_id, tenant_id, request_id, context,
                               client_log_datetime)


def log_warn(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
             client_log_datetime=None):
    _flat_logger(service)._log(2, message, user_id, tenant_id, request_id, context,
                               client_log_datetime)


def log_error(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
    _flat_logger(service)._log(3, message, user_id, tenant_id, request_id, context,
                               client_log_datetime)


def log_fatal(service, message, *, user_id=None, tenant_id=None, request_id=None, context=None,
              client_log_datetime=None):
    _flat_logger(service)._log(4, message, user_id, tenant_id, request_id, context,
                               client_log_datetime)
