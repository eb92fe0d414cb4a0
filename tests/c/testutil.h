/* testutil.h: shared helpers of the C test programs (driven by tests/c_programs.rs).
 * The endpoint and key come from RARCH_LOGGING_URL and RARCH_LOGGING_API_KEY; the disk buffer
 * is ./var/log/<service> under the working directory the driver gives (a fresh temp dir). */
#ifndef RARCH_TESTUTIL_H
#define RARCH_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rarch_logging.h>

static int t_failures = 0;

static inline void t_fail(const char *file, int line, const char *what) {
    char msg[1024];
    rarch_last_error(msg, sizeof msg);
    fprintf(stderr, "%s:%d: FAILED: %s (last error: %s)\n", file, line, what, msg);
    t_failures++;
}

static inline void t_fail_status(const char *file, int line, const char *call, rarch_status got,
                                 rarch_status want) {
    char msg[1024];
    rarch_last_error(msg, sizeof msg);
    fprintf(stderr, "%s:%d: FAILED: %s returned %s (%d), expected %s (%d) (last error: %s)\n", file,
            line, call, rarch_status_str((int)got), (int)got, rarch_status_str((int)want), (int)want,
            msg);
    t_failures++;
}

/* Checks a status: `call` must return `want`. */
#define EXPECT_STATUS(call, want)                                                              \
    do {                                                                                       \
        rarch_status got_ = (call);                                                            \
        if (got_ != (want)) t_fail_status(__FILE__, __LINE__, #call, got_, (want));            \
    } while (0)

#define EXPECT_OK(call) EXPECT_STATUS(call, RARCH_OK)

#define EXPECT(cond)                                                                           \
    do {                                                                                       \
        if (!(cond)) t_fail(__FILE__, __LINE__, #cond);                                        \
    } while (0)

/* A logger or exit(2) with the library's message. */
static inline rarch_logger *t_logger(const char *service, const char *name, const rarch_options *o) {
    rarch_logger *lg = rarch_logger_new(service, name, o);
    if (lg == NULL) {
        char msg[1024];
        rarch_last_error(msg, sizeof msg);
        fprintf(stderr, "rarch_logger_new(%s): %s\n", service, msg);
        exit(2);
    }
    return lg;
}

static inline rarch_statistics t_stats(const rarch_logger *lg) {
    rarch_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if (rarch_stats(lg, &st) != RARCH_OK) t_fail(__FILE__, __LINE__, "rarch_stats");
    return st;
}

static inline void t_print_stats(const char *tag, const rarch_statistics *st) {
    printf("%s stats: logged=%llu filtered=%llu delivered=%llu buffered=%llu replayed=%llu "
           "auth_failures=%llu failed_attempts=%llu dropped_queue_full=%llu dropped_buffer_cap=%llu "
           "dropped_io=%llu queue_len=%llu\n",
           tag, (unsigned long long)st->logged, (unsigned long long)st->filtered,
           (unsigned long long)st->delivered, (unsigned long long)st->buffered,
           (unsigned long long)st->replayed, (unsigned long long)st->auth_failures,
           (unsigned long long)st->failed_attempts, (unsigned long long)st->dropped_queue_full,
           (unsigned long long)st->dropped_buffer_cap, (unsigned long long)st->dropped_io,
           (unsigned long long)st->queue_len);
}

static inline int t_finish(const char *prog) {
    if (t_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", prog, t_failures);
        return 1;
    }
    printf("%s: all checks passed\n", prog);
    return 0;
}

#endif
