/*
 * rarch_logging_macros.h: optional one-line conveniences over rarch_logging.h (C99 and later,
 * also usable from C++). Everything here expands to calls of the C API; nothing is exported
 * by the library for it.
 *
 *     #include <rarch_logging_macros.h>
 *     RARCH_INFO(log, "service started");
 *     RARCH_ERROR_CTX(log, "payment failed", "{\"order\":42}");
 *     rarch_statistics st = rarch_statistics_init();
 *     rarch_stats(log, &st);
 *
 * Every macro evaluates to the rarch_status of the call.
 */
#ifndef RARCH_LOGGING_MACROS_H
#define RARCH_LOGGING_MACROS_H

#include <string.h>
#include <rarch_logging.h>

/* A message only: every other field gets the protocol's default. */
#define RARCH_LOG_MSG(logger, level, message) \
    rarch_log((logger), (level), (message), NULL, NULL, NULL, NULL, NULL)

/* A message and a JSON-object context (a NUL-terminated string such as "{\"k\":1}"). */
#define RARCH_LOG_CTX(logger, level, message, context_json) \
    rarch_log((logger), (level), (message), NULL, NULL, NULL, (context_json), NULL)

#define RARCH_DEBUG(logger, message) RARCH_LOG_MSG((logger), RARCH_LEVEL_DEBUG, (message))
#define RARCH_INFO(logger, message)  RARCH_LOG_MSG((logger), RARCH_LEVEL_INFO, (message))
#define RARCH_WARN(logger, message)  RARCH_LOG_MSG((logger), RARCH_LEVEL_WARN, (message))
#define RARCH_ERROR(logger, message) RARCH_LOG_MSG((logger), RARCH_LEVEL_ERROR, (message))
#define RARCH_FATAL(logger, message) RARCH_LOG_MSG((logger), RARCH_LEVEL_FATAL, (message))

#define RARCH_DEBUG_CTX(logger, message, ctx) RARCH_LOG_CTX((logger), RARCH_LEVEL_DEBUG, (message), (ctx))
#define RARCH_INFO_CTX(logger, message, ctx)  RARCH_LOG_CTX((logger), RARCH_LEVEL_INFO, (message), (ctx))
#define RARCH_WARN_CTX(logger, message, ctx)  RARCH_LOG_CTX((logger), RARCH_LEVEL_WARN, (message), (ctx))
#define RARCH_ERROR_CTX(logger, message, ctx) RARCH_LOG_CTX((logger), RARCH_LEVEL_ERROR, (message), (ctx))
#define RARCH_FATAL_CTX(logger, message, ctx) RARCH_LOG_CTX((logger), RARCH_LEVEL_FATAL, (message), (ctx))


/* A rarch_str for rarch_log_n from a NUL-terminated string (NULL stays "absent"). */
#define RARCH_STR(s) rarch_str_from_cstr(s)
/* A rarch_str from a string literal, without strlen. */
#define RARCH_STR_LIT(lit) rarch_str_from_parts("" lit, sizeof(lit) - 1)

static inline rarch_str rarch_str_from_parts(const char *ptr, size_t len) {
    rarch_str s;
    s.ptr = ptr;
    s.len = len;
    return s;
}

static inline rarch_str rarch_str_from_cstr(const char *s) {
    size_t n = 0;
    if (s != NULL) {
        while (s[n] != '\0') {
            n++;
        }
    }
    return rarch_str_from_parts(s, n);
}

/* A zeroed rarch_statistics with `size` set, as rarch_stats requires (stays right when the
 * struct grows, unlike a hand-written initialiser). */
static inline rarch_statistics rarch_statistics_init(void) {
    rarch_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    return st;
}

#endif /* RARCH_LOGGING_MACROS_H */
