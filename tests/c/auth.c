/* auth.c: a wrong API key. `auth fail N` logs N entries against a server that refuses the
 * token (401): the failures are counted (auth_failures), nothing is dropped, the entries go
 * to the disk buffer, and flush reports a timeout. `auth replay N` (right key, same working
 * directory) replays the buffer: the driver then sees all N at the receiver. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 with any C library (musl) */
#include <time.h>
#include "testutil.h"

#define SERVICE "c-auth"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: auth fail|replay N\n");
        return 2;
    }
    const int n = atoi(argv[2]);
    rarch_options *o = rarch_options_new();
    EXPECT_OK(rarch_options_set(o, "close_timeout_ms", "1000"));
    EXPECT_OK(rarch_options_set(o, "backoff_initial_ms", "20"));
    EXPECT_OK(rarch_options_set(o, "backoff_max_ms", "200"));
    rarch_logger *lg = t_logger(SERVICE, "auth", o);
    rarch_options_free(o);

    if (strcmp(argv[1], "fail") == 0) {
        for (int i = 0; i < n; i++) {
            char msg[64];
            snprintf(msg, sizeof msg, "auth-%03d", i);
            EXPECT_OK(rarch_log(lg, RARCH_LEVEL_ERROR, msg, NULL, NULL, NULL, NULL, NULL));
        }
        /* Wait (with a deadline) until every entry is accounted for: refused and kept. */
        const double deadline = now_s() + 60.0;
        rarch_statistics st = t_stats(lg);
        while (!(st.auth_failures > 0 && st.buffered >= (uint64_t)n && st.queue_len == 0) &&
               now_s() < deadline) {
            rarch_flush(lg, 50); /* waits on progress; times out while the key is wrong */
            st = t_stats(lg);
        }
        t_print_stats("auth", &st);
        EXPECT(st.auth_failures > 0);
        EXPECT(st.buffered == (uint64_t)n);
        EXPECT(st.delivered == 0);
        EXPECT(st.dropped_queue_full + st.dropped_buffer_cap + st.dropped_io == 0);
        EXPECT(st.rejected == 0);
        /* Not delivered, so flush cannot succeed: it times out and says why. */
        EXPECT_STATUS(rarch_flush(lg, 200), RARCH_ERR_TIMED_OUT);
        char msg[1024];
        rarch_last_error(msg, sizeof msg);
        printf("flush: %s\n", msg);
        EXPECT(strstr(msg, "401") != NULL || strstr(msg, "auth") != NULL);
    } else {
        EXPECT_OK(rarch_flush(lg, 60000)); /* replays the buffer */
        rarch_statistics st = t_stats(lg);
        t_print_stats("replay", &st);
        EXPECT(st.replayed >= (uint64_t)n);
        EXPECT(st.auth_failures == 0);
    }
    rarch_logger_free(lg);
    return t_finish(argv[1]);
}
