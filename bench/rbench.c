/*
 * rbench: the C side of the rarch-logging benchmark suite (driven by bench/run.sh).
 *
 *   rbench caller     URL KEY BUFDIR THREADS COUNT RATE DURABLE LABEL
 *   rbench throughput URL KEY BUFDIR CONNECTIONS COUNT ON_FULL
 *   rbench degraded   URL KEY BUFDIR COUNT [FLUSH_TIMEOUT_S]   (the default options against a
 *                     server that fails a share of requests; bench/run.sh sets the fault)
 *   rbench latency    URL KEY BUFDIR COUNT FLUSH_TIMEOUT_S   (issue 16: as degraded, against a
 *                     server that delays every answer; also threads, RSS, CPU of the process)
 *   rbench cpu        URL KEY BUFDIR RATE COUNT [FLUSH_TIMEOUT_S]   (issue 21: COUNT entries at
 *                     RATE/s, 0 = tight loop; CPU and context switches per delivered entry)
 *   rbench sink       SINK URL KEY BUFDIR COUNT FLUSH_TIMEOUT_S [STATS_URL FIELD WAIT_S]
 *                     (issue 17: the default options with sink=SINK, rarch or otlp; KEY "-"
 *                     sets no api_key; COUNT entries in a tight loop, then rarch_flush; then
 *                     polls STATS_URL, http://host:port/path, until its JSON number FIELD is
 *                     at least COUNT or WAIT_S have passed: the end-to-end time)
 *   rbench burst      URL KEY BUFDIR COUNT FLUSH_TIMEOUT_S   (issue 18: the default options,
 *                     COUNT entries in a tight loop, each call timed; the slowest calls, those
 *                     refused, the caller's context switches; then rarch_flush and the stats)
 *   rbench memory     URL KEY BUFDIR COUNT           (URL: a port where nothing listens)
 *   rbench replay     URL KEY BUFDIR                 (new logger on the same BUFDIR, flush)
 *   rbench blocking   URL KEY BUFDIR THREADS COUNT
 *   rbench pause      URL KEY BUFDIR PAUSE_US BURSTS (first call of a burst after a pause,
 *                     and an empty call after the same pause as its floor)
 *
 * Every subcommand prints one line "RESULT bench=<name> key=value ..." on stdout (read by
 * bench/report.py) and human notes on stderr. Times are CLOCK_MONOTONIC nanoseconds, nothing
 * subtracted: the floor (an empty call into the library, rarch_get_level) and the cost of the
 * clock itself are measured the same way, in the same threads, and reported beside it.
 */
#define _GNU_SOURCE
#include "rarch_logging.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "typical_entry.h"

static void die(const char *what) {
    char buf[512];
    rarch_last_error(buf, sizeof buf);
    fprintf(stderr, "rbench: %s: %s\n", what, buf);
    exit(2);
}

static void set(rarch_options *o, const char *k, const char *v) {
    if (rarch_options_set(o, k, v) != RARCH_OK) die(k);
}

static rarch_options *base_options(const char *url, const char *key, const char *bufdir) {
    rarch_options *o = rarch_options_new();
    if (!o) die("rarch_options_new");
    set(o, "url", url);
    set(o, "api_key", key);
    set(o, "buffer_dir", bufdir);
    return o;
}

/* RBENCH_OPTS="k=v,k=v" sets more options, last (e.g. "concurrency=fixed,connections=2"),
 * for side-by-side runs of one command with other settings. */
static void extra_options(rarch_options *o) {
    const char *env = getenv("RBENCH_OPTS");
    if (!env || !*env) return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", env);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) die("RBENCH_OPTS: k=v expected");
        *eq = 0;
        set(o, kv, eq + 1);
    }
}

static rarch_logger *new_logger(rarch_options *o) {
    extra_options(o);
    rarch_logger *l = rarch_logger_new("bench", "bench.main", o);
    if (!l) die("rarch_logger_new");
    return l;
}

