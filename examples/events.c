/* events.c: what happened to the entries. With the option events=all the library records an
 * event per delivered or dead-lettered entry (and outages, drops, ...); the application takes
 * them with rarch_poll_events on its own thread (no callback ever runs on a library thread).
 * The endpoint and key come from the environment (RARCH_LOGGING_URL, RARCH_LOGGING_API_KEY).
 * Build: cc events.c $(pkg-config --cflags --libs rarch-logging) -o events */
#include <inttypes.h>
#include <stdio.h>
#include <rarch_logging.h>

static const char *kind_name(int kind) {
    switch (kind) {
    case RARCH_EVENT_DELIVERED: return "DELIVERED";
    case RARCH_EVENT_DEAD_LETTERED: return "DEAD_LETTERED";
    case RARCH_EVENT_DROPPED: return "DROPPED";
    case RARCH_EVENT_OUTAGE_STARTED: return "OUTAGE_STARTED";
    case RARCH_EVENT_OUTAGE_ENDED: return "OUTAGE_ENDED";
    case RARCH_EVENT_IO_ERROR: return "IO_ERROR";
    case RARCH_EVENT_RATE_LIMITED: return "RATE_LIMITED";
    case RARCH_EVENT_EVENTS_LOST: return "EVENTS_LOST";
    default: return "UNKNOWN";
    }
}

static int fail(const char *what) {
    char why[512];
    rarch_last_error(why, sizeof why);
    fprintf(stderr, "%s: %s\n", what, why);
    return 1;
}

int main(void) {
    rarch_options *opts = rarch_options_new();
    if (opts == NULL) return fail("rarch_options_new");
    /* "problems" would report every kind but DELIVERED. */
    if (rarch_options_set(opts, "events", "all") != RARCH_OK) return fail("rarch_options_set");
    rarch_logger *log = NULL;
    rarch_status s = rarch_logger_open("events-example", NULL, opts, &log);
    rarch_options_free(opts);
    if (s != RARCH_OK) return fail("rarch_logger_open");

    const char *orders[] = {"order-1", "order-2", "order-3"};
    for (int i = 0; i < 3; i++) {
        s = rarch_log(log, RARCH_LEVEL_INFO, "order placed", NULL, NULL, orders[i], NULL, NULL);
        if (s != RARCH_OK) fprintf(stderr, "rarch_log: %s\n", rarch_status_str(s));
    }
    s = rarch_flush(log, 5000);
    if (s != RARCH_OK) fprintf(stderr, "rarch_flush: %s\n", rarch_status_str(s));

    /* Everything the flush waited for has its event now. A long-running program would poll
     * from its own loop, say every 100 ms. */
    rarch_event evs[16];
    size_t n;
    while ((n = rarch_poll_events(log, evs, sizeof evs / sizeof evs[0], sizeof evs[0])) > 0) {
        for (size_t i = 0; i < n; i++) {
            printf("%s status=%d count=%" PRIu64 " request_id=%s message=%s\n",
                   kind_name(evs[i].kind), evs[i].status, evs[i].count, evs[i].request_id,
                   evs[i].message);
        }
    }
    rarch_logger_free(log);
    return s == RARCH_OK ? 0 : 1;
}
