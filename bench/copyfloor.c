/*
 * copyfloor PAUSE_US BURSTS: `rbench pause` for bench/copyfloor_lib.c's call (linked as a
 * shared library): the first call of a burst of 100 after a pause, against an empty call
 * (copyfloor_level) after the same pause, every other burst. Prints one RESULT line with the
 * p50 of each and their ratio. Run by bench/copyfloor.sh beside `rbench pause`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "typical_entry.h"

struct copyfloor;
struct copyfloor *copyfloor_new(void);
int copyfloor_level(const struct copyfloor *l);
int copyfloor_log(struct copyfloor *l, int level, const char *message, const char *user,
                  const char *tenant, const char *request_id, const char *context,
                  const char *timestamp);

static int cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: copyfloor PAUSE_US BURSTS\n");
        return 2;
    }
    long pause_us = atol(argv[1]);
    int bursts = atoi(argv[2]);
    if (bursts < 1 || bursts > 100000) return 2;
    struct copyfloor *l = copyfloor_new();
    for (int i = 0; i < 200; i++) copyfloor_log(l, 1, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
    uint64_t *first = calloc(bursts, 8), *floor_ = calloc(bursts, 8);
    if (!first || !floor_) return 2;
    int nf = 0, nfl = 0;
    volatile int sink = 0;
    for (int b = 0; b < 2 * bursts; b++) {
        struct timespec ts = {pause_us / 1000000, (pause_us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
        }
        if (b % 2) {
            uint64_t t0 = now_ns();
            sink += copyfloor_level(l);
            floor_[nfl++] = now_ns() - t0;
        }
        for (int i = 0; i < 100; i++) {
            uint64_t t0 = now_ns();
            sink += copyfloor_log(l, 1, MESSAGE, USER, TENANT, NULL, CONTEXT, NULL);
            uint64_t d = now_ns() - t0;
            if (i == 0 && b % 2 == 0) first[nf++] = d;
        }
    }
    qsort(first, nf, 8, cmp);
    qsort(floor_, nfl, 8, cmp);
    printf("RESULT bench=copyfloor pause_us=%ld bursts=%d first_p50=%llu floor_p50=%llu ratio=%.2f\n",
           pause_us, bursts, (unsigned long long)first[nf / 2], (unsigned long long)floor_[nfl / 2],
           (double)first[nf / 2] / (double)floor_[nfl / 2]);
    free(first);
    free(floor_);
    return 0;
}