static int log_typical(rarch_logger *l) {
    return rarch_log(l, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v and prints p50/p99/p99.9/max/mean with the given prefix. */
static void print_pcts(const char *prefix, uint64_t *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_u64);
    long double sum = 0;
    for (size_t i = 0; i < n; i++) sum += v[i];
#define PCT(p) v[(size_t)((double)(n - 1) * (p))]
    printf(" %s_p50=%llu %s_p99=%llu %s_p999=%llu %s_max=%llu %s_mean=%.0Lf", prefix,
           (unsigned long long)PCT(0.50), prefix, (unsigned long long)PCT(0.99), prefix,
           (unsigned long long)PCT(0.999), prefix, (unsigned long long)v[n - 1], prefix,
           n ? sum / n : 0);
#undef PCT
}

static void print_stats(rarch_logger *l, const char *prefix) {
    rarch_statistics s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    if (rarch_stats(l, &s) != RARCH_OK) die("rarch_stats");
    printf(" %slogged=%llu %sdelivered=%llu %sbuffered=%llu %sreplayed=%llu"
           " %sdropped_queue_full=%llu %sdropped_buffer_cap=%llu %sdropped_io=%llu"
           " %sfailed_attempts=%llu %squeue_len=%llu",
           prefix, (unsigned long long)s.logged, prefix, (unsigned long long)s.delivered,
           prefix, (unsigned long long)s.buffered, prefix, (unsigned long long)s.replayed,
           prefix, (unsigned long long)s.dropped_queue_full, prefix,
           (unsigned long long)s.dropped_buffer_cap, prefix, (unsigned long long)s.dropped_io,
           prefix, (unsigned long long)s.failed_attempts, prefix,
           (unsigned long long)s.queue_len);
    printf(" %sretried=%llu %srejected=%llu %scorrupt=%llu %sauth_failures=%llu %spoisoned=%llu",
           prefix, (unsigned long long)s.retried, prefix, (unsigned long long)s.rejected, prefix,
           (unsigned long long)s.corrupt, prefix, (unsigned long long)s.auth_failures, prefix,
           (unsigned long long)s.poisoned);
    printf(" %sconcurrency_limit=%llu %srtt_p50_us=%llu", prefix,
           (unsigned long long)s.concurrency_limit, prefix, (unsigned long long)s.rtt_p50_us);
}

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* ---------------------------------------------------------------- caller cost */

struct caller_arg {
    rarch_logger *l;
    size_t count;
    double rate; /* entries/s per thread; 0 = back to back */
    uint64_t *lat, *floor_, *clock_;
    size_t errors;
    int first_error;
    pthread_barrier_t *bar;
};

#define BURST 100

static void *caller_thread(void *p) {
    struct caller_arg *a = p;
    volatile int sink = 0;
    if (a->rate == 0) {
        /* Back to back: first the same number of calls untimed, then a flush (so that the
         * buffers are back in the pool), so that what is timed is the steady state. Without
         * it, the first burst of a fresh thread also pays for glibc growing the thread's
         * malloc arena (an mprotect call every few pages, about 7% of the calls here). */
        for (size_t i = 0; i < a->count; i++) log_typical(a->l);
        rarch_flush(a->l, 30000);
    }
    pthread_barrier_wait(a->bar);
    uint64_t start = now_ns();
    for (size_t i = 0; i < a->count; i++) {
        /* The clock alone, the floor, the call: all timed the same way, back to back. */
        uint64_t t0 = now_ns();
        uint64_t t1 = now_ns();
        sink += rarch_get_level(a->l);
        uint64_t t2 = now_ns();
        int st = log_typical(a->l);
        uint64_t t3 = now_ns();
        a->clock_[i] = t1 - t0;
        a->floor_[i] = t2 - t1;
        a->lat[i] = t3 - t2;
        if (st != RARCH_OK) {
            if (!a->errors) a->first_error = st;
            a->errors++;
        }
        if (a->rate > 0 && (i + 1) % BURST == 0) {
            /* Paced in bursts: BURST calls back to back, then sleep until the schedule. */
            uint64_t due = start + (uint64_t)((double)(i + 1) * 1e9 / a->rate);
            struct timespec ts = {(time_t)(due / 1000000000ull), (long)(due % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
    }
    (void)sink;
    return NULL;
}

static int cmd_caller(int argc, char **argv) {
    if (argc != 10) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    int threads = atoi(argv[5]);
    size_t count = strtoull(argv[6], NULL, 10);
    double rate = atof(argv[7]);
    int durable = atoi(argv[8]);
    const char *label = argv[9];
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "durable", durable ? "true" : "false");
    set(o, "close_timeout_ms", "200");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);

    size_t total = count * (size_t)threads;
    uint64_t *lat = calloc(total, 8), *fl = calloc(total, 8), *ck = calloc(total, 8);
    if (!lat || !fl || !ck) die("out of memory");
    /* Warm-up: first-call costs (thread-local state, the clock page) are not what we measure. */
    for (int i = 0; i < 200; i++) log_typical(l);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    pthread_t tid[64];
    struct caller_arg args[64];
    for (int t = 0; t < threads; t++) {
        args[t] = (struct caller_arg){l, count, rate, lat + t * count, fl + t * count,
                                      ck + t * count, 0, 0, &bar};
        pthread_create(&tid[t], NULL, caller_thread, &args[t]);
    }
    uint64_t t0 = now_ns();
    size_t errors = 0;
    int first_error = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        if (args[t].errors && !errors) first_error = args[t].first_error;
        errors += args[t].errors;
    }
    uint64_t wall = now_ns() - t0;
    printf("RESULT bench=caller scenario=%s durable=%d threads=%d count=%zu rate=%.0f "
           "wall_ms=%.1f errors=%zu first_error=%d",
           label, durable, threads, total, rate, wall / 1e6, errors, first_error);
    /* The same calls split in two: the first of each burst (after the pause, with caches
     * that other work and other tenants have had time to evict) and the rest. */
    if (rate > 0) {
        uint64_t *first = calloc(total, 8), *rest = calloc(total, 8);
        if (!first || !rest) die("out of memory");
        size_t nf = 0, nr = 0;
        for (size_t i = 0; i < total; i++) {
            if ((i % count) % BURST == 0) first[nf++] = lat[i];
            else rest[nr++] = lat[i];
        }
        print_pcts("first", first, nf);
        print_pcts("rest", rest, nr);
        free(first);
        free(rest);
    }
    print_pcts("log", lat, total);
    print_pcts("floor", fl, total);
    print_pcts("clock", ck, total);
    print_stats(l, "");
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    return 0;
}

/* ---------------------------------------------------------------- delivery throughput */

static int cmd_throughput(int argc, char **argv) {
    if (argc != 8) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4], *conns = argv[5];
    size_t count = strtoull(argv[6], NULL, 10);
    const char *on_full = argv[7];
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "connections", conns);
    set(o, "on_full", on_full);
    if (strcmp(on_full, "block") == 0) set(o, "block_timeout_ms", "10000");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    size_t errors = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) errors++;
    uint64_t t1 = now_ns();
    int st = rarch_flush(l, 300000);
    uint64_t t2 = now_ns();
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench throughput: flush: %s\n", buf);
    }
    double secs = (t2 - t0) / 1e9;
    printf("RESULT bench=throughput connections=%s on_full=%s count=%zu errors=%zu flush=%d "
           "log_ms=%.1f total_ms=%.1f rate=%.0f",
           conns, on_full, count, errors, st, (t1 - t0) / 1e6, (t2 - t0) / 1e6, count / secs);
    print_stats(l, "");
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    return 0;
}

