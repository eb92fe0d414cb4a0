// rarch_logging.hpp: a header-only C++17 wrapper over the C API of rarch-logging.
//
//     #include <rarch_logging.hpp>
//     rarch::Logger log("billing", "api");                 // free on destruction
//     log.info("started");
//     log.error("payment failed", rarch::Fields()
//                  .user("user_123")
//                  .context(rarch::Context().add("order", 42).add("note", "said \"no\"")));
//     log.flush(std::chrono::seconds(5));
//
// Link as for C (pkg-config rarch-logging, or CMake target rarch_logging::rarch_logging).
//
// Errors. Every call that can fail comes in two forms, as in std::filesystem:
//   - without a std::error_code argument it throws rarch::Error (a std::system_error whose
//     code() is in rarch::category() and whose what() carries the library's message);
//   - with a trailing `std::error_code& ec` it is noexcept and sets `ec` (cleared on success).
// Compare codes with rarch::Errc: `if (ec == rarch::Errc::invalid_json) ...`.
// Destructors never throw.
//
// Strings are std::string_view, passed to the library as pointer+length (rarch_log_n): no
// copy, no NUL needed, embedded NULs kept. The views must live for the duration of the call
// (a rarch::Fields stores views: build it in the call expression or keep what it refers to).
//
// Threading: one Logger may be used from many threads at once (every const member), as the
// C API allows; moving, assigning or destroying it must not race with other calls.
#ifndef RARCH_LOGGING_HPP
#define RARCH_LOGGING_HPP

#include <rarch_logging.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#if defined(__has_include)
#if __has_include(<charconv>)
#include <charconv>
#endif
#endif

namespace rarch {

// ---------------------------------------------------------------------------------------------
// Levels and errors

enum class Level : int {
    Debug = RARCH_LEVEL_DEBUG,
    Info = RARCH_LEVEL_INFO,
    Warn = RARCH_LEVEL_WARN,
    Error = RARCH_LEVEL_ERROR,
    Fatal = RARCH_LEVEL_FATAL,
};

// The library's statuses as an error-code enum (0 is success and never an error).
enum class Errc : int {
    null_argument = RARCH_ERR_NULL_ARGUMENT,
    invalid_argument = RARCH_ERR_INVALID_ARGUMENT,
    invalid_level = RARCH_ERR_INVALID_LEVEL,
    invalid_utf8 = RARCH_ERR_INVALID_UTF8,
    invalid_json = RARCH_ERR_INVALID_JSON,
    invalid_timestamp = RARCH_ERR_INVALID_TIMESTAMP,
    config = RARCH_ERR_CONFIG,
    queue_full = RARCH_ERR_QUEUE_FULL,
    timed_out = RARCH_ERR_TIMED_OUT,
    io = RARCH_ERR_IO,
    transport = RARCH_ERR_TRANSPORT,
    auth = RARCH_ERR_AUTH,
    rejected = RARCH_ERR_REJECTED,
    closed = RARCH_ERR_CLOSED,
    panic = RARCH_ERR_PANIC,
};

namespace detail {
class Category final : public std::error_category {
public:
    const char *name() const noexcept override { return "rarch_logging"; }
    std::string message(int status) const override { return rarch_status_str(status); }
};
}  // namespace detail

inline const std::error_category &category() noexcept {
    static const detail::Category c;
    return c;
}

inline std::error_code make_error_code(Errc e) noexcept {
    return std::error_code(static_cast<int>(e), category());
}

// This thread's last error message from the library ("" if none).
inline std::string last_error() {
    char buf[512];
    size_t n = rarch_last_error(buf, sizeof buf);
    if (n < sizeof buf) return std::string(buf, n);
    std::string s(n + 1, '\0');
    rarch_last_error(&s[0], s.size());
    s.resize(n);
    return s;
}

// What the throwing calls throw: code() is in rarch::category().
class Error : public std::system_error {
public:
    Error(std::error_code ec, const std::string &what) : std::system_error(ec, what) {}
};

// The library version (static string), e.g. "0.1.0".
inline const char *version() noexcept { return rarch_version(); }

namespace detail {
inline std::error_code to_ec(rarch_status s) noexcept {
    return s == RARCH_OK ? std::error_code() : std::error_code(static_cast<int>(s), category());
}

[[noreturn]] inline void raise(std::error_code ec, const char *what) {
    std::string msg = what;
    msg += ": ";
    std::string detail = last_error();
    msg += detail.empty() ? ec.message() : detail;
    throw Error(ec, msg);
}

inline void check(rarch_status s, const char *what) {
    if (s != RARCH_OK) raise(to_ec(s), what);
}

// A string_view as rarch_str; an empty view with a NULL data() still means "present, empty".
inline rarch_str str(std::string_view v) noexcept {
    rarch_str r;
    r.ptr = v.data() != nullptr ? v.data() : "";
    r.len = v.size();
    return r;
}

inline rarch_str opt(const std::optional<std::string_view> &v) noexcept {
    if (!v) {
        rarch_str r;
        r.ptr = nullptr;
        r.len = 0;
        return r;
    }
    return str(*v);
}

// Milliseconds for the C API: rounded up, clamped to [0, UINT32_MAX].
template <class Rep, class Period>
std::uint32_t to_ms(std::chrono::duration<Rep, Period> d) noexcept {
    using namespace std::chrono;
    if (d <= d.zero()) return 0;
    auto ms = duration_cast<duration<double, std::milli>>(d).count();
    if (!(ms < 4294967295.0)) return 4294967295u;
    auto whole = static_cast<std::uint32_t>(ms);
    return static_cast<double>(whole) < ms ? whole + 1 : whole;
}

inline void append_escaped(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += ch;  // UTF-8 bytes pass through; the library checks they are valid
            }
        }
    }
    out += '"';
}

