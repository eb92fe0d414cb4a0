/* threads.c: T threads share one logger and log N entries each ("t<thread>-<seq>", context
 * {"thread":t,"seq":s}); then one flush with a generous timeout. Usage: threads T N [on_full]
 *
 * With on_full=block (and a long block_timeout_ms) every call must succeed and the driver
 * checks that all T*N distinct entries arrived. With the default (spill) a burst can overrun
 * the queue and its overflow: then the calls that returned RARCH_ERR_QUEUE_FULL must be
 * exactly the ones counted in dropped_queue_full, and every other entry must arrive; the
 * program prints "accepted=<n>" for the driver. */
#include <pthread.h>
#include "testutil.h"

#define SERVICE "c-threads"

static rarch_logger *lg;
static int per_thread;

static long other_errors;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    const int t = (int)(size_t)arg;
    long full = 0;
    for (int i = 0; i < per_thread; i++) {
        char msg[32], ctx[64];
        snprintf(msg, sizeof msg, "t%02d-%06d", t, i);
        snprintf(ctx, sizeof ctx, "{\"thread\":%d,\"seq\":%d}", t, i);
        rarch_status s = rarch_log(lg, RARCH_LEVEL_INFO, msg, NULL, NULL, NULL, ctx, NULL);
        if (s == RARCH_ERR_QUEUE_FULL) {
            full++;
        } else if (s != RARCH_OK) {
            pthread_mutex_lock(&mu);
            if (other_errors++ == 0) fprintf(stderr, "rarch_log: %s\n", rarch_status_str((int)s));
            pthread_mutex_unlock(&mu);
        }
    }
    return (void *)(size_t)full;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: threads T N [on_full]\n");
        return 2;
    }
    const int nthreads = atoi(argv[1]);
    per_thread = atoi(argv[2]);
    if (nthreads < 1 || nthreads > 256 || per_thread < 1) return 2;
    const char *on_full = argc == 4 ? argv[3] : "spill";
    rarch_options *o = rarch_options_new();
    EXPECT_OK(rarch_options_set(o, "on_full", on_full));
    EXPECT_OK(rarch_options_set(o, "block_timeout_ms", "60000"));
    lg = t_logger(SERVICE, "threads", o);
    rarch_options_free(o);
    pthread_t th[256];
    for (int t = 0; t < nthreads; t++)
        EXPECT(pthread_create(&th[t], NULL, worker, (void *)(size_t)t) == 0);
    uint64_t full = 0;
    for (int t = 0; t < nthreads; t++) {
        void *r = NULL;
        EXPECT(pthread_join(th[t], &r) == 0);
        full += (uint64_t)(size_t)r;
    }
    const uint64_t total = (uint64_t)nthreads * (uint64_t)per_thread;
    EXPECT(other_errors == 0);
    if (strcmp(on_full, "block") == 0) EXPECT(full == 0);
    EXPECT_OK(rarch_flush(lg, 150000));
    rarch_statistics st = t_stats(lg);
    t_print_stats("threads", &st);
    printf("accepted=%llu queue_full=%llu\n", (unsigned long long)(total - full),
           (unsigned long long)full);
    EXPECT(st.logged == total);
    EXPECT(st.dropped_queue_full == full);
    EXPECT(st.delivered == total - full);
    EXPECT(st.dropped_buffer_cap + st.dropped_io == 0);
    rarch_logger_free(lg);
    return t_finish("threads");
}
