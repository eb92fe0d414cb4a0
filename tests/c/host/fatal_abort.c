/* fatal_abort.c: N entries ("pre-<i>"), one FATAL ("last words"), then abort(): everything
 * logged must be on disk (or delivered) before rarch_log returns for the FATAL entry. Writes
 * the FATAL call's duration in microseconds to the file named by its second argument, then
 * aborts. Prints nothing unless something fails (driven by tests/host.rs). */
#define _POSIX_C_SOURCE 200809L
#include "../testutil.h"
#include <time.h>

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 5000;
    rarch_logger *lg = t_logger("host-fatal", "main", NULL);
    char msg[64];
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "pre-%ld", i);
        EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, msg, NULL, NULL, NULL, NULL, NULL));
    }
    double t0 = now_us();
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_FATAL, "last words", NULL, NULL, NULL, NULL, NULL));
    double took = now_us() - t0;
    if (argc > 2) {
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "%.0f\n", took);
            fclose(f);
        }
    }
    if (t_failures) return 1;
    abort();
}