inline void append_double(std::string &out, double v) {
    if (!std::isfinite(v)) {  // JSON has no NaN or infinity
        out += "null";
        return;
    }
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
#else
    char buf[64];
    int n = std::snprintf(buf, sizeof buf, "%.17g", v);
    for (int i = 0; i < n; i++) {
        if (buf[i] == ',') buf[i] = '.';  // a locale's decimal comma
    }
    out.append(buf, static_cast<size_t>(n));
#endif
}

template <class T>
constexpr bool is_json_integer =
    std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
    !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char16_t> && !std::is_same_v<T, char32_t>;

// The shared value writer of Context and Array.
template <class Self>
class JsonWriter {
public:
    const std::string &str() const noexcept { return buf_; }
    std::string_view view() const noexcept { return buf_; }
    bool empty() const noexcept { return buf_.size() == 2; }

protected:
    explicit JsonWriter(const char *empty) : buf_(empty) {}

    // Reopens the container for one more member; the closing bracket is put back by close().
    void open() {
        char last = buf_.back();
        buf_.pop_back();
        if (buf_.size() > 1) buf_ += ',';
        closing_ = last;
    }
    void close() { buf_ += closing_; }

    void value(std::string_view v) { append_escaped(buf_, v); }
    void value(const char *v) {
        if (v == nullptr) buf_ += "null";
        else append_escaped(buf_, v);
    }
    void value(const std::string &v) { append_escaped(buf_, v); }
    void value(bool v) { buf_ += v ? "true" : "false"; }
    void value(std::nullptr_t) { buf_ += "null"; }
    void value(double v) { append_double(buf_, v); }
    void value(float v) { append_double(buf_, static_cast<double>(v)); }
    void value(long double v) { append_double(buf_, static_cast<double>(v)); }
    template <class T, std::enable_if_t<is_json_integer<T>, int> = 0>
    void value(T v) {
        buf_ += std::to_string(v);
    }
    template <class T>
    void value(const std::optional<T> &v) {
        if (v) value(*v);
        else buf_ += "null";
    }
    void raw(std::string_view json) { buf_.append(json.data() ? json.data() : "", json.size()); }

    std::string buf_;
    char closing_ = '}';
};
}  // namespace detail

class Context;

// A JSON array: rarch::Array().add(1).add("two").add(nullptr).add(rarch::Context()...).
class Array : public detail::JsonWriter<Array> {
public:
    Array() : JsonWriter("[]") {}

    template <class T>
    Array &add(const T &v) {
        open();
        put(v);
        close();
        return *this;
    }
    // Appends JSON text as is (the library checks the whole context when logging).
    Array &add_raw(std::string_view json) {
        open();
        raw(json);
        close();
        return *this;
    }

private:
    template <class T>
    void put(const T &v);
};

// A JSON object for the entry's context, built without writing JSON by hand: keys and string
// values are escaped (quotes, backslashes, control characters); numbers, booleans, null,
// nested objects and arrays. A key added twice is written twice (the server keeps the last).
//
//     rarch::Context().add("order", 42).add("user", "ü \"x\"").add("tags", rarch::Array().add("a"))
//                     .add("details", rarch::Context().add("step", 1).add("none", nullptr))
class Context : public detail::JsonWriter<Context> {
public:
    Context() : JsonWriter("{}") {}