/* ---------------------------------------------------------------- degraded server */

/* As a new user would log: the default options (connections=2, on_full=spill), COUNT typical
 * entries in a tight loop from one thread, then rarch_flush(FLUSH_TIMEOUT_S, default 300).
 * bench/run.sh has set the receiver's fault (a share of 503s, of connection resets) and reads
 * the receiver's counters and the buffer files after this process has ended. The stats are read
 * when flush returns, before rarch_logger_free; close_timeout_ms=0, so that free writes what is
 * left to disk at once instead of delivering more after the clock stopped. */
static int cmd_degraded(int argc, char **argv) {
    if (argc != 6 && argc != 7) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    size_t count = strtoull(argv[5], NULL, 10);
    long timeout_s = argc == 7 ? atol(argv[6]) : 300;
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "close_timeout_ms", "0");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    size_t errors = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) errors++;
    uint64_t t1 = now_ns();
    int st = rarch_flush(l, (uint32_t)(timeout_s * 1000));
    uint64_t t2 = now_ns();
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench degraded: flush: %s\n", buf);
    }
    printf("RESULT bench=degraded count=%zu errors=%zu flush=%d flush_timeout_s=%ld log_ms=%.1f "
           "total_ms=%.1f",
           count, errors, st, timeout_s, (t1 - t0) / 1e6, (t2 - t0) / 1e6);
    print_stats(l, "");
    fflush(stdout);
    uint64_t t3 = now_ns();
    rarch_logger_free(l);
    printf(" free_ms=%.1f\n", (now_ns() - t3) / 1e6);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- what the process costs */

