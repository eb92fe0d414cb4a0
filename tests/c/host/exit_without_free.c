/* exit_without_free.c: a host that never frees its logger. `exit_without_free N` logs N
 * entries (messages "exit-<i>") and calls exit(0) with the logger still open: the library's
 * exit handler must deliver them or write them to disk. `exit_without_free 0 TIMEOUT_MS`
 * is the next start: it opens the same service (or SERVICE, a third argument), waits up to TIMEOUT_MS for the disk buffer to
 * be replayed, frees the logger and exits 0, or 3 if the flush timed out. Prints nothing
 * unless something fails (driven by tests/host.rs). */
#include "../testutil.h"

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    rarch_logger *lg = t_logger(argc > 3 ? argv[3] : "host-exit", "main", NULL);
    if (n == 0) {
        unsigned timeout = argc > 2 ? (unsigned)atol(argv[2]) : 30000;
        rarch_status st = rarch_flush(lg, timeout);
        rarch_logger_free(lg);
        return st == RARCH_OK ? 0 : 3;
    }
    char msg[64];
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "exit-%ld", i);
        EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, msg, NULL, NULL, NULL, NULL, NULL));
    }
    exit(t_failures ? 1 : 0);
}
