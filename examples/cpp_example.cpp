// cpp_example.cpp: the C++17 wrapper (rarch_logging.hpp). Errors are exceptions
// (rarch::Error, a std::system_error); every call also has a noexcept std::error_code form.
// Build: c++ -std=c++17 cpp_example.cpp $(pkg-config --cflags --libs rarch-logging) -o cpp_example
#include <rarch_logging.hpp>

#include <chrono>
#include <iostream>

int main() {
    try {
        rarch::Options opts;
        opts.set("close_timeout_ms", "3000");
        rarch::Logger log("cpp-example", "main", opts);  // freed when it goes out of scope

        log.info("hello from C++");
        log.error("payment failed",
                  rarch::Fields()
                      .user("user_123")
                      .tenant("tenant_abc")
                      .context(rarch::Context()
                                   .add("order", 42)
                                   .add("reason", "card \"declined\"")
                                   .add("items", rarch::Array().add("book").add("pen"))
                                   .add("retry", rarch::Context().add("after_s", 30).add("ok", false))));

        std::error_code ec;  // the non-throwing form
        log.log(rarch::Level::Debug, "checked without exceptions", ec);
        if (ec) std::cerr << "log: " << ec.message() << "\n";

        log.flush(std::chrono::seconds(5));
        std::cout << "delivered " << log.stats().delivered << " entries\n";
    } catch (const rarch::Error &e) {
        std::cerr << e.what() << "\n";
        return 1;
    }
    return 0;
}
