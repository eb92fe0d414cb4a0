/* roundtrip.c: every field of an entry, given and defaulted, through rarch_log and
 * rarch_log_n; every level; level filtering (set_level and the `level` option).
 * The driver (tests/c_programs.rs) checks what the receiver got, field by field. */
#include "testutil.h"

#define SERVICE "c-roundtrip"

/* UTF-8: u-umlaut, euro sign, an emoji (4 bytes), CJK. */
#define UNI "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80\xe6\x97\xa5\xe6\x9c\xac"

int main(void) {
    rarch_logger *lg = t_logger(SERVICE, "rt", NULL);

    /* 1. Every field given, through rarch_log. */
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO,
                        "full " UNI " \"quoted\" back\\slash\nnewline\ttab \x01 ctl",
                        "user-" UNI, "tenant-\xf0\x9f\x98\x80", "req-explicit-1",
                        "{\"a\":{\"b\":[1,2.5,-30000000000,null,true,false,\"x\\u0000y\"],\"c\":null},"
                        "\"emoji\":\"\xf0\x9f\x98\x80\",\"esc\":\"\\u00fc\\ud83d\\ude00\\\"\","
                        "\"empty\":{},\"arr\":[],\"deep\":{\"l1\":{\"l2\":{\"l3\":{\"l4\":\"bottom\"}}}}}",
                        "2026-11-23T22:30:00.123456Z"));

    /* 2. rarch_log_n: slices of a larger buffer (no NULs at their ends), an embedded NUL in
     * the message, an empty (present) user_id, an absent tenant_id, a non-UTC offset. */
    {
        static const char buf[] = "XXnul\0insideXX|req-n-2|{\"k\":[1,{\"z\":null}]}trailing|"
                                  "2026-11-23T23:30:00.5+01:00XX";
        const char *req = strchr(buf + 14, '|') + 1; /* after "XXnul\0insideXX" */
        const char *ctx = strchr(req, '|') + 1;
        const char *ts = strstr(ctx, "trailing|") + 9;
        rarch_entry e;
        memset(&e, 0, sizeof e);
        e.message.ptr = buf + 2;
        e.message.len = 10; /* "nul\0inside" */
        e.user_id.ptr = buf; /* present, empty */
        e.user_id.len = 0;
        e.request_id.ptr = req;
        e.request_id.len = 7; /* "req-n-2" */
        e.context_json.ptr = ctx;
        e.context_json.len = (size_t)(strstr(ctx, "trailing") - ctx);
        e.client_log_datetime.ptr = ts;
        e.client_log_datetime.len = strlen("2026-11-23T23:30:00.5+01:00");
        EXPECT_OK(rarch_log_n(lg, RARCH_LEVEL_WARN, &e));
    }

    /* 3. Defaults: only a message, with logger_name NULL and "" (both mean the service). */
    {
        rarch_logger *d1 = t_logger(SERVICE, NULL, NULL);
        rarch_logger *d2 = t_logger(SERVICE, "", NULL);
        EXPECT_OK(rarch_log(d1, RARCH_LEVEL_DEBUG, "defaults-1", NULL, NULL, NULL, NULL, NULL));
        rarch_entry e;
        memset(&e, 0, sizeof e);
        e.message.ptr = "defaults-2";
        e.message.len = strlen("defaults-2");
        EXPECT_OK(rarch_log_n(d2, RARCH_LEVEL_DEBUG, &e));
        EXPECT_OK(rarch_flush(d1, 60000));
        rarch_logger_free(d1);
        rarch_logger_free(d2);
    }

    /* 4. Every level. */
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_DEBUG, "level-DEBUG", NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, "level-INFO", NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_WARN, "level-WARN", NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_ERROR, "level-ERROR", NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_FATAL, "level-FATAL", NULL, NULL, NULL, NULL, NULL));

    /* 5. Filtering with rarch_set_level: below the level is OK and counted, never sent. */
    rarch_statistics before = t_stats(lg);
    EXPECT(rarch_get_level(lg) == RARCH_LEVEL_DEBUG);
    EXPECT_OK(rarch_set_level(lg, RARCH_LEVEL_WARN));
    EXPECT(rarch_get_level(lg) == RARCH_LEVEL_WARN);
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_DEBUG, "filtered-1", NULL, NULL, NULL, NULL, NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, "filtered-2", NULL, NULL, NULL, "{\"x\":1}", NULL));
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_WARN, "kept-after-set-level", NULL, NULL, NULL, NULL, NULL));
    rarch_statistics after = t_stats(lg);
    EXPECT(after.filtered == before.filtered + 2);
    EXPECT(after.logged == before.logged + 1);

    /* 6. Filtering with the `level` option. */
    {
        rarch_options *o = rarch_options_new();
        EXPECT(o != NULL);
        EXPECT_OK(rarch_options_set(o, "level", "ERROR"));
        rarch_logger *e = t_logger(SERVICE, "opt-level", o);
        rarch_options_free(o);
        EXPECT(rarch_get_level(e) == RARCH_LEVEL_ERROR);
        EXPECT_OK(rarch_log(e, RARCH_LEVEL_WARN, "filtered-3", NULL, NULL, NULL, NULL, NULL));
        EXPECT_OK(rarch_log(e, RARCH_LEVEL_ERROR, "kept-level-option", NULL, NULL, NULL, NULL, NULL));
        EXPECT_OK(rarch_flush(e, 60000));
        rarch_statistics st = t_stats(e);
        EXPECT(st.filtered >= 1);
        rarch_logger_free(e);
    }

    EXPECT_OK(rarch_flush(lg, 60000));
    rarch_statistics st = t_stats(lg);
    t_print_stats("roundtrip", &st);
    EXPECT(st.delivered >= st.logged);
    EXPECT(st.dropped_queue_full + st.dropped_buffer_cap + st.dropped_io == 0);
    EXPECT(st.queue_len == 0);
    rarch_logger_free(lg);
    return t_finish("roundtrip");
}
