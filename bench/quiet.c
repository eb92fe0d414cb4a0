/*
 * quiet: the library's footprint in a host process that logs now and then (bench/quiet.sh).
 *
 *   quiet idle   URL KEY BUFDIR COUNT SETTLE_MS MEASURE_MS
 *       COUNT typical entries back to back, rarch_flush, SETTLE_MS of nothing, then: the
 *       process's threads other than this one (the library's) and their context switches
 *       (voluntary and not, from /proc/self/task/<tid>/status) over MEASURE_MS: the wake-ups a
 *       second of a library with nothing to do.
 *   quiet single URL KEY BUFDIR PAUSE_US COUNT
 *       One typical entry after each pause of PAUSE_US (a service that logs now and then), and
 *       after every other pause an empty call into the library (rarch_get_level) instead, the
 *       floor; then 20,000 calls back to back (the warm median). Medians and p90 in ns.
 *
 * One line "RESULT quiet=<mode> key=value ..." on stdout. Linked against the library under
 * test (bench/quiet.sh links one copy per library, each with its rpath).
 */
#define _GNU_SOURCE
#include "rarch_logging.h"
#include "typical_entry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "quiet: %s\n", what);
    exit(2);
}

static rarch_logger *logger(const char *url, const char *key, const char *bufdir) {
    rarch_options *o = rarch_options_new();
    if (!o) die("rarch_options_new");
    if (rarch_options_set(o, "url", url) || rarch_options_set(o, "api_key", key) ||
        rarch_options_set(o, "buffer_dir", bufdir) ||
        rarch_options_set(o, "close_timeout_ms", "2000"))
        die("rarch_options_set");
    rarch_logger *l = NULL;
    if (rarch_logger_open("quiet-bench", "bench", o, &l) != RARCH_OK) die("rarch_logger_open");
    rarch_options_free(o);
    return l;
}

static int log_typical(rarch_logger *l) {
    return rarch_log(l, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* The threads of this process other than the caller, and the sum of their context switches. */
static void others(long self, int *threads, unsigned long long *switches) {
    *threads = 0;
    *switches = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) die("/proc/self/task");
    struct dirent *e;
    while ((e = readdir(d))) {
        long tid = atol(e->d_name);
        if (tid <= 0 || tid == self) continue;
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
        FILE *f = fopen(path, "r");
        if (!f) continue; /* exited meanwhile */
        (*threads)++;
        while (fgets(line, sizeof line, f)) {
            unsigned long long n;
            if (sscanf(line, "voluntary_ctxt_switches: %llu", &n) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %llu", &n) == 1)
                *switches += n;
        }
        fclose(f);
    }
    closedir(d);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint64_t pct(uint64_t *v, size_t n, double p) {
    qsort(v, n, sizeof *v, cmp_u64);
    return n ? v[(size_t)(p * (double)(n - 1))] : 0;
}

static int cmd_idle(char **argv) {
    rarch_logger *l = logger(argv[2], argv[3], argv[4]);
    long count = atol(argv[5]), settle_ms = atol(argv[6]), measure_ms = atol(argv[7]);
    long refused = 0;
    for (long i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) refused++;
    int fl = rarch_flush(l, 60000);
    sleep_us(settle_ms * 1000);
    long self = syscall(SYS_gettid);
    int t0, t1;
    unsigned long long s0, s1;
    others(self, &t0, &s0);
    sleep_us(measure_ms * 1000);
    others(self, &t1, &s1);
    /* Threads that exited meanwhile took their switches with them: counted as none. */
    double per_s = s1 >= s0 ? (double)(s1 - s0) * 1000.0 / (double)measure_ms : 0.0;
    printf("RESULT quiet=idle count=%ld refused=%ld flush=%d settle_ms=%ld threads=%d "
           "threads_after=%d wakeups_per_s=%.1f\n",
           count, refused, fl, settle_ms, t0, t1, per_s);
    rarch_logger_free(l);
    return 0;
}

static int cmd_single(char **argv) {
    rarch_logger *l = logger(argv[2], argv[3], argv[4]);
    long pause_us = atol(argv[5]);
    size_t count = strtoull(argv[6], NULL, 10);
    uint64_t *one = calloc(count, 8), *floor_ = calloc(count, 8), *warm = calloc(20000, 8);
    if (!one || !floor_ || !warm) die("out of memory");
    for (int i = 0; i < 200; i++) log_typical(l);
    rarch_flush(l, 10000);
    size_t errors = 0;
    volatile int sink = 0;
    for (size_t i = 0; i < 2 * count; i++) {
        sleep_us(pause_us);
        uint64_t t0 = now_ns();
        if (i % 2) {
            sink += rarch_get_level(l);
            floor_[i / 2] = now_ns() - t0;
        } else {
            if (log_typical(l) != RARCH_OK) errors++;
            one[i / 2] = now_ns() - t0;
        }
    }
    rarch_flush(l, 10000);
    for (int i = 0; i < 20000; i++) {
        uint64_t t0 = now_ns();
        log_typical(l);
        warm[i] = now_ns() - t0;
    }
    (void)sink;
    uint64_t p50 = pct(one, count, 0.5), p90 = pct(one, count, 0.9);
    uint64_t f50 = pct(floor_, count, 0.5), w50 = pct(warm, 20000, 0.5);
    uint64_t bound = 4 * f50 > 2 * w50 ? 4 * f50 : 2 * w50;
    printf("RESULT quiet=single pause_us=%ld count=%zu errors=%zu one_p50=%llu one_p90=%llu "
           "floor_p50=%llu warm_p50=%llu bound=%llu\n",
           pause_us, count, errors, (unsigned long long)p50, (unsigned long long)p90,
           (unsigned long long)f50, (unsigned long long)w50, (unsigned long long)bound);
    rarch_logger_free(l);
    free(one);
    free(floor_);
    free(warm);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 8 && !strcmp(argv[1], "idle")) return cmd_idle(argv);
    if (argc == 7 && !strcmp(argv[1], "single")) return cmd_single(argv);
    fprintf(stderr, "usage: quiet idle URL KEY BUFDIR COUNT SETTLE_MS MEASURE_MS\n"
                    "       quiet single URL KEY BUFDIR PAUSE_US COUNT\n");
    return 2;
}
