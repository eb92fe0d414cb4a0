# rarch-logging: `make` builds, `make test` runs every test, `make demo` runs the demo,
# `make install PREFIX=...` installs, `make dist` makes the release artifacts (dist/),
# `make bench` runs the benchmarks.
PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
CARGO    ?= cargo
CC       ?= cc
VERSION  := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR    := $(word 1,$(subst ., ,$(VERSION)))
REL      := target/release
LIB      := $(REL)/librarch_logging.so
RECEIVER := examples/receiver/receiver
export RARCH_LOGGING_LIB := $(CURDIR)/$(LIB)
export RARCH_RECEIVER    := $(CURDIR)/$(RECEIVER)

.PHONY: all build lib receiver collector test test-rust test-c test-go test-node test-python \
        header-check lint demo install uninstall bench clean deps bench-ab bench-quiet bench-pause-ab dist test-dist \
        test-bindings-outside test-dist-artifacts test-cross bench-gosdk

all: build

build: lib receiver

lib:
	$(CARGO) build --release
	ln -sf librarch_logging.so $(REL)/librarch_logging.so.$(MAJOR)

receiver:
	cd examples/receiver && go build -o receiver .

# Every test in the repo, whatever the language.
test: build header-check test-rust test-c test-go test-node test-python test-dist test-cross
	@echo "make test: all suites passed"

test-rust: build collector
	$(CARGO) test --release -- --test-threads=4

# The OpenTelemetry Collector of the OTLP tests, target/otelcol/otelcol-rarch, built with the
# Collector builder from tests/otelcol/builder-config.yaml (about 3 minutes the first time on a
# machine, seconds with Go's caches, nothing when the stamp matches).
collector:
	bash tests/otelcol/build.sh

test-c: build
	@case " $(MAKECMDGOALS) " in *" test "*) \
	  echo "test-c: the C/C++ suite (tests/c_programs.rs) already ran in test-rust";; \
	  *) $(CARGO) test --release --test c_programs;; esac

# Each binding's tests are run by its own script (it installs its own dependencies).
test-go: build
	@if [ -f bindings/go/run-tests.sh ]; then sh bindings/go/run-tests.sh; fi

test-node: build
	@if [ -f bindings/node/run-tests.sh ]; then sh bindings/node/run-tests.sh; fi

test-python: build
	@if [ -f bindings/python/run-tests.sh ]; then sh bindings/python/run-tests.sh; fi

# ---- release platforms: linux x86_64 and aarch64 (glibc 2.17+), x86_64 musl -------------------
# The release artifacts, in dist/ (packaging/dist.sh): per platform the tarball, the .debs and
# the wheel, and one npm tarball, with the version of Cargo.toml; lintian checks the .debs. The
# libraries are built by packaging/cross-build.sh (cargo-zigbuild, into target/<rust target>/;
# the tools: packaging/cross-tools.sh), once: test-dist and test-cross reuse the build.
dist:
	bash packaging/dist.sh

# The same artifacts, compressed fast, into target/test-dist/out (lintian leaves out the -dev
# packages, a minute each), for test-dist and test-cross. A tool that cannot be had skips its
# artifact, with a message.
TEST_DIST := $(CURDIR)/target/test-dist
test-dist-artifacts:
	DIST_DIR=$(TEST_DIST)/out DIST_WORK=$(TEST_DIST)/work DIST_FAST=1 LINTIAN=quick \
	  DIST_ALLOW_SKIP=1 bash packaging/dist.sh

# Each platform's artifacts (packaging/check-cross.sh): the glibc floor; the tests/c programs
# built with the platform's compilers against its tarball deliver to the receiver (aarch64
# under qemu-user); the .deb, wheel and npm prebuild are of the platform's machine and tags.
test-cross: test-dist-artifacts receiver
	bash packaging/check-cross.sh $(TEST_DIST)/out
# ---- end of release platforms ---------------------------------------------------------------

# The x86_64 artifacts installed as a user would, outside the checkout, each delivering to a
# receiver (packaging/check-dist.sh); then the Node binding's own tests from a copy outside the
# repository.
test-dist: test-dist-artifacts receiver
	bash packaging/check-dist.sh $(TEST_DIST)/out
	env -u RARCH_LOGGING_LIB DIST_DIR=$(TEST_DIST)/out bash packaging/check-bindings-outside.sh node

# Every binding's own tests from a copy outside the repository, the library (from the release
# tarball) and the receiver given by RARCH_LOGGING_LIB and RARCH_RECEIVER (about 75 s).
test-bindings-outside: test-dist
	env -u RARCH_LOGGING_LIB DIST_DIR=$(TEST_DIST)/out bash packaging/check-bindings-outside.sh go node python

# The committed header must be what cbindgen makes of the code.
header-check: lib
	git diff --exit-code -- include/rarch_logging.h || \
	  (echo "include/rarch_logging.h differs from the code: commit the regenerated header" && exit 1)

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --release --all-targets -- -D warnings

# Builds, starts the receiver on a free port with a fresh key, runs examples/demo.c, and
# prints what the receiver accepted.
demo: build
	@mkdir -p target/demo
	$(CC) -std=c11 -Wall -Wextra -Werror -pedantic -Iinclude examples/demo.c \
	  -L$(REL) -lrarch_logging -Wl,-rpath,$(CURDIR)/$(REL) -o target/demo/demo
	@sh examples/run-demo.sh target/demo

# The stripped library (3.8 MB instead of 29.6), its debug symbols beside it
# (librarch_logging.so.X.Y.Z.debug, found by gdb through the debuglink), the stripped static
# library, the headers, the pkg-config file and the CMake package (packaging/install-tree.sh).
install: lib
	sh packaging/install-tree.sh --lib $(LIB) --destdir "$(DESTDIR)" --prefix "$(PREFIX)" \
	  --libdir "$(LIBDIR)" --incdir "$(INCDIR)" --version $(VERSION)

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/librarch_logging.so* $(DESTDIR)$(LIBDIR)/librarch_logging.a \
	  $(DESTDIR)$(INCDIR)/rarch_logging.h $(DESTDIR)$(LIBDIR)/pkgconfig/rarch-logging.pc \
	  $(DESTDIR)$(PREFIX)/bin/rarch-logging
	@for h in bindings/c/*.h bindings/c/*.hpp; do [ -f "$$h" ] && rm -f $(DESTDIR)$(INCDIR)/$$(basename $$h) || true; done
	rm -rf $(DESTDIR)$(LIBDIR)/cmake/rarch_logging

bench: build
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "no benchmarks yet"; fi

# The Go binding (Sink: SinkOTLP) beside the OpenTelemetry Go SDK (sdk/log + otlploghttp), the
# same 200,000 records through the same Collector, 3 rounds (bench/gosdk.sh; its own Go module in
# bench/gosdk). Also section 9 of `make bench`.
bench-gosdk: build collector
	bench/gosdk.sh

# This tree's rarch_log against BASE's (a git ref), side by side in one process.
BASE ?= HEAD
bench-ab: build
	bench/ab.sh $(BASE)

# The library in a host that logs now and then: idle threads and wake-ups, one call after a
# pause (bench/quiet.sh), this tree beside BASE's build.
bench-quiet: build
	bench/quiet.sh $(BASE)

bench-pause-ab: build
	bench/pauseab.sh $(BASE)

clean:
	$(CARGO) clean
	rm -f $(RECEIVER)
	rm -rf dist
