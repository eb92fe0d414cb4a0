/* bad_input.c: every bad input returns its status (and a message), nothing bad is sent, and
 * the logger keeps working. Also checks the header's version macros against rarch_version().
 * The driver checks that the receiver got exactly the one good entry. */
#include "testutil.h"

#define SERVICE "c-bad-input"
#define BAD "\xff\xfe"        /* never valid UTF-8 */
#define TRUNC "ok\xe2\x82"    /* a truncated 3-byte sequence */
#define SURR "\xed\xa0\x80"   /* an encoded surrogate (invalid in UTF-8) */

static rarch_entry entry(const char *message) {
    rarch_entry e;
    memset(&e, 0, sizeof e);
    e.message.ptr = message;
    e.message.len = message ? strlen(message) : 0;
    return e;
}

static rarch_str s(const char *p) {
    rarch_str r;
    r.ptr = p;
    r.len = strlen(p);
    return r;
}

static void check_last_error(void) {
    /* snprintf-style: the length without NUL, with a NULL buffer too; truncation terminates. */
    size_t n = rarch_last_error(NULL, 0);
    EXPECT(n > 0);
    char small[4] = {'x', 'x', 'x', 'x'};
    EXPECT(rarch_last_error(small, sizeof small) == n);
    EXPECT(small[3] == '\0' && strlen(small) == 3);
    char big[1024];
    EXPECT(rarch_last_error(big, sizeof big) == n);
    EXPECT(strlen(big) == (n < sizeof big ? n : sizeof big - 1));
}