    template <class T>
    Context &add(std::string_view key, const T &v) {
        open();
        detail::append_escaped(buf_, key);
        buf_ += ':';
        put(v);
        close();
        return *this;
    }
    // Adds a member whose value is JSON text as is (checked by the library when logging).
    Context &add_raw(std::string_view key, std::string_view json) {
        open();
        detail::append_escaped(buf_, key);
        buf_ += ':';
        raw(json);
        close();
        return *this;
    }

private:
    template <class T>
    void put(const T &v) {
        if constexpr (std::is_same_v<T, Context> || std::is_same_v<T, Array>) {
            raw(v.str());
        } else if constexpr (std::is_array_v<T>) {
            value(static_cast<const char *>(v));  // string literals
        } else {
            value(v);
        }
    }
};

template <class T>
void Array::put(const T &v) {
    if constexpr (std::is_same_v<T, Context> || std::is_same_v<T, Array>) {
        raw(v.str());
    } else if constexpr (std::is_array_v<T>) {
        value(static_cast<const char *>(v));
    } else {
        value(v);
    }
}

// The optional fields of an entry; unset fields get the protocol's defaults (user_id and
// tenant_id null, request_id a fresh UUID v4, context {}, client_log_datetime now).
// It holds views: whatever it refers to must outlive the log call.
class Fields {
public:
    Fields &user(std::string_view v) noexcept { user_id_ = v; return *this; }
    Fields &tenant(std::string_view v) noexcept { tenant_id_ = v; return *this; }
    Fields &request(std::string_view v) noexcept { request_id_ = v; return *this; }
    // A JSON object as text, e.g. R"({"order":42})".
    Fields &context_json(std::string_view v) noexcept { context_ = v; return *this; }
    // A built context; the Context must outlive the log call.
    Fields &context(const Context &c) noexcept { context_ = c.view(); return *this; }
    // RFC 3339, e.g. "2026-11-23T22:30:00.123456Z".
    Fields &time(std::string_view v) noexcept { time_ = v; return *this; }
    // A W3C trace context, "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>" (e.g. the
    // traceparent header of the request, or the current span's): the entry carries the trace
    // and span ids (rarch_log_traced). A malformed one is refused (Errc::invalid_argument).
    Fields &traceparent(std::string_view v) noexcept { traceparent_ = v; return *this; }
    const std::optional<std::string_view> &traceparent() const noexcept { return traceparent_; }

    rarch_entry entry(std::string_view message) const noexcept {
        rarch_entry e;
        e.message = detail::str(message);
        e.user_id = detail::opt(user_id_);
        e.tenant_id = detail::opt(tenant_id_);
        e.request_id = detail::opt(request_id_);
        e.context_json = detail::opt(context_);
        e.client_log_datetime = detail::opt(time_);
        return e;
    }

private:
    std::optional<std::string_view> user_id_, tenant_id_, request_id_, context_, time_,
        traceparent_;
};

