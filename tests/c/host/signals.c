/* signals.c: a host with a 50 µs interval timer whose SIGALRM handler (installed without
 * SA_RESTART) counts the signals that run on a thread other than main, the host's only
 * thread. Logs N entries ("sig-<i>") while the timer runs, flushes, stops the timer and frees
 * the logger. Writes "<signals on main> <signals elsewhere>" to the file named by its second
 * argument; exits 4 if any signal ran on another thread. Prints nothing unless something
 * fails (driven by tests/host.rs). */
#define _POSIX_C_SOURCE 200809L
#include "../testutil.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <time.h>

static pthread_t main_thread;
static atomic_long on_main, elsewhere;

static void on_alarm(int sig) {
    (void)sig;
    if (pthread_equal(pthread_self(), main_thread)) atomic_fetch_add(&on_main, 1);
    else atomic_fetch_add(&elsewhere, 1);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    main_thread = pthread_self();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the host expects its calls to be interrupted */
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 50}, {0, 50}};
    setitimer(ITIMER_REAL, &it, NULL);

    rarch_logger *lg = t_logger("host-signals", "main", NULL);
    char msg[64];
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "sig-%ld", i);
        EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, msg, NULL, NULL, NULL, NULL, NULL));
        if (i % 1000 == 999) { /* time for the library's threads to run while signals come */
            /* To an absolute deadline: a relative sleep restarted after each signal makes no
             * progress once a signal comes before each restart has slept at all. */
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += 2000000;
            if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) != 0) {}
        }
    }
    EXPECT_OK(rarch_flush(lg, 60000));
    rarch_logger_free(lg);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    if (argc > 2) {
        FILE *f = fopen(argv[2], "w");
        if (f) {
            fprintf(f, "%ld %ld\n", atomic_load(&on_main), atomic_load(&elsewhere));
            fclose(f);
        }
    }
    if (t_failures) return 1;
    return atomic_load(&elsewhere) > 0 ? 4 : 0;
}