int main(void) {
    /* --- version */
    {
        char v[64];
        snprintf(v, sizeof v, "%d.%d.%d", RARCH_VERSION_MAJOR, RARCH_VERSION_MINOR, RARCH_VERSION_PATCH);
        EXPECT(strcmp(v, RARCH_VERSION) == 0);
        EXPECT(strcmp(rarch_version(), RARCH_VERSION) == 0);
        printf("header-version=%s\nlibrary-version=%s\n", RARCH_VERSION, rarch_version());
    }

    /* --- statuses have distinct names; unknown values are named so */
    for (int a = 0; a <= RARCH_ERR_PANIC; a++) {
        EXPECT(rarch_status_str(a) != NULL && strlen(rarch_status_str(a)) > 0);
        for (int b = 0; b < a; b++) EXPECT(strcmp(rarch_status_str(a), rarch_status_str(b)) != 0);
    }
    EXPECT(strcmp(rarch_status_str(-1), "unknown status") == 0);
    EXPECT(strcmp(rarch_status_str(999), "unknown status") == 0);

    /* --- options */
    rarch_options *o = rarch_options_new();
    EXPECT(o != NULL);
    EXPECT_STATUS(rarch_options_set(NULL, "level", "INFO"), RARCH_ERR_NULL_ARGUMENT);
    check_last_error();
    EXPECT_STATUS(rarch_options_set(o, NULL, "INFO"), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_options_set(o, "level", NULL), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_options_set(o, "no_such_key", "1"), RARCH_ERR_CONFIG);
    {
        char msg[512];
        rarch_last_error(msg, sizeof msg);
        EXPECT(strstr(msg, "no_such_key") != NULL); /* the message names the key */
    }
    EXPECT_STATUS(rarch_options_set(o, "level", "LOUD"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "timeout_ms", "abc"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "timeout_ms", "-5"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "queue_capacity", "lots"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "mode", "sometimes"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "on_full", "maybe"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "mirror", "printer"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "durable", "perhaps"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, "url", "not a url"), RARCH_ERR_CONFIG);
    EXPECT_STATUS(rarch_options_set(o, BAD, "1"), RARCH_ERR_INVALID_UTF8);
    EXPECT_STATUS(rarch_options_set(o, "level", BAD), RARCH_ERR_INVALID_UTF8);
    check_last_error();
    EXPECT_OK(rarch_options_set(o, "close_timeout_ms", "3000"));
    rarch_options_free(NULL); /* fine */

    /* --- logger_new */
    EXPECT(rarch_logger_new(NULL, NULL, NULL) == NULL);
    check_last_error();
    EXPECT(rarch_logger_new("", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new("a/b", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new("a\\b", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new(".hidden", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new("..", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new("tab\tname", NULL, NULL) == NULL);
    EXPECT(rarch_logger_new(BAD, NULL, NULL) == NULL);
    EXPECT(rarch_logger_new(SERVICE, BAD, NULL) == NULL);
    rarch_logger_free(NULL); /* fine */

    rarch_logger *lg = t_logger(SERVICE, NULL, NULL); /* NULL options: environment + defaults */
    rarch_logger *lo = t_logger(SERVICE, "with-options", o);
    rarch_options_free(o);

    /* --- NULL logger / message / entry */
    EXPECT_STATUS(rarch_log(NULL, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, NULL, NULL), RARCH_ERR_NULL_ARGUMENT);
    check_last_error();
    EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, NULL, NULL, NULL, NULL, NULL, NULL), RARCH_ERR_NULL_ARGUMENT);
    rarch_entry e = entry("m");
    EXPECT_STATUS(rarch_log_n(NULL, RARCH_LEVEL_INFO, &e), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, NULL), RARCH_ERR_NULL_ARGUMENT);
    e = entry(NULL);
    EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_NULL_ARGUMENT);
    e = entry(NULL);
    e.message.len = 5; /* NULL with a length is still NULL */
    EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_flush(NULL, 0), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_set_level(NULL, RARCH_LEVEL_INFO), RARCH_ERR_NULL_ARGUMENT);
    EXPECT(rarch_get_level(NULL) == RARCH_LEVEL_DEBUG);

    /* --- levels out of range (before the filter: also when the logger's level is high) */
    const int bad_levels[] = {99, -1, 5, -2147483647 - 1, 2147483647};
    for (size_t i = 0; i < sizeof bad_levels / sizeof bad_levels[0]; i++) {
        int lv = bad_levels[i];
        EXPECT_STATUS(rarch_log(lg, lv, "m", NULL, NULL, NULL, NULL, NULL), RARCH_ERR_INVALID_LEVEL);
        e = entry("m");
        EXPECT_STATUS(rarch_log_n(lg, lv, &e), RARCH_ERR_INVALID_LEVEL);
        EXPECT_STATUS(rarch_set_level(lg, lv), RARCH_ERR_INVALID_LEVEL);
    }
    check_last_error();
    EXPECT(rarch_get_level(lg) == RARCH_LEVEL_DEBUG);

    /* --- invalid UTF-8 in each string, through both calls */
    const char *bads[] = {BAD, TRUNC, SURR, "\xc0\xaf" /* overlong "/" */};
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const char *b = bads[i];
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, b, NULL, NULL, NULL, NULL, NULL), RARCH_ERR_INVALID_UTF8);
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", b, NULL, NULL, NULL, NULL), RARCH_ERR_INVALID_UTF8);
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, b, NULL, NULL, NULL), RARCH_ERR_INVALID_UTF8);
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, b, NULL, NULL), RARCH_ERR_INVALID_UTF8);
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, b, NULL), RARCH_ERR_INVALID_UTF8);
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, NULL, b), RARCH_ERR_INVALID_UTF8);
        rarch_entry base = entry("m");
        e = base; e.message = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
        e = base; e.user_id = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
        e = base; e.tenant_id = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
        e = base; e.request_id = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
        e = base; e.context_json = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
        e = base; e.client_log_datetime = s(b);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_UTF8);
    }
    /* invalid UTF-8 inside a JSON string of the context */
    EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, "{\"k\":\"" BAD "\"}", NULL),
                  RARCH_ERR_INVALID_UTF8);
    check_last_error();

    /* --- context: not an object, not JSON */
    const char *bad_json[] = {"[1,2]", "42", "\"str\"", "null", "true", "", "{", "{\"a\":}",
                              "{\"a\":1,}", "{} trailing", "{'a':1}", "{\"a\":NaN}", "{\"a\" 1}"};
    for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, bad_json[i], NULL),
                      RARCH_ERR_INVALID_JSON);
        e = entry("m");
        e.context_json = s(bad_json[i]);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_JSON);
    }
    check_last_error();

    /* --- timestamps */
    const char *bad_ts[] = {"yesterday", "", "2026-13-01T00:00:00Z", "2026-11-23T22:30:00",
                            "2026-11-23", "2026-11-23T25:00:00Z", "1700000000"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        EXPECT_STATUS(rarch_log(lg, RARCH_LEVEL_INFO, "m", NULL, NULL, NULL, NULL, bad_ts[i]),
                      RARCH_ERR_INVALID_TIMESTAMP);
        e = entry("m");
        e.client_log_datetime = s(bad_ts[i]);
        EXPECT_STATUS(rarch_log_n(lg, RARCH_LEVEL_INFO, &e), RARCH_ERR_INVALID_TIMESTAMP);
    }
    check_last_error();

    /* --- stats: NULLs and sizes */
    rarch_statistics st;
    memset(&st, 0, sizeof st);
    st.size = 0;
    EXPECT_STATUS(rarch_stats(lg, &st), RARCH_ERR_INVALID_ARGUMENT);
    st.size = sizeof(size_t) - 1;
    EXPECT_STATUS(rarch_stats(lg, &st), RARCH_ERR_INVALID_ARGUMENT);
    check_last_error();
    EXPECT_STATUS(rarch_stats(NULL, &st), RARCH_ERR_NULL_ARGUMENT);
    EXPECT_STATUS(rarch_stats(lg, NULL), RARCH_ERR_NULL_ARGUMENT);
    {
        /* an old caller's smaller struct: nothing is written beyond `size` */
        unsigned char raw[sizeof(rarch_statistics) + 16];
        memset(raw, 0xAB, sizeof raw);
        size_t small = sizeof(size_t) + 2 * sizeof(uint64_t);
        memcpy(raw, &small, sizeof small);
        EXPECT_OK(rarch_stats(lg, (rarch_statistics *)(void *)raw));
        size_t wrote;
        memcpy(&wrote, raw, sizeof wrote);
        EXPECT(wrote == small);
        for (size_t i = small; i < sizeof raw; i++) EXPECT(raw[i] == 0xAB);
        /* a newer caller's bigger struct: the library writes what it has */
        rarch_statistics big[2];
        memset(big, 0, sizeof big);
        big[0].size = sizeof big;
        EXPECT_OK(rarch_stats(lg, &big[0]));
        EXPECT(big[0].size == sizeof(rarch_statistics));
    }

    /* --- too large for max_entry_bytes */
    {
        rarch_options *ob = rarch_options_new();
        EXPECT_OK(rarch_options_set(ob, "max_entry_bytes", "1024"));
        rarch_logger *small = t_logger(SERVICE, "small", ob);
        rarch_options_free(ob);
        char big[4096];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\0';
        EXPECT_STATUS(rarch_log(small, RARCH_LEVEL_INFO, big, NULL, NULL, NULL, NULL, NULL),
                      RARCH_ERR_INVALID_ARGUMENT);
        rarch_logger_free(small);
    }

    /* --- nothing was taken; the logger still works */
    st = t_stats(lg);
    EXPECT(st.logged == 0);
    EXPECT_OK(rarch_log(lg, RARCH_LEVEL_INFO, "bad-input-survivor", NULL, NULL, NULL, "{}", NULL));
    EXPECT_OK(rarch_flush(lg, 60000));
    EXPECT_OK(rarch_flush(lo, 60000));
    st = t_stats(lg);
    t_print_stats("bad_input", &st);
    EXPECT(st.logged == 1 && st.delivered == 1);
    rarch_logger_free(lo);
    rarch_logger_free(lg);
    return t_finish("bad_input");
}
