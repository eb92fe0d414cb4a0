"""Benchmark: caller cost of `info` and delivered throughput, against a local receiver.

    python bindings/python/bench.py [--receiver PATH] [-n 20000] [--bursts 30] [--no-wrk]
                                    [--url URL --key KEY]

(it imports redarch_logging_client from beside it: the source tree, with the repository's build
of the library, unless RARCH_LOGGING_LIB says otherwise)

Starts examples/receiver (found through --receiver, $RARCH_RECEIVER or the repository) with
-keep=false, measures in one run:
  1. the caller's cost of `logger.info(msg, user_id=, tenant_id=, request_id=, context={2 keys})`
     (bursts of 1,000 calls, flushed between bursts; min and median over the bursts), beside
     an empty ctypes call into the library (rarch_get_level on the logger's handle, through
     PyDLL without argtypes, as the hot path calls rarch_log) in the same bursts;
  2. delivered throughput: n entries logged, then flush(); n / elapsed, checked against the
     receiver's /stats (-n 0 leaves it out);
  3. the receiver's own limit with `wrk` (keep-alive, 1 and 4 connections) if wrk is installed
     (--no-wrk leaves it out).
Section 1 also prints one line "BENCH lang=python info_ns_min=... info_ns_median=...
noop_ns_min=... noop_ns_median=..." (read by bench/bindings.sh).
The Python client's figure (protocol.md) is about 700 logs/s; targets: <= 3 us per call and
>= 10x that throughput.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

PYTHON_CLIENT_LOGS_PER_S = 700.0


def _find_receiver(arg):
    for p in (arg, os.environ.get("RARCH_RECEIVER"),
              os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "examples", "receiver", "receiver"),
              os.path.join(os.getcwd(), "examples", "receiver", "receiver")):
        if p and os.path.isfile(p):
            return os.path.abspath(p)
    return None


def _start_receiver(path, key, tmp):
    addr_file = os.path.join(tmp, "addr")
    proc = subprocess.Popen([path, "-key", key, "-addr-file", addr_file, "-quiet",
                             "-keep=false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"receiver exited with {proc.returncode}")
        if os.path.exists(addr_file):
            a = open(addr_file).read().strip()
            if a and a[-1].isdigit():
                return proc, a
        time.sleep(0.01)
    proc.kill()
    raise SystemExit("receiver did not start")


def _stats(base):
    with urllib.request.urlopen(base + "/stats", timeout=10) as r:
        return json.loads(r.read())


def _jwt(key, sub):
    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps({"sub": sub, "iat": now, "exp": now + 3600}).encode())
    sig = hmac.new(key.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def _wrk(url, key, tmp, connections, seconds=3):
    body = json.dumps({"level": "INFO", "service": "bench-wrk", "logger_name": "wrk",
                       "message": "hello", "user_id": "u1", "tenant_id": "t1",
                       "request_id": "r1", "context": {"order": 42},
                       "client_log_datetime": "2026-11-23T22:30:00.123456Z"})
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\n'
                f"wrk.body = {json.dumps(body)}\n"
                'wrk.headers["Content-Type"] = "application/json"\n'
                f'wrk.headers["Authorization"] = "Bearer {_jwt(key, "bench-wrk")}"\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", lua, url],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--receiver", help="path of examples/receiver/receiver")
    ap.add_argument("--url", help="use this server instead of starting a receiver")
    ap.add_argument("--key", default=None, help="API key of --url")
    ap.add_argument("-n", type=int, default=20000, help="entries for the throughput run")
    ap.add_argument("--bursts", type=int, default=30)
    ap.add_argument("--no-wrk", action="store_true", help="leave out the receiver's limit (wrk)")
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="rarch-bench-")
    proc = None
    try:
        if args.url:
            url, key = args.url, args.key or os.environ.get("RARCH_LOGGING_API_KEY", "")
        else:
            path = _find_receiver(args.receiver)
            if not path:
                raise SystemExit("no receiver: pass --receiver or --url (make receiver builds it)")
            key = secrets.token_hex(16)
            proc, addr = _start_receiver(path, key, tmp)
            url = f"http://{addr}/log"
        base = url.rsplit("/", 1)[0]
        os.environ["RARCH_LOGGING_URL"] = url
        os.environ["RARCH_LOGGING_API_KEY"] = key
        os.environ.pop("RARCH_LOGGING_DEFAULT_LEVEL", None)
        os.chdir(tmp)  # the disk buffer, if any, goes to tmp/var/log

        import ctypes
        from redarch_logging_client import Logger, library_path, library_version

        print(f"library {library_version} at {library_path}; python {sys.version.split()[0]}")
        lg = Logger("bench-python", logger_name="bench")
        ctx = {"order": 42, "sku": "abc-123"}
        info = lg.info
        # The empty call: the cheapest ctypes call into the library, made as info's is.
        get_level = ctypes.PyDLL(library_path).rarch_get_level
        get_level.restype = ctypes.c_int
        handle = lg._native._h

        # 1. caller cost
        per_call, per_noop = [], []
        for _ in range(args.bursts):
            t0 = time.perf_counter()
            for _ in range(1000):
                get_level(handle)
            t1 = time.perf_counter()
            for _ in range(1000):
                info("order placed", user_id="user_123", tenant_id="tenant_abc",
                     request_id="req_456", context=ctx)
            per_call.append((time.perf_counter() - t1) / 1000 * 1e6)
            per_noop.append((t1 - t0) / 1000 * 1e6)
            if not lg.flush(30):
                raise SystemExit("flush timed out")
        best, med = min(per_call), statistics.median(per_call)
        nbest, nmed = min(per_noop), statistics.median(per_noop)
        print(f"info() with 3 fields + context: min {best:.2f} us, median {med:.2f} us per call "
              f"(target <= 3 us) -> {'OK' if best <= 3.0 else 'MISSED'}")
        print(f"empty ctypes call (rarch_get_level): min {nbest:.2f} us, median {nmed:.2f} us")
        print(f"BENCH lang=python info_ns_min={best * 1e3:.0f} info_ns_median={med * 1e3:.0f} "
              f"noop_ns_min={nbest * 1e3:.0f} noop_ns_median={nmed * 1e3:.0f} "
              f"bursts={args.bursts} calls_per_burst=1000", flush=True)

        # 2. delivered throughput
        if args.n <= 0:
            lg.close()
            return
        before = _stats(base)["accepted"] if proc else None
        n = args.n
        t0 = time.perf_counter()
        for i in range(n):
            info("order placed", user_id="user_123", tenant_id="tenant_abc", context=ctx)
        t_log = time.perf_counter() - t0
        ok = lg.flush(120)
        elapsed = time.perf_counter() - t0
        rate = n / elapsed
        print(f"throughput: {n} entries logged in {t_log:.2f} s, all delivered "
              f"({'yes' if ok else 'NO'}) after {elapsed:.2f} s: {rate:,.0f} logs/s delivered")
        if proc:
            got = _stats(base)["accepted"] - before
            print(f"receiver accepted {got} of {n}")
        st = lg.stats()
        print(f"pipeline: delivered={st['delivered']} failed_attempts={st['failed_attempts']} "
              f"buffered={st['buffered']} replayed={st['replayed']} "
              f"dropped={st['dropped_queue_full'] + st['dropped_buffer_cap'] + st['dropped_io']}")
        ratio = rate / PYTHON_CLIENT_LOGS_PER_S
        print(f"vs the Python client (~{PYTHON_CLIENT_LOGS_PER_S:.0f} logs/s, protocol.md): "
              f"{ratio:.1f}x (target >= 10x) -> {'OK' if ratio >= 10 else 'MISSED'}")

        # 3. the receiver's limit
        if args.no_wrk:
            pass
        elif shutil.which("wrk"):
            for c in (1, 4):
                r = _wrk(url, key, tmp, c)
                if r:
                    print(f"receiver limit (wrk, keep-alive, {c} connection(s)): {r:,.0f} req/s; "
                          f"this package reaches {rate / r:.0%} of it")
        else:
            print("receiver limit: wrk is not installed (apt-get install wrk); protocol.md "
                  "measured ~9,000 req/s with 1 connection, ~23,000-25,000 with 4-16")
        lg.close()
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
