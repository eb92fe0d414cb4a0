/*
 * footprint: the C driver of bench/footprint.sh (issue 18: code and data touched by ONE call of
 * rarch_log with the typical entry). Run under callgrind by that script; see its header for
 * the method and the figures it derives.
 *
 *   footprint LIB URL KEY BUFDIR [WARM [MODE]]
 *
 * LIB is loaded with dlopen (so that two builds can be compared by path); the driver makes a
 * logger against URL (a local receiver, or a port where nothing listens), makes WARM (default
 * 2000) untimed calls with the typical entry (bench/typical_entry.h), then, in MODE
 *   pause  (default) rarch_flush, then usleep(20000): the first call after a pause, as in
 *          `rbench pause` (the sender threads are idle, the call finds the queue empty);
 *   b2b    10 more calls back to back and no pause: a call in the middle of a warm series;
 * and then exactly ONE measured call, bracketed by CALLGRIND_START_INSTRUMENTATION and
 * CALLGRIND_STOP_INSTRUMENTATION (no-ops outside valgrind): run with --instr-atstart=no, it is
 * the only stretch callgrind simulates, so its caches start it empty and every line the call
 * touches is one cold miss.
 * After it: WARM/10 more calls (the measured one is in the middle of a series), a flush, free.
 * Prints "FOOTPRINT status=... ns=... ok_warm=..." on stdout.
 */
#define _GNU_SOURCE
#include "rarch_logging.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <valgrind/callgrind.h>

#include "typical_entry.h"

/* The library's functions, typed from the header. */
static __typeof__(rarch_options_new) *p_options_new;
static __typeof__(rarch_options_set) *p_options_set;
static __typeof__(rarch_options_free) *p_options_free;
static __typeof__(rarch_logger_new) *p_logger_new;
static __typeof__(rarch_logger_free) *p_logger_free;
static __typeof__(rarch_log) *p_log;
static __typeof__(rarch_flush) *p_flush;
static __typeof__(rarch_last_error) *p_last_error;
static __typeof__(rarch_version) *p_version;

static void die(const char *what) {
    char buf[512] = "";
    if (p_last_error) p_last_error(buf, sizeof buf);
    fprintf(stderr, "footprint: %s: %s\n", what, buf);
    exit(2);
}

static void *sym(void *h, const char *name) {
    void *p = dlsym(h, name);
    if (!p) {
        fprintf(stderr, "footprint: %s: %s\n", name, dlerror());
        exit(2);
    }
    return p;
}

static void set(rarch_options *o, const char *k, const char *v) {
    if (p_options_set(o, k, v) != RARCH_OK) die(k);
}

/* Not inlined, so that the measured call is one `call` through the pointer, as in a program
 * that links the library (less the PLT stub). */
static __attribute__((noinline)) int log_typical(rarch_logger *l) {
    return p_log(l, RARCH_LEVEL_INFO, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
}

int main(int argc, char **argv) {
    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: footprint LIB URL KEY BUFDIR [WARM [pause|b2b]]\n");
        return 2;
    }
    const char *libpath = argv[1], *url = argv[2], *key = argv[3], *bufdir = argv[4];
    long warm = argc > 5 ? atol(argv[5]) : 2000;
    const char *mode = argc > 6 ? argv[6] : "pause";
    if (strcmp(mode, "pause") != 0 && strcmp(mode, "b2b") != 0) {
        fprintf(stderr, "footprint: MODE is pause or b2b\n");
        return 2;
    }

    void *h = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "footprint: dlopen %s: %s\n", libpath, dlerror());
        return 2;
    }
    p_options_new = sym(h, "rarch_options_new");
    p_options_set = sym(h, "rarch_options_set");
    p_options_free = sym(h, "rarch_options_free");
    p_logger_new = sym(h, "rarch_logger_new");
    p_logger_free = sym(h, "rarch_logger_free");
    p_log = sym(h, "rarch_log");
    p_flush = sym(h, "rarch_flush");
    p_last_error = sym(h, "rarch_last_error");
    p_version = sym(h, "rarch_version");

    rarch_options *o = p_options_new();
    if (!o) die("rarch_options_new");
    set(o, "url", url);
    if (*key) set(o, "api_key", key);
    set(o, "buffer_dir", bufdir);
    set(o, "close_timeout_ms", "200");
    /* Room for the whole warm series: nothing spills, whatever the server does. */
    set(o, "queue_capacity", "65536");
    rarch_logger *l = p_logger_new("bench", "bench.footprint", o);
    if (!l) die("rarch_logger_new");
    p_options_free(o);

    long ok = 0;
    for (long i = 0; i < warm; i++) ok += log_typical(l) == RARCH_OK;
    if (strcmp(mode, "pause") == 0) {
        /* Delivered (or, with nothing listening, timed out), so that the buffers are back
         * in the pool and the sender threads are idle; then the pause. */
        p_flush(l, 20000);
        usleep(20000);
    } else {
        for (int i = 0; i < 10; i++) ok += log_typical(l) == RARCH_OK;
    }

    uint64_t t0 = now_ns();
    CALLGRIND_START_INSTRUMENTATION;
    int st = log_typical(l);
    CALLGRIND_STOP_INSTRUMENTATION;
    uint64_t t1 = now_ns();

    for (long i = 0; i < warm / 10; i++) ok += log_typical(l) == RARCH_OK;
    p_flush(l, 5000);
    printf("FOOTPRINT version=%s mode=%s status=%d ns=%llu warm=%ld ok_other=%ld\n", p_version(),
           mode, st, (unsigned long long)(t1 - t0), warm, ok);
    fflush(stdout);
    p_logger_free(l);
    return st == RARCH_OK ? 0 : 1;
}
