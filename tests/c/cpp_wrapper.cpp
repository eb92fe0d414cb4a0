// cpp_wrapper.cpp: the C++17 wrapper (bindings/c/rarch_logging.hpp): RAII and move-only
// Logger, string_view arguments (not NUL-terminated, embedded NULs), levels as enum class,
// both error styles (exceptions and std::error_code), std::chrono flush, and the Context
// builder's escaping. The driver compares what the receiver got with the expected JSON.
#include <rarch_logging.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

static_assert(!std::is_copy_constructible_v<rarch::Logger>, "Logger is move-only");
static_assert(!std::is_copy_assignable_v<rarch::Logger>, "Logger is move-only");
static_assert(std::is_nothrow_move_constructible_v<rarch::Logger>, "noexcept move");
static_assert(std::is_nothrow_move_assignable_v<rarch::Logger>, "noexcept move");
static_assert(!std::is_copy_constructible_v<rarch::Options>, "Options is move-only");
static_assert(std::is_error_code_enum_v<rarch::Errc>, "Errc is an error-code enum");
static_assert(static_cast<int>(rarch::Level::Fatal) == RARCH_LEVEL_FATAL, "levels match");

static int failures = 0;
#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            std::fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

int main() {
    std::printf("rarch-logging %s\n", rarch::version());

    // --- the Context builder, checked as text first
    {
        rarch::Context c;
        CHECK(c.str() == "{}");
        CHECK(c.empty());
        c.add("a", 1);
        CHECK(c.str() == R"({"a":1})");
        c.add("b", rarch::Array());
        CHECK(c.str() == R"({"a":1,"b":[]})");
        CHECK(rarch::Array().add(1).add("x").add(nullptr).str() == R"([1,"x",null])");
        CHECK(rarch::Context().add("q\"k", "v\\\n").str() == R"({"q\"k":"v\\\n"})");
        CHECK(rarch::Context().add("c", std::string(1, '\x01')).str() == R"({"c":"\u0001"})");
        CHECK(rarch::Context().add("f", 0.1).str() == R"({"f":0.1})");
    }

    rarch::Options opts;
    opts.set("close_timeout_ms", "5000").set("timeout_ms", "3000");

    // --- exceptions: bad option, bad service
    try {
        rarch::Options().set("no_such_key", "1");
        CHECK(!"no exception for an unknown key");
    } catch (const rarch::Error &e) {
        CHECK(e.code() == rarch::Errc::config);
        CHECK(std::strstr(e.what(), "no_such_key") != nullptr);
    }
    try {
        rarch::Logger bad("a/b");
        CHECK(!"no exception for a bad service name");
    } catch (const std::system_error &e) {  // rarch::Error is a std::system_error
        CHECK(e.code().category() == rarch::category());
    }
    {
        std::error_code ec;
        rarch::Logger bad("", {}, nullptr, ec);
        CHECK(ec && !bad.valid());
    }

    rarch::Logger moved_from("cpp-wrapper", "cpp", opts);
    rarch::Logger log(std::move(moved_from));  // the handle moves; the old one is empty
    CHECK(log.valid() && !moved_from.valid());
    {
        std::error_code ec;
        moved_from.log(rarch::Level::Info, "into nothing", ec);
        CHECK(ec == rarch::Errc::null_argument);
    }

    // --- a built context: escaping, unicode, nesting, every value type
    const std::string key_with_quote = "k\"ey";
    rarch::Context ctx;
    ctx.add("order", 42)
        .add("negative", -7LL)
        .add("big", 18446744073709551615ULL)
        .add("ratio", 0.25)
        .add("ok", true)
        .add("no", false)
        .add("nothing", nullptr)
        .add("null_cstr", static_cast<const char *>(nullptr))
        .add("quote", "say \"hi\"")
        .add("backslash", "C:\\path\\file")
        .add("controls", std::string("nl\ncr\rtab\tbs\bff\fnul") + std::string(1, '\0') + "\x1f\x7f")
        .add("unicode", "\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80")
        .add(key_with_quote, std::string_view("view"))
        .add("opt_set", std::optional<int>(5))
        .add("opt_empty", std::optional<int>())
        .add("list", rarch::Array().add(1).add("two").add(3.5).add(nullptr).add(rarch::Context().add("in", "array")))
        .add("nested", rarch::Context().add("level2", rarch::Context().add("level3", rarch::Array().add(true))))
        .add_raw("raw", R"({"pre":"built"})");

    // --- string_views that are slices of a larger buffer (not NUL-terminated)
    const std::string big = "[prefix][user-cpp][tenant-cpp][suffix]";
    const std::string with_nul("message a\0b", 11);
    std::string_view all(big);
    std::string_view user = all.substr(all.find("user-cpp"), 8);
    std::string_view tenant = all.substr(all.find("tenant-cpp"), 10);

    log.info("cpp-context", rarch::Fields().user(user).tenant(tenant).request("req-cpp-1").context(ctx));
    log.log(rarch::Level::Warn, with_nul, rarch::Fields().time("2026-11-23T22:30:00.123456Z"));
    log.debug("cpp-debug");
    log.error("cpp-error", rarch::Fields().context_json(R"({"code":500})").user(""));
    log.fatal("cpp-fatal");
    log.info("cpp-traced", rarch::Fields().traceparent(
        std::string_view("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 and more", 55)));
    {
        std::error_code ec;
        log.log(rarch::Level::Info, "cpp-bad-trace",
                rarch::Fields().traceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), ec);
        CHECK(ec == rarch::Errc::invalid_argument);
    }

    // --- levels as enum class, filtering
    CHECK(log.level() == rarch::Level::Debug);
    log.set_level(rarch::Level::Error);
    CHECK(log.level() == rarch::Level::Error);
    log.warn("cpp-filtered");  // below the level: not an error, not sent
    log.set_level(rarch::Level::Debug);

    // --- std::error_code forms: never throw
    {
        std::error_code ec;
        log.log(static_cast<rarch::Level>(99), "x", ec);
        CHECK(ec == rarch::Errc::invalid_level);
        log.log(rarch::Level::Info, "x", rarch::Fields().context_json("[1]"), ec);
        CHECK(ec == rarch::Errc::invalid_json);
        CHECK(!rarch::last_error().empty());
        log.log(rarch::Level::Info, "x", rarch::Fields().time("noon"), ec);
        CHECK(ec == rarch::Errc::invalid_timestamp);
        log.log(rarch::Level::Info, "x", rarch::Fields().context(rarch::Context().add("bad", "\xff")), ec);
        CHECK(ec == rarch::Errc::invalid_utf8);
        log.log(rarch::Level::Info, "cpp-ec-ok", ec);
        CHECK(!ec);
        log.set_level(static_cast<rarch::Level>(-1), ec);
        CHECK(ec == rarch::Errc::invalid_level);
    }
    // --- and the throwing forms throw
    try {
        log.info("x", rarch::Fields().context_json("not json"));
        CHECK(!"no exception for invalid JSON");
    } catch (const rarch::Error &e) {
        CHECK(e.code() == rarch::Errc::invalid_json);
        CHECK(std::string(e.what()).find("rarch_log") == 0);
    }

    // --- move assignment frees the old logger (valgrind/ASan check no leak or double free)
    {
        rarch::Logger a("cpp-wrapper", "a", opts);
        rarch::Logger b("cpp-wrapper", "b", opts);
        a.info("cpp-from-a");
        a = std::move(b);
        a.info("cpp-from-b");
        a.flush(std::chrono::seconds(60));
    }

    log.flush(std::chrono::seconds(60));
    log.flush(std::chrono::microseconds(1500));  // rounded up to 2 ms; nothing pending
    rarch_statistics st = log.stats();
    std::printf("cpp stats: logged=%llu delivered=%llu filtered=%llu\n",
                (unsigned long long)st.logged, (unsigned long long)st.delivered,
                (unsigned long long)st.filtered);
    CHECK(st.delivered == st.logged);
    CHECK(st.filtered >= 1);
    if (failures) {
        std::fprintf(stderr, "cpp_wrapper: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("cpp_wrapper: all checks passed\n");
    return 0;
}