/* Threads of the process (/proc/self/status "Threads:"), or -1. */
static long status_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Threads:", 8) == 0) {
            v = strtol(line + 8, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* A thread that reads the process's thread count every 50 ms and keeps the highest, without
 * counting itself. It only reads /proc: 20 small reads a second; what that costs (its own CPU
 * and context switches, RUSAGE_THREAD over its life) is printed as sampler_*, for the report
 * to take out of the process's figures. */
struct sampler {
    pthread_t tid;
    volatile int stop;
    long threads_max;
    uint64_t cpu_us, csw;
};

static void *sampler_thread(void *p) {
    struct sampler *s = p;
    while (!s->stop) {
        long t = status_threads() - 1;
        if (t > s->threads_max) s->threads_max = t;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    s->cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    s->csw = (uint64_t)(ru.ru_nvcsw + ru.ru_nivcsw);
    return NULL;
}

/* RBENCH_NO_SAMPLER=1 (set for the strace runs, whose system calls it would add to): no
 * sampling, threads_max is then the count when flush returned. */
static void sampler_start(struct sampler *s) {
    s->stop = 0;
    s->threads_max = 0;
    s->tid = 0;
    s->cpu_us = s->csw = 0;
    const char *no = getenv("RBENCH_NO_SAMPLER");
    if (no && *no && strcmp(no, "0") != 0) return;
    if (pthread_create(&s->tid, NULL, sampler_thread, s) != 0) die("pthread_create");
}

/* The threads of the process when called, without the sampler. */
static long sampler_threads_now(const struct sampler *s) {
    return status_threads() - (s->tid ? 1 : 0);
}

static void sampler_stop(struct sampler *s) {
    s->stop = 1;
    if (s->tid) pthread_join(s->tid, NULL);
}

struct usage {
    uint64_t user_us, sys_us, nvcsw, nivcsw;
};

static struct usage usage_of(int who) {
    struct rusage ru;
    getrusage(who, &ru);
    return (struct usage){(uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec,
                          (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec,
                          (uint64_t)ru.ru_nvcsw, (uint64_t)ru.ru_nivcsw};
}

/* Prints the difference b - a of the process's usage (user and system CPU in µs, voluntary and
 * involuntary context switches), then the same for the calling thread ("caller_"). */
static void print_usage(struct usage pa, struct usage pb, struct usage ta, struct usage tb) {
    printf(" cpu_user_us=%llu cpu_sys_us=%llu nvcsw=%llu nivcsw=%llu caller_cpu_us=%llu"
           " caller_nvcsw=%llu caller_nivcsw=%llu",
           (unsigned long long)(pb.user_us - pa.user_us),
           (unsigned long long)(pb.sys_us - pa.sys_us), (unsigned long long)(pb.nvcsw - pa.nvcsw),
           (unsigned long long)(pb.nivcsw - pa.nivcsw),
           (unsigned long long)(tb.user_us - ta.user_us + tb.sys_us - ta.sys_us),
           (unsigned long long)(tb.nvcsw - ta.nvcsw), (unsigned long long)(tb.nivcsw - ta.nivcsw));
}

/* ---------------------------------------------------------------- distant server */

/* Issue 16: as `degraded` (COUNT typical entries in a tight loop from one thread, the options
 * of RBENCH_OPTS over the defaults, then rarch_flush(FLUSH_TIMEOUT_S), close_timeout_ms=0),
 * against a receiver that bench/run.sh has told to delay every answer. Also what the process
 * costs: its threads (the most seen while it ran, sampled every 50 ms, and when flush returned),
 * VmRSS and VmHWM when flush returned, and its CPU (getrusage, all threads) and context
 * switches from the first rarch_log until flush returned. */
static int cmd_latency(int argc, char **argv) {
    if (argc != 7) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    size_t count = strtoull(argv[5], NULL, 10);
    long timeout_s = atol(argv[6]);
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "close_timeout_ms", "0");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    struct sampler sm;
    sampler_start(&sm);
    size_t errors = 0;
    struct usage pa = usage_of(RUSAGE_SELF), ta = usage_of(RUSAGE_THREAD);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) errors++;
    uint64_t t1 = now_ns();
    int st = rarch_flush(l, (uint32_t)(timeout_s * 1000));
    uint64_t t2 = now_ns();
    struct usage pb = usage_of(RUSAGE_SELF), tb = usage_of(RUSAGE_THREAD);
    long threads_end = sampler_threads_now(&sm);
    sampler_stop(&sm);
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench latency: flush: %s\n", buf);
    }
    printf("RESULT bench=latency count=%zu errors=%zu flush=%d flush_timeout_s=%ld log_ms=%.1f "
           "total_ms=%.1f threads_max=%ld threads_end=%ld rss_kib=%ld hwm_kib=%ld",
           count, errors, st, timeout_s, (t1 - t0) / 1e6, (t2 - t0) / 1e6,
           sm.threads_max > threads_end ? sm.threads_max : threads_end, threads_end,
           status_kib("VmRSS"), status_kib("VmHWM"));
    print_usage(pa, pb, ta, tb);
    printf(" sampler_cpu_us=%llu sampler_csw=%llu", (unsigned long long)sm.cpu_us,
           (unsigned long long)sm.csw);
    print_stats(l, "");
    fflush(stdout);
    uint64_t t3 = now_ns();
    rarch_logger_free(l);
    printf(" free_ms=%.1f\n", (now_ns() - t3) / 1e6);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- CPU per delivered entry */

/* Issue 21: COUNT typical entries from one thread at RATE entries/s (0: in a tight loop), then
 * rarch_flush(FLUSH_TIMEOUT_S, default 60); the default options and RBENCH_OPTS. Paced on a
 * tick of max(1 ms, 1/RATE): at each tick the caller logs the entries due by then and sleeps to
 * the next (clock_nanosleep, absolute), so the caller itself wakes at most 1,000 times a
 * second. From the first rarch_log until flush returns: the process's CPU (getrusage
 * RUSAGE_SELF: user + system, every thread, those that ended too) and context switches, and
 * the same for the calling thread alone (RUSAGE_THREAD), so that the sender side is the
 * difference. */
static int cmd_cpu(int argc, char **argv) {
    if (argc != 7 && argc != 8) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    double rate = atof(argv[5]);
    size_t count = strtoull(argv[6], NULL, 10);
    long timeout_s = argc == 8 ? atol(argv[7]) : 60;
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "close_timeout_ms", "0");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    struct sampler sm;
    sampler_start(&sm);
    size_t errors = 0;
    uint64_t tick = rate > 0 ? (uint64_t)(1e9 / rate) : 0, sleeps = 0;
    if (rate > 0 && tick < 1000000) tick = 1000000;
    struct usage pa = usage_of(RUSAGE_SELF), ta = usage_of(RUSAGE_THREAD);
    uint64_t t0 = now_ns();
    if (rate <= 0) {
        for (size_t i = 0; i < count; i++)
            if (log_typical(l) != RARCH_OK) errors++;
    } else {
        size_t done = 0;
        for (uint64_t t = t0; done < count; t += tick, sleeps++) {
            /* Entries due by this tick: those whose time (i / rate) has come, the first at t0. */
            size_t due = (size_t)((double)(t - t0) * rate / 1e9) + 1;
            if (due > count) due = count;
            for (; done < due; done++)
                if (log_typical(l) != RARCH_OK) errors++;
            uint64_t next = t + tick;
            struct timespec ts = {(time_t)(next / 1000000000ull), (long)(next % 1000000000ull)};
            while (done < count &&
                   clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
    }
    uint64_t t1 = now_ns();
    int st = rarch_flush(l, (uint32_t)(timeout_s * 1000));
    uint64_t t2 = now_ns();
    struct usage pb = usage_of(RUSAGE_SELF), tb = usage_of(RUSAGE_THREAD);
    long threads_end = sampler_threads_now(&sm);
    sampler_stop(&sm);
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench cpu: flush: %s\n", buf);
    }
    printf("RESULT bench=cpu rate_target=%.0f count=%zu errors=%zu flush=%d log_ms=%.1f "
           "total_ms=%.1f caller_sleeps=%llu threads_max=%ld threads_end=%ld rss_kib=%ld "
           "hwm_kib=%ld",
           rate, count, errors, st, (t1 - t0) / 1e6, (t2 - t0) / 1e6,
           (unsigned long long)(sleeps > 0 ? sleeps - 1 : 0),
           sm.threads_max > threads_end ? sm.threads_max : threads_end, threads_end,
           status_kib("VmRSS"), status_kib("VmHWM"));
    print_usage(pa, pb, ta, tb);
    printf(" sampler_cpu_us=%llu sampler_csw=%llu", (unsigned long long)sm.cpu_us,
           (unsigned long long)sm.csw);
    print_stats(l, "");
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    return 0;
}

/* ---------------------------------------------------------------- sinks (issue 17) */

/* GET http://HOST:PORT/PATH (HTTP/1.0, loopback, no keep-alive) and the integer after
 * "FIELD": in its body, or -1. The receiver's /stats and /otlp/stats are small JSON objects. */
static long long http_get_field(const char *url, const char *field) {
    const char *h = strncmp(url, "http://", 7) == 0 ? url + 7 : url;
    char host[256];
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    if (hl >= sizeof host) return -1;
    memcpy(host, h, hl);
    host[hl] = 0;
    const char *path = slash ? slash : "/";
    char *colon = strrchr(host, ':');
    if (!colon) return -1;
    *colon = 0;
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n", path, host, colon + 1);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[8192];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0) got += (size_t)r;
    close(fd);
    buf[got] = 0;
    char key[128];
    snprintf(key, sizeof key, "\"%s\":", field);
    const char *at = strstr(buf, key);
    if (!at) return -1;
    return strtoll(at + strlen(key), NULL, 10);
}

/* Issue 17: the default options with sink=SINK (RBENCH_OPTS over them, e.g. compression=gzip),
 * COUNT typical entries in a tight loop from one thread, then rarch_flush(FLUSH_TIMEOUT_S);
 * close_timeout_ms=0. The rate is COUNT over the time from the first rarch_log until flush
 * returns, and the process's CPU over the same time. With STATS_URL, it then polls the
 * receiver every 2 ms until FIELD reaches COUNT (or WAIT_S pass): e2e_ms is the time from the
 * first rarch_log until the receiver has counted them all (with a Collector between, the
 * records it has exported), at most one poll late. */
static int cmd_sink(int argc, char **argv) {
    if (argc != 8 && argc != 11) return -1;
    const char *sink = argv[2], *url = argv[3], *key = argv[4], *bufdir = argv[5];
    size_t count = strtoull(argv[6], NULL, 10);
    long timeout_s = atol(argv[7]);
    const char *stats_url = argc == 11 ? argv[8] : NULL, *field = argc == 11 ? argv[9] : NULL;
    double wait_s = argc == 11 ? atof(argv[10]) : 0;
    rarch_options *o = rarch_options_new();
    if (!o) die("rarch_options_new");
    set(o, "sink", sink);
    set(o, "url", url);
    if (strcmp(key, "-") != 0) set(o, "api_key", key);
    set(o, "buffer_dir", bufdir);
    set(o, "close_timeout_ms", "0");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    long long before = stats_url ? http_get_field(stats_url, field) : 0;
    if (stats_url && before != 0) {
        fprintf(stderr, "rbench sink: %s says %s=%lld before the run (expected 0)\n", stats_url,
                field, before);
        return 2;
    }
    size_t errors = 0;
    struct usage pa = usage_of(RUSAGE_SELF), ta = usage_of(RUSAGE_THREAD);
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) errors++;
    uint64_t t1 = now_ns();
    int st = rarch_flush(l, (uint32_t)(timeout_s * 1000));
    uint64_t t2 = now_ns();
    struct usage pb = usage_of(RUSAGE_SELF), tb = usage_of(RUSAGE_THREAD);
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench sink: flush: %s\n", buf);
    }
    long long seen = -1;
    uint64_t t3 = t2;
    if (stats_url) {
        uint64_t end = t2 + (uint64_t)(wait_s * 1e9);
        for (;;) {
            seen = http_get_field(stats_url, field);
            t3 = now_ns();
            if ((seen >= 0 && (size_t)seen >= count) || t3 > end) break;
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    double secs = (t2 - t0) / 1e9;
    printf("RESULT bench=sink sink=%s count=%zu errors=%zu flush=%d flush_timeout_s=%ld "
           "log_ms=%.1f total_ms=%.1f rate=%.0f",
           sink, count, errors, st, timeout_s, (t1 - t0) / 1e6, (t2 - t0) / 1e6, count / secs);
    if (stats_url)
        printf(" e2e_field=%s e2e_seen=%lld e2e_ms=%.1f e2e_rate=%.0f", field, seen,
               (t3 - t0) / 1e6, seen > 0 ? seen / ((t3 - t0) / 1e9) : 0.0);
    print_usage(pa, pb, ta, tb);
    print_stats(l, "");
    fflush(stdout);
    uint64_t t4 = now_ns();
    rarch_logger_free(l);
    printf(" free_ms=%.1f\n", (now_ns() - t4) / 1e6);
    fflush(stdout);
    return 0;
}

/* ---------------------------------------------------------------- a burst (issue 18) */

/* Issue 18: the library's default options (only url, api_key and buffer_dir; RBENCH_OPTS over
 * them), COUNT typical entries in a tight loop from one thread of a fresh logger, no warm-up,
 * each call timed; then rarch_flush(FLUSH_TIMEOUT_S), which also waits for the disk buffer to
 * be replayed. The slowest calls (max, p99.9, calls over 1 ms and over 100 µs, the index of the
 * slowest, the first call's time apart), the calls refused (any status but RARCH_OK), and the
 * calling thread's context switches over the burst (getrusage RUSAGE_THREAD): involuntary ones
 * are the OS preempting the caller, voluntary ones the caller waiting (a lock, a sleep, the
 * disk). The involuntary count is also read, outside the timed window, every 256 calls and
 * after each call over 1 ms: slow_preempted counts the calls over 1 ms in whose window (the
 * call and at most 255 calls before it) the thread was preempted. Stats when the burst ended
 * (burst_*) and when flush returned. */
static int cmd_burst(int argc, char **argv) {
    if (argc != 7) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    size_t count = strtoull(argv[5], NULL, 10);
    long timeout_s = atol(argv[6]);
    if (count == 0) return -1;
    rarch_options *o = base_options(url, key, bufdir);
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    uint64_t *lat = malloc(count * sizeof *lat);
    if (!lat) die("out of memory");
    memset(lat, 0, count * sizeof *lat); /* its page faults before the burst, not in it */
    size_t errors = 0, over_1ms = 0, over_100us = 0, slow_preempted = 0, max_at = 0;
    int first_error = 0;
    uint64_t max = 0;
    struct usage pa = usage_of(RUSAGE_SELF), ta = usage_of(RUSAGE_THREAD);
    uint64_t last_niv = ta.nivcsw;
    uint64_t start = now_ns();
    for (size_t i = 0; i < count; i++) {
        uint64_t t0 = now_ns();
        int st = log_typical(l);
        uint64_t d = now_ns() - t0;
        lat[i] = d;
        if (st != RARCH_OK) {
            if (!errors) first_error = st;
            errors++;
        }
        if (d > max) {
            max = d;
            max_at = i;
        }
        if (d > 100000) over_100us++;
        if (d > 1000000 || (i & 255) == 255) {
            struct rusage ru;
            getrusage(RUSAGE_THREAD, &ru);
            if (d > 1000000) {
                over_1ms++;
                if ((uint64_t)ru.ru_nivcsw != last_niv) slow_preempted++;
            }
            last_niv = (uint64_t)ru.ru_nivcsw;
        }
    }
    uint64_t t1 = now_ns();
    struct usage pb = usage_of(RUSAGE_SELF), tb = usage_of(RUSAGE_THREAD);
    rarch_statistics s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    if (rarch_stats(l, &s) != RARCH_OK) die("rarch_stats");
    int st = rarch_flush(l, (uint32_t)(timeout_s * 1000));
    uint64_t t2 = now_ns();
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench burst: flush: %s\n", buf);
    }
    printf("RESULT bench=burst count=%zu errors=%zu first_error=%d flush=%d flush_timeout_s=%ld "
           "log_ms=%.1f flush_ms=%.1f first_ns=%llu max_at=%zu over_1ms=%zu over_100us=%zu "
           "slow_preempted=%zu",
           count, errors, first_error, st, timeout_s, (t1 - start) / 1e6, (t2 - t1) / 1e6,
           (unsigned long long)lat[0], max_at, over_1ms, over_100us, slow_preempted);
    print_pcts("log", lat, count);
    print_usage(pa, pb, ta, tb);
    printf(" burst_delivered=%llu burst_buffered=%llu burst_queue_len=%llu burst_dropped=%llu",
           (unsigned long long)s.delivered, (unsigned long long)s.buffered,
           (unsigned long long)s.queue_len,
           (unsigned long long)(s.dropped_queue_full + s.dropped_buffer_cap + s.dropped_io));
    print_stats(l, "");
    fflush(stdout);
    uint64_t t3 = now_ns();
    rarch_logger_free(l);
    printf(" free_ms=%.1f\n", (now_ns() - t3) / 1e6);
    fflush(stdout);
    free(lat);
    return 0;
}

/* ---------------------------------------------------------------- memory while down */

static int cmd_memory(int argc, char **argv) {
    if (argc != 6) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    size_t count = strtoull(argv[5], NULL, 10);
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "close_timeout_ms", "200");
    /* Room on disk for every entry (the default cap, 256 MiB, holds about half a million), so
     * that all of them are kept and then replayed. */
    set(o, "buffer_max_total_bytes", "2147483648");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    long rss0 = status_kib("VmRSS");
    size_t errors = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < count; i++)
        if (log_typical(l) != RARCH_OK) errors++;
    uint64_t t1 = now_ns();
    long hwm_logged = status_kib("VmHWM");
    printf("RESULT bench=memory count=%zu errors=%zu log_ms=%.1f rss_start_kib=%ld "
           "hwm_after_log_kib=%ld",
           count, errors, (t1 - t0) / 1e6, rss0, hwm_logged);
    print_stats(l, "");
    fflush(stdout);
    uint64_t t2 = now_ns();
    rarch_logger_free(l); /* writes what is still in memory to the buffer file */
    uint64_t t3 = now_ns();
    printf(" free_ms=%.1f hwm_end_kib=%ld rss_end_kib=%ld\n", (t3 - t2) / 1e6,
           status_kib("VmHWM"), status_kib("VmRSS"));
    return 0;
}

