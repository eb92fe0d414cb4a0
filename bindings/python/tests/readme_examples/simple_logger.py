#Note: This example assumes you have set up the environment variables as shown above.
from dotenv import load_dotenv
load_dotenv()

from redarch_logging_client import get_logger, set_log_level
from redarch_logging_client import LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_FATAL

print("Sending test logs...")

# Initialize logger
logger = get_logger(service="test-service", logger_name="test_logger")

# Set log level to DEBUG
set_log_level(service="test-service", logger_name="test_logger", level=LOG_LEVEL_DEBUG)

# Define context for this simulated request
user_id = "user_123"
tenant_id = "tenant_abc"
request_id = "req_456"
context = {
    "action": "test_logging",
    "details": {
        "step": "demo",
        "test_case": "full_context"
    }
}

# Send logs at various levels with context
logger.info("This is a test log message.", user_id=user_id, tenant_id=tenant_id, request_id=request_id, context=context)
logger.debug("This is a test debug message.", user_id=user_id, tenant_id=tenant_id, request_id=request_id, context=context)
logger.warn("This is a test warning message.", user_id=user_id, tenant_id=tenant_id, request_id=request_id, context=context)
logger.error("This is a test error message.", user_id=user_id, tenant_id=tenant_id, request_id=request_id, context=context)
logger.fatal("This is a test fatal error.", user_id=user_id, tenant_id=tenant_id, request_id=request_id, context=context)

print("Done sending logs..")
