/* thread_limit.c: a host that holds HOST_TASKS tasks (main and HOST_TASKS-1 idle threads)
 * inside a pids cgroup the driver made (pids.max = HOST_TASKS + 3), then logs N entries
 * ("lim-<i>"), flushes (60 s) and frees the logger. Exits 0 when the logger was made and the
 * flush succeeded. Prints nothing unless something fails (driven by tests/host.rs). */
#define _POSIX_C_SOURCE 200809L
#include "../testutil.h"
#include <pthread.h>

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t open_gate = PTHREAD_COND_INITIALIZER;
static int go_home = 0;

static void *idle(void *arg) {
    (void)arg;
    pthread_mutex_lock(&gate);
    while (!go_home) pthread_cond_wait(&open_gate, &gate);
    pthread_mutex_unlock(&gate);
    return NULL;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000;
    int host_tasks = argc > 2 ? atoi(argv[2]) : 9;
    pthread_t t[64];
    int started = 0;
    for (int i = 0; i < host_tasks - 1 && i < 64; i++) {
        if (pthread_create(&t[i], NULL, idle, NULL) != 0) {
            fprintf(stderr, "host thread %d could not start\n", i);
            return 5;
        }
        started++;
    }
    rarch_logger *lg = t_logger("host-limit", "main", NULL);
    char msg[64];
    for (long i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "lim-%ld", i);
        EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, msg, NULL, NULL, NULL, NULL, NULL));
    }
    EXPECT_OK(rarch_flush(lg, 60000));
    rarch_logger_free(lg);
    pthread_mutex_lock(&gate);
    go_home = 1;
    pthread_cond_broadcast(&open_gate);
    pthread_mutex_unlock(&gate);
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    return t_failures ? 1 : 0;
}
