#note: This example assumes you have set up the environment variables as shown above.
from dotenv import load_dotenv
load_dotenv()

import time
from redarch_logging_client.threading import ThreadedLogger
from redarch_logging_client.log_levels import LOG_LEVEL_DEBUG  # or any level you prefer

logger = ThreadedLogger(
    service="test-reselient-logger",
    logger_name="test_logger",
    level=LOG_LEVEL_DEBUG
)

logger.debug()   #same usage as above in the simple logger example

#it is important to flush the logs before exiting the program
#to ensure all logs are sent to the server
logger.flush()  #flushes the logs to the server
