/*
 * abbench: two builds of the library side by side in one process (driven by bench/ab.sh).
 *
 *   abbench URL KEY BUFDIR LIB_A LIB_B BURSTS
 *
 * Both libraries are loaded with dlopen (two files, so two separate copies with their own
 * loggers and threads). Bursts of 100 typical `rarch_log` calls go to A, then to B, then to A
 * again, with a 25 ms pause after each burst: each library logs 2,000 entries a second, as in
 * `rbench caller`, and whatever the machine does during the run (other tenants, frequency,
 * the host) falls on both alike. That is what makes a difference of a few percent
 * measurable on a machine whose own noise, run to run, is 10-20%.
 *
 * Prints "RESULT bench=ab lib=A ..." and "lib=B" lines (p50/p99 of all calls, and of all but
 * the first of each burst), then "RESULT bench=ab_ratio ..." with B/A.
 */
#define _GNU_SOURCE
#include "rarch_logging.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "typical_entry.h"

#define BURST 100

struct lib {
    const char *path;
    void *handle;
    rarch_options *(*options_new)(void);
    rarch_status (*options_set)(rarch_options *, const char *, const char *);
    void (*options_free)(rarch_options *);
    rarch_logger *(*logger_new)(const char *, const char *, const rarch_options *);
    rarch_status (*log)(rarch_logger *, int, const char *, const char *, const char *,
                        const char *, const char *, const char *);
    rarch_status (*flush)(rarch_logger *, uint32_t);
    void (*logger_free)(rarch_logger *);
    rarch_logger *logger;
    uint64_t *all, *rest;
    size_t n_all, n_rest, errors;
};

static void *sym(struct lib *l, const char *name) {
    void *p = dlsym(l->handle, name);
    if (!p) {
        fprintf(stderr, "abbench: %s: no %s\n", l->path, name);
        exit(2);
    }
    return p;
}

static void open_lib(struct lib *l, const char *url, const char *key, const char *bufdir,
                     const char *sub) {
    l->handle = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->handle) {
        fprintf(stderr, "abbench: %s\n", dlerror());
        exit(2);
    }
    *(void **)&l->options_new = sym(l, "rarch_options_new");
    *(void **)&l->options_set = sym(l, "rarch_options_set");
    *(void **)&l->options_free = sym(l, "rarch_options_free");
    *(void **)&l->logger_new = sym(l, "rarch_logger_new");
    *(void **)&l->log = sym(l, "rarch_log");
    *(void **)&l->flush = sym(l, "rarch_flush");
    *(void **)&l->logger_free = sym(l, "rarch_logger_free");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", bufdir, sub);
    rarch_options *o = l->options_new();
    if (!o || l->options_set(o, "url", url) != RARCH_OK ||
        l->options_set(o, "api_key", key) != RARCH_OK ||
        l->options_set(o, "buffer_dir", dir) != RARCH_OK ||
        l->options_set(o, "close_timeout_ms", "200") != RARCH_OK) {
        fprintf(stderr, "abbench: %s: options refused\n", l->path);
        exit(2);
    }
    l->logger = l->logger_new("bench", "bench.main", o);
    l->options_free(o);
    if (!l->logger) {
        fprintf(stderr, "abbench: %s: rarch_logger_new failed\n", l->path);
        exit(2);
    }
}

static void burst(struct lib *l) {
    for (int i = 0; i < BURST; i++) {
        uint64_t t0 = now_ns();
        rarch_status st = l->log(l->logger, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL,
                                 CONTEXT, NULL);
        uint64_t dt = now_ns() - t0;
        l->all[l->n_all++] = dt;
        if (i) l->rest[l->n_rest++] = dt;
        if (st != RARCH_OK) l->errors++;
    }
}

static void pause_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, double p) {
    return v[(size_t)((double)(n - 1) * p)];
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: abbench URL KEY BUFDIR LIB_A LIB_B BURSTS\n");
        return 2;
    }
    size_t bursts = strtoull(argv[6], NULL, 10);
    struct lib libs[2] = {{.path = argv[4]}, {.path = argv[5]}};
    for (int k = 0; k < 2; k++) {
        open_lib(&libs[k], argv[1], argv[2], argv[3], k ? "b" : "a");
        libs[k].all = calloc(bursts * BURST, 8);
        libs[k].rest = calloc(bursts * BURST, 8);
        if (!libs[k].all || !libs[k].rest) return 2;
    }
    /* Warm-up, not counted: thread-local state, the first token, the clock page. */
    for (int k = 0; k < 2; k++) {
        burst(&libs[k]);
        libs[k].n_all = libs[k].n_rest = libs[k].errors = 0;
    }
    for (size_t b = 0; b < bursts; b++) {
        for (int k = 0; k < 2; k++) {
            pause_ms(25);
            burst(&libs[k]);
        }
    }
    uint64_t p50[2];
    for (int k = 0; k < 2; k++) {
        struct lib *l = &libs[k];
        l->flush(l->logger, 10000);
        qsort(l->all, l->n_all, 8, cmp_u64);
        qsort(l->rest, l->n_rest, 8, cmp_u64);
        p50[k] = pct(l->all, l->n_all, 0.5);
        printf("RESULT bench=ab lib=%c path=%s calls=%zu errors=%zu log_p50=%llu log_p99=%llu "
               "rest_p50=%llu rest_p99=%llu\n",
               k ? 'B' : 'A', l->path, l->n_all, l->errors, (unsigned long long)p50[k],
               (unsigned long long)pct(l->all, l->n_all, 0.99),
               (unsigned long long)pct(l->rest, l->n_rest, 0.5),
               (unsigned long long)pct(l->rest, l->n_rest, 0.99));
    }
    printf("RESULT bench=ab_ratio p50_b_over_a=%.3f\n", (double)p50[1] / (double)p50[0]);
    fflush(stdout);
    for (int k = 0; k < 2; k++) libs[k].logger_free(libs[k].logger);
    return libs[0].errors || libs[1].errors;
}