// Options for a Logger (see rarch_options_set in rarch_logging.h for the keys). Chainable:
//     rarch::Options().set("url", "http://127.0.0.1:8080/log").set("mirror", "stderr")
//     rarch::Options().set("sink", "otlp").set("compression", "gzip")   // OTLP/HTTP logs
class Options {
public:
    Options() : p_(rarch_options_new()) {
        if (p_ == nullptr) throw std::bad_alloc();
    }
    ~Options() { rarch_options_free(p_); }
    Options(const Options &) = delete;
    Options &operator=(const Options &) = delete;
    Options(Options &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Options &operator=(Options &&o) noexcept {
        if (this != &o) {
            rarch_options_free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }

    Options &set(std::string_view key, std::string_view value) {
        std::error_code ec;
        set(key, value, ec);
        if (ec) detail::raise(ec, "rarch_options_set");
        return *this;
    }
    Options &set(std::string_view key, std::string_view value, std::error_code &ec) noexcept {
        try {
            std::string k(key), v(value);  // the C API wants NUL-terminated strings
            ec = detail::to_ec(rarch_options_set(p_, k.c_str(), v.c_str()));
        } catch (...) {
            ec = std::make_error_code(std::errc::not_enough_memory);
        }
        return *this;
    }

    const rarch_options *get() const noexcept { return p_; }

private:
    rarch_options *p_;
};

// A logger: move-only, freed on destruction (which delivers what it can within the
// close_timeout_ms option and writes the rest to the disk buffer).
class Logger {
public:
    // `logger_name` empty means the service name. Throws rarch::Error.
    explicit Logger(std::string_view service, std::string_view logger_name = {},
                    const Options *opts = nullptr) {
        std::error_code ec;
        init(service, logger_name, opts, ec);
        if (ec) detail::raise(ec, "rarch_logger_new");
    }
    Logger(std::string_view service, std::string_view logger_name, const Options &opts)
        : Logger(service, logger_name, &opts) {}
    // Non-throwing: on failure `ec` is set and the logger is empty (!valid()).
    Logger(std::string_view service, std::string_view logger_name, const Options *opts,
           std::error_code &ec) noexcept {
        init(service, logger_name, opts, ec);
    }

    ~Logger() { rarch_logger_free(p_); }
    Logger(const Logger &) = delete;
    Logger &operator=(const Logger &) = delete;
    Logger(Logger &&o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
    Logger &operator=(Logger &&o) noexcept {
        if (this != &o) {
            rarch_logger_free(p_);
            p_ = std::exchange(o.p_, nullptr);
        }
        return *this;
    }

    bool valid() const noexcept { return p_ != nullptr; }
    explicit operator bool() const noexcept { return valid(); }
    rarch_logger *native_handle() const noexcept { return p_; }

    // Logging. An entry below the logger's level is not an error (it is counted as filtered).
    void log(Level level, std::string_view message, const Fields &f = Fields()) const {
        std::error_code ec;
        log(level, message, f, ec);
        if (ec) detail::raise(ec, "rarch_log");
    }
    void log(Level level, std::string_view message, const Fields &f,
             std::error_code &ec) const noexcept {
        rarch_entry e = f.entry(message);
        if (!f.traceparent()) {
            ec = detail::to_ec(rarch_log_n(p_, static_cast<int>(level), &e));
            return;
        }
        // rarch_log_traced takes a NUL-terminated string: a copy on the stack (a traceparent
        // is 55 characters; a later version's may be longer, up to this buffer).
        char tp[256];
        std::string_view v = *f.traceparent();
        if (v.size() >= sizeof tp) {
            ec = detail::to_ec(RARCH_ERR_INVALID_ARGUMENT);
            return;
        }
        v.copy(tp, v.size());
        tp[v.size()] = '\0';
        ec = detail::to_ec(rarch_log_traced(p_, static_cast<int>(level), &e, tp));
    }
    void log(Level level, std::string_view message, std::error_code &ec) const noexcept {
        log(level, message, Fields(), ec);
    }

    void debug(std::string_view m, const Fields &f = Fields()) const { log(Level::Debug, m, f); }
    void info(std::string_view m, const Fields &f = Fields()) const { log(Level::Info, m, f); }
    void warn(std::string_view m, const Fields &f = Fields()) const { log(Level::Warn, m, f); }
    void error(std::string_view m, const Fields &f = Fields()) const { log(Level::Error, m, f); }
    void fatal(std::string_view m, const Fields &f = Fields()) const { log(Level::Fatal, m, f); }

    // Waits until everything logged before is delivered (and the disk buffer replayed), at
    // most `timeout` (rounded up to milliseconds). Throws rarch::Error with Errc::timed_out
    // when time runs out (nothing is dropped).
    template <class Rep, class Period>
    void flush(std::chrono::duration<Rep, Period> timeout) const {
        std::error_code ec;
        flush(timeout, ec);
        if (ec) detail::raise(ec, "rarch_flush");
    }
    template <class Rep, class Period>
    void flush(std::chrono::duration<Rep, Period> timeout, std::error_code &ec) const noexcept {
        ec = detail::to_ec(rarch_flush(p_, detail::to_ms(timeout)));
    }

    void set_level(Level level) {
        std::error_code ec;
        set_level(level, ec);
        if (ec) detail::raise(ec, "rarch_set_level");
    }
    void set_level(Level level, std::error_code &ec) noexcept {
        ec = detail::to_ec(rarch_set_level(p_, static_cast<int>(level)));
    }
    Level level() const noexcept { return static_cast<Level>(rarch_get_level(p_)); }

    // The pipeline's counters.
    rarch_statistics stats() const {
        std::error_code ec;
        rarch_statistics s = stats(ec);
        if (ec) detail::raise(ec, "rarch_stats");
        return s;
    }
    rarch_statistics stats(std::error_code &ec) const noexcept {
        rarch_statistics s{};
        s.size = sizeof s;
        ec = detail::to_ec(rarch_stats(p_, &s));
        return s;
    }

private:
    void init(std::string_view service, std::string_view logger_name, const Options *opts,
              std::error_code &ec) noexcept {
        p_ = nullptr;
        try {
            std::string s(service), n(logger_name);
            p_ = rarch_logger_new(s.c_str(), n.empty() ? nullptr : n.c_str(),
                                  opts ? opts->get() : nullptr);
            // rarch_logger_new reports no status: the message says what went wrong.
            ec = p_ ? std::error_code() : make_error_code(Errc::invalid_argument);
        } catch (...) {
            ec = std::make_error_code(std::errc::not_enough_memory);
        }
    }

    rarch_logger *p_ = nullptr;
};

}  // namespace rarch

namespace std {
template <>
struct is_error_code_enum<rarch::Errc> : true_type {};
}  // namespace std

#endif  // RARCH_LOGGING_HPP
