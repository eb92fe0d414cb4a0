/*
 * pauseab: one entry after a pause, two builds of the library side by side in one process
 * (driven by bench/pauseab.sh).
 *
 *   pauseab URL KEY BUFDIR LIB_A LIB_B PAUSE_US COUNT
 *
 * Both libraries are loaded with dlopen (two files: two copies, each with its logger and
 * threads). After each pause of PAUSE_US, one call: a typical `rarch_log` into A, then into
 * B, then an empty call (`rarch_get_level`, the floor) into A, then into B, the order turned
 * by one each round; COUNT rounds. Whatever the machine does meanwhile falls on both alike,
 * which a comparison of two processes run in turns (bench/quiet.sh) cannot promise: there the
 * medians move by 1.5x between runs.
 *
 * Prints "RESULT bench=pauseab pause_us=... a_one_p50=... a_floor_p50=... b_one_p50=...
 * b_floor_p50=... one_b_over_a=...": medians in ns.
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

struct lib {
    void *handle;
    rarch_logger *logger;
    rarch_status (*log)(rarch_logger *, int, const char *, const char *, const char *,
                        const char *, const char *, const char *);
    int (*get_level)(const rarch_logger *);
};

static void die(const char *what) {
    fprintf(stderr, "pauseab: %s\n", what);
    exit(2);
}

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) die(name);
    return p;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, size_t n) {
    qsort(v, n, sizeof *v, cmp);
    return v[n / 2];
}

static void load(struct lib *l, const char *path, const char *url, const char *key,
                 const char *bufdir, const char *name) {
    l->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!l->handle) die(dlerror());
    rarch_options *(*options_new)(void) = sym(l->handle, "rarch_options_new");
    rarch_status (*options_set)(rarch_options *, const char *, const char *) =
        sym(l->handle, "rarch_options_set");
    void (*options_free)(rarch_options *) = sym(l->handle, "rarch_options_free");
    rarch_logger *(*logger_new)(const char *, const char *, const rarch_options *) =
        sym(l->handle, "rarch_logger_new");
    rarch_status (*flush)(rarch_logger *, uint32_t) = sym(l->handle, "rarch_flush");
    l->log = sym(l->handle, "rarch_log");
    l->get_level = sym(l->handle, "rarch_get_level");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", bufdir, name);
    rarch_options *o = options_new();
    if (!o) die("rarch_options_new");
    if (options_set(o, "url", url) || options_set(o, "api_key", key) ||
        options_set(o, "buffer_dir", dir) || options_set(o, "close_timeout_ms", "2000"))
        die("rarch_options_set");
    l->logger = logger_new("pauseab", name, o);
    options_free(o);
    if (!l->logger) die("rarch_logger_new");
    for (int i = 0; i < 200; i++)
        l->log(l->logger, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
    flush(l->logger, 10000);
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: pauseab URL KEY BUFDIR LIB_A LIB_B PAUSE_US COUNT\n");
        return 2;
    }
    struct lib libs[2];
    load(&libs[0], argv[4], argv[1], argv[2], argv[3], "a");
    load(&libs[1], argv[5], argv[1], argv[2], argv[3], "b");
    long pause_us = atol(argv[6]);
    size_t count = strtoull(argv[7], NULL, 10);
    if (count == 0) die("COUNT is 0");
    uint64_t *one[2], *floor_[2];
    for (int k = 0; k < 2; k++) {
        one[k] = calloc(count, sizeof(uint64_t));
        floor_[k] = calloc(count, sizeof(uint64_t));
        if (!one[k] || !floor_[k]) die("out of memory");
    }
    size_t errors = 0;
    volatile int sink = 0;
    for (size_t i = 0; i < count; i++) {
        for (size_t step = 0; step < 4; step++) {
            /* log A, log B, floor A, floor B, turned by one each round */
            size_t s = (step + i) % 4;
            struct lib *l = &libs[s % 2];
            sleep_us(pause_us);
            uint64_t t0 = now_ns();
            if (s < 2) {
                if (l->log(l->logger, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL, CONTEXT,
                           NULL) != RARCH_OK)
                    errors++;
                one[s % 2][i] = now_ns() - t0;
            } else {
                sink += l->get_level(l->logger);
                floor_[s % 2][i] = now_ns() - t0;
            }
        }
    }
    (void)sink;
    uint64_t a = median(one[0], count), b = median(one[1], count);
    uint64_t fa = median(floor_[0], count), fb = median(floor_[1], count);
    printf("RESULT bench=pauseab pause_us=%ld count=%zu errors=%zu a_one_p50=%llu "
           "a_floor_p50=%llu b_one_p50=%llu b_floor_p50=%llu one_b_over_a=%.3f\n",
           pause_us, count, errors, (unsigned long long)a, (unsigned long long)fa,
           (unsigned long long)b, (unsigned long long)fb, a ? (double)b / (double)a : 0.0);
    return errors ? 1 : 0;
}