static int cmd_replay(int argc, char **argv) {
    if (argc != 5) return -1;
    rarch_options *o = base_options(argv[2], argv[3], argv[4]);
    set(o, "buffer_max_total_bytes", "2147483648"); /* as `memory`, which wrote the files */
    uint64_t t0 = now_ns();
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    int st = rarch_flush(l, 600000);
    uint64_t t1 = now_ns();
    if (st != RARCH_OK) {
        char buf[512];
        rarch_last_error(buf, sizeof buf);
        fprintf(stderr, "rbench replay: flush: %s\n", buf);
    }
    rarch_statistics s;
    memset(&s, 0, sizeof s);
    s.size = sizeof s;
    rarch_stats(l, &s);
    double secs = (t1 - t0) / 1e9;
    printf("RESULT bench=replay flush=%d replay_ms=%.1f rate=%.0f hwm_kib=%ld", st, secs * 1e3,
           s.replayed / secs, status_kib("VmHWM"));
    print_stats(l, "");
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    return 0;
}

/* ---------------------------------------------------------------- blocking mode */

struct blocking_arg {
    rarch_logger *l;
    size_t count;
    uint64_t *lat;
    size_t errors;
    int first_error;
    pthread_barrier_t *bar;
};

static void *blocking_thread(void *p) {
    struct blocking_arg *a = p;
    pthread_barrier_wait(a->bar);
    for (size_t i = 0; i < a->count; i++) {
        uint64_t t0 = now_ns();
        int st = log_typical(a->l);
        a->lat[i] = now_ns() - t0;
        if (st != RARCH_OK) {
            if (!a->errors) a->first_error = st;
            a->errors++;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- first call after a pause */

/* One thread, bursts of BURST calls separated by a sleep of PAUSE_US; the first call of each
 * burst and the others are reported apart. Shows how the cost of the first call grows with the
 * time the caches had to go cold. Every other burst starts with an empty call into the library
 * (rarch_get_level) instead, timed the same way: the floor for a first call after that pause. */
static int cmd_pause(int argc, char **argv) {
    if (argc != 7) return -1;
    const char *url = argv[2], *key = argv[3], *bufdir = argv[4];
    long pause_us = atol(argv[5]);
    size_t bursts = strtoull(argv[6], NULL, 10);
    rarch_options *o = base_options(url, key, bufdir);
    set(o, "close_timeout_ms", "200");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    for (int i = 0; i < 200; i++) log_typical(l);
    uint64_t *first = calloc(bursts, 8), *floor_ = calloc(bursts, 8),
             *rest = calloc(2 * bursts * (BURST - 1), 8);
    if (!first || !floor_ || !rest) die("out of memory");
    size_t nf = 0, nfl = 0, nr = 0, errors = 0;
    volatile int sink = 0;
    for (size_t b = 0; b < 2 * bursts; b++) {
        struct timespec ts = {pause_us / 1000000, (pause_us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
        if (b % 2) {
            uint64_t t0 = now_ns();
            sink += rarch_get_level(l);
            floor_[nfl++] = now_ns() - t0;
        }
        for (int i = 0; i < BURST; i++) {
            uint64_t t0 = now_ns();
            if (log_typical(l) != RARCH_OK) errors++;
            uint64_t t1 = now_ns();
            if (i > 0) rest[nr++] = t1 - t0;
            else if (b % 2 == 0) first[nf++] = t1 - t0;
        }
    }
    (void)sink;
    printf("RESULT bench=pause pause_us=%ld bursts=%zu errors=%zu", pause_us, bursts, errors);
    print_pcts("first", first, nf);
    print_pcts("floor", floor_, nfl);
    print_pcts("rest", rest, nr);
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    free(first);
    free(floor_);
    free(rest);
    return 0;
}

static int cmd_blocking(int argc, char **argv) {
    if (argc != 7) return -1;
    int threads = atoi(argv[5]);
    size_t count = strtoull(argv[6], NULL, 10);
    rarch_options *o = base_options(argv[2], argv[3], argv[4]);
    set(o, "mode", "blocking");
    set(o, "connections", threads > 2 ? argv[5] : "2");
    rarch_logger *l = new_logger(o);
    rarch_options_free(o);
    for (int i = 0; i < 20; i++) log_typical(l); /* connect, sign the first token */
    size_t total = count * (size_t)threads;
    uint64_t *lat = calloc(total, 8);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)threads);
    pthread_t tid[64];
    struct blocking_arg args[64];
    for (int t = 0; t < threads; t++) {
        args[t] = (struct blocking_arg){l, count, lat + t * count, 0, 0, &bar};
        pthread_create(&tid[t], NULL, blocking_thread, &args[t]);
    }
    uint64_t t0 = now_ns();
    size_t errors = 0;
    int first_error = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        if (args[t].errors && !errors) first_error = args[t].first_error;
        errors += args[t].errors;
    }
    double secs = (now_ns() - t0) / 1e9;
    printf("RESULT bench=blocking threads=%d count=%zu errors=%zu first_error=%d rate=%.0f", threads,
           total, errors, first_error, total / secs);
    print_pcts("log", lat, total);
    print_stats(l, "");
    printf("\n");
    fflush(stdout);
    rarch_logger_free(l);
    return 0;
}

int main(int argc, char **argv) {
    if (sizeof CONTEXT - 1 != 200 || sizeof MESSAGE - 1 != 64) {
        fprintf(stderr, "rbench: typical entry sizes drifted (%zu, %zu)\n", sizeof MESSAGE - 1,
                sizeof CONTEXT - 1);
        return 2;
    }
    int r = -1;
    if (argc >= 2) {
        if (!strcmp(argv[1], "caller")) r = cmd_caller(argc, argv);
        else if (!strcmp(argv[1], "throughput")) r = cmd_throughput(argc, argv);
        else if (!strcmp(argv[1], "memory")) r = cmd_memory(argc, argv);
        else if (!strcmp(argv[1], "replay")) r = cmd_replay(argc, argv);
        else if (!strcmp(argv[1], "blocking")) r = cmd_blocking(argc, argv);
        else if (!strcmp(argv[1], "pause")) r = cmd_pause(argc, argv);
        else if (!strcmp(argv[1], "degraded")) r = cmd_degraded(argc, argv);
        else if (!strcmp(argv[1], "latency")) r = cmd_latency(argc, argv);
        else if (!strcmp(argv[1], "cpu")) r = cmd_cpu(argc, argv);
        else if (!strcmp(argv[1], "sink")) r = cmd_sink(argc, argv);
        else if (!strcmp(argv[1], "burst")) r = cmd_burst(argc, argv);
    }
    if (r < 0) {
        fprintf(stderr, "usage: see the comment at the top of bench/rbench.c\n");
        return 2;
    }
    return r;
}
