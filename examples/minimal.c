/* minimal.c: the four calls. The endpoint and key come from the environment:
 *   RARCH_LOGGING_URL (default http://localhost:8080/log) and RARCH_LOGGING_API_KEY.
 * Build: cc minimal.c $(pkg-config --cflags --libs rarch-logging) -o minimal */
#include <stdio.h>
#include <rarch_logging.h>

int main(void) {
    rarch_logger *log = rarch_logger_new("minimal-example", NULL, NULL);
    if (log == NULL) {
        char why[512];
        rarch_last_error(why, sizeof why);
        fprintf(stderr, "rarch_logger_new: %s\n", why);
        return 1;
    }
    rarch_status s = rarch_log(log, RARCH_LEVEL_INFO, "hello from C", "user_123", NULL, NULL,
                               "{\"example\":\"minimal\"}", NULL);
    if (s != RARCH_OK) fprintf(stderr, "rarch_log: %s\n", rarch_status_str(s));

    s = rarch_flush(log, 5000); /* wait up to 5 s for delivery */
    if (s != RARCH_OK) {
        char why[512];
        rarch_last_error(why, sizeof why);
        fprintf(stderr, "rarch_flush: %s: %s\n", rarch_status_str(s), why);
    }
    rarch_logger_free(log);
    return s == RARCH_OK ? 0 : 1;
}
