/* threaded.c: several threads share one logger (every call but rarch_logger_free is
 * thread-safe), then one flush. Uses the convenience macros of rarch_logging_macros.h.
 * Build: cc threaded.c $(pkg-config --cflags --libs rarch-logging) -pthread -o threaded */
#include <pthread.h>
#include <stdio.h>
#include <rarch_logging.h>
#include <rarch_logging_macros.h>

#define THREADS 4
#define PER_THREAD 25

static rarch_logger *log_;

static void *work(void *arg) {
    int id = (int)(size_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char msg[64], ctx[64];
        snprintf(msg, sizeof msg, "worker %d step %d", id, i);
        snprintf(ctx, sizeof ctx, "{\"worker\":%d,\"step\":%d}", id, i);
        rarch_status s = RARCH_INFO_CTX(log_, msg, ctx);
        if (s != RARCH_OK) fprintf(stderr, "rarch_log: %s\n", rarch_status_str(s));
    }
    return NULL;
}

int main(void) {
    log_ = rarch_logger_new("threaded-example", "workers", NULL);
    if (log_ == NULL) {
        char why[512];
        rarch_last_error(why, sizeof why);
        fprintf(stderr, "rarch_logger_new: %s\n", why);
        return 1;
    }
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&th[i], NULL, work, (void *)(size_t)i);
    for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
    RARCH_WARN(log_, "all workers done");

    rarch_status s = rarch_flush(log_, 10000);
    rarch_statistics st = rarch_statistics_init();
    rarch_stats(log_, &st);
    printf("logged %llu, delivered %llu (%s)\n", (unsigned long long)st.logged,
           (unsigned long long)st.delivered, rarch_status_str(s));
    rarch_logger_free(log_);
    return s == RARCH_OK ? 0 : 1;
}
