/* demo.c: what `make demo` runs. Logs at every level with context, shows level filtering,
 * flushes and frees. Endpoint and key come from RARCH_LOGGING_URL and RARCH_LOGGING_API_KEY. */
#include <stdio.h>
#include <rarch_logging.h>

static void check(rarch_status s, const char *what) {
    if (s != RARCH_OK) {
        char msg[512];
        rarch_last_error(msg, sizeof msg);
        fprintf(stderr, "%s: %s: %s\n", what, rarch_status_str(s), msg);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep our lines in order with the library's mirror */
    printf("rarch-logging %s\n", rarch_version());
    rarch_options *opts = rarch_options_new();
    check(rarch_options_set(opts, "mirror", "stdout"), "mirror");
    rarch_logger *log = rarch_logger_new("demo-service", "demo", opts);
    rarch_options_free(opts);
    if (!log) {
        char msg[512];
        rarch_last_error(msg, sizeof msg);
        fprintf(stderr, "rarch_logger_new: %s\n", msg);
        return 1;
    }
    const char *ctx = "{\"action\":\"demo\",\"details\":{\"step\":1,\"tags\":[\"c\",\"\xc3\xbcnicode\"]}}";
    check(rarch_log(log, RARCH_LEVEL_DEBUG, "a debug entry", "user_123", "tenant_abc", "req_456", ctx, NULL), "debug");
    check(rarch_log(log, RARCH_LEVEL_INFO, "an info entry", "user_123", "tenant_abc", NULL, ctx, NULL), "info");
    check(rarch_log(log, RARCH_LEVEL_WARN, "a warning", NULL, NULL, NULL, NULL, NULL), "warn");
    check(rarch_log(log, RARCH_LEVEL_ERROR, "an error", "user_123", NULL, NULL, "{\"code\":500}", "2026-11-23T22:30:00.123456Z"), "error");
    check(rarch_log(log, RARCH_LEVEL_FATAL, "a fatal entry", NULL, "tenant_abc", NULL, NULL, NULL), "fatal");

    printf("-- level set to WARN: the DEBUG and INFO entries below are filtered out\n");
    check(rarch_set_level(log, RARCH_LEVEL_WARN), "set_level");
    check(rarch_log(log, RARCH_LEVEL_DEBUG, "filtered debug", NULL, NULL, NULL, NULL, NULL), "debug");
    check(rarch_log(log, RARCH_LEVEL_INFO, "filtered info", NULL, NULL, NULL, NULL, NULL), "info");
    check(rarch_log(log, RARCH_LEVEL_ERROR, "an error after the level change", NULL, NULL, NULL, NULL, NULL), "error");

    printf("-- bad input gets a status, never a crash:\n");
    rarch_status s = rarch_log(log, RARCH_LEVEL_ERROR, "bad context", NULL, NULL, NULL, "[1,2]", NULL);
    char msg[512];
    rarch_last_error(msg, sizeof msg);
    printf("   context \"[1,2]\" -> %s (%s)\n", rarch_status_str(s), msg);

    check(rarch_flush(log, 10000), "flush");
    rarch_statistics st = {.size = sizeof st};
    check(rarch_stats(log, &st), "stats");
    printf("-- stats: logged=%llu filtered=%llu delivered=%llu buffered=%llu\n",
           (unsigned long long)st.logged, (unsigned long long)st.filtered,
           (unsigned long long)st.delivered, (unsigned long long)st.buffered);
    rarch_logger_free(log);
    return st.delivered == st.logged ? 0 : 1;
}
