#!/usr/bin/env python3
"""Turns the RESULT/MACHINE lines written by bench/run.sh into one table (stdout) and a
Markdown report: report.py RESULTS_TXT OUT_MD. Targets are marks, never assertions."""
import sys

MIB = 1024 * 1024


def parse(path):
    machine, rows = {}, []
    for line in open(path):
        line = line.rstrip("\n")
        if line.startswith("MACHINE "):
            k, _, v = line[8:].partition("=")
            machine[k] = v
        elif line.startswith("RESULT "):
            d = {}
            for tok in line[7:].split():
                k, _, v = tok.partition("=")
                try:
                    d[k] = int(v)
                except ValueError:
                    try:
                        d[k] = float(v)
                    except ValueError:
                        d[k] = v
            rows.append(d)
    return machine, rows


def ns(v):
    if v is None:
        return "-"
    if v < 1000:
        return "%d ns" % v
    if v < 1e6:
        return "%.1f µs" % (v / 1e3)
    if v < 1e9:
        return "%.1f ms" % (v / 1e6)
    return "%.2f s" % (v / 1e9)


def caller_ok(r):
    """Issue 8's caller targets: p50 <= 400 ns and p99 <= 2 µs for 1 thread, twice that for more."""
    k = 1 if r["threads"] == 1 else 2
    return r["log_p50"] <= 400 * k and r["log_p99"] <= 2000 * k


def mark(ok):
    return "PASS" if ok else "MISS"


def main():
    machine, rows = parse(sys.argv[1])
    out_md = sys.argv[2] if len(sys.argv) > 2 else None
    by = lambda **kw: [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
    one = lambda **kw: (by(**kw) or [None])[0]
    md = []
    p = md.append

    p("# rarch-logging benchmark results (%s run)" % machine.get("mode", "?"))
    p("")
    p("Machine: %s cores, %s, %s; load average at start %s; tree %s; suite took %s s." % (
        machine.get("nproc"), machine.get("cpu"), machine.get("kernel"), machine.get("load"),
        machine.get("version"), machine.get("elapsed_s")))
    p("")

    # 1. caller cost
    p("## 1. Caller cost of rarch_log (threaded mode), per call, CLOCK_MONOTONIC, nothing subtracted")
    p("")
    p("Target: 1 thread p50 <= 400 ns and p99 <= 2 µs; 4 threads <= 2x that; the same in every "
      "server state (marked `same` when p50 and p99 are within 1.5x of healthy); durable <= 2x default.")
    p("")
    p("Calls come in bursts of 100, so 1% of them are the first call after a pause of about "
      "50 ms. The two columns after `log max` split the same calls: the first of each burst, "
      "and all the others.")
    p("")
    p("| durable | server | threads | calls | log p50 | log p99 | log p99.9 | log max | first of burst p50 | others p99 | floor p50 (get_level) | floor p99 | clock p50 | errors | dropped | target | vs healthy p50/p99 | durable / default p50, p99 |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for durable in (0, 1):
        for scen in ("healthy", "down", "slow"):
            for th in (1, 4):
                r = one(bench="caller", durable=durable, scenario=scen, threads=th)
                if not r:
                    p("| %s | %s | %d | missing |" % (bool(durable), scen, th))
                    continue
                ok = caller_ok(r)
                h = one(bench="caller", durable=durable, scenario="healthy", threads=th)
                same = "-"
                if h and scen != "healthy":
                    a, b = r["log_p50"] / h["log_p50"], r["log_p99"] / h["log_p99"]
                    same = "%.2fx / %.2fx %s" % (a, b, "same" if a <= 1.5 and b <= 1.5 else "DIFFERENT")
                dur = "-"
                if durable:
                    d0 = one(bench="caller", durable=0, scenario=scen, threads=th)
                    if d0:
                        a = r["log_p50"] / d0["log_p50"]
                        b = r["log_p99"] / d0["log_p99"]
                        dur = "%.2fx, %.2fx %s" % (a, b, mark(a <= 2))
                dropped = r["dropped_queue_full"] + r["dropped_buffer_cap"] + r["dropped_io"]
                p("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s | %s |" % (
                    "yes" if durable else "no", scen, th, r["count"], ns(r["log_p50"]),
                    ns(r["log_p99"]), ns(r["log_p999"]), ns(r["log_max"]),
                    ns(r["first_p50"]) if "first_p50" in r else "-",
                    ns(r["rest_p99"]) if "rest_p99" in r else "-", ns(r["floor_p50"]),
                    ns(r["floor_p99"]), ns(r["clock_p50"]), r["errors"], dropped,
                    mark(ok), same, dur))
    p("")
    b2b = by(bench="caller", scenario="healthy-b2b")
    if b2b:
        p("The same calls back to back, without pauses (healthy server, default mode), after "
          "as many untimed calls and a flush in each thread: the steady cost with warm caches, "
          "beside the paced runs above:")
        p("")
        p("| threads | calls | log p50 | log p99 | log p99.9 | log max | floor p50 (get_level) "
          "| errors | dropped | target |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        for r in b2b:
            ok = caller_ok(r)
            dropped = r["dropped_queue_full"] + r["dropped_buffer_cap"] + r["dropped_io"]
            p("| %d | %d | %s | %s | %s | %s | %s | %d | %d | %s |" % (
                r["threads"], r["count"], ns(r["log_p50"]), ns(r["log_p99"]),
                ns(r["log_p999"]), ns(r["log_max"]), ns(r["floor_p50"]), r["errors"], dropped,
                mark(ok)))
        p("")
    pauses = by(bench="pause")
    if pauses:
        p("The first call of a burst against the pause before it (1 thread, healthy server, "
          "bursts of 100; `rbench pause`). Its floor: after the same pause, every other burst "
          "starts with an empty call into the library (`rarch_get_level`), timed alike:")
        p("")
        p("| pause | bursts | first call p50 | first call p99 | floor: empty first call p50 "
          "| floor p99 | other calls p50 | other calls p99 |")
        p("|---|---|---|---|---|---|---|---|")
        for r in pauses:
            p("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
                ns(r["pause_us"] * 1000), r["bursts"], ns(r["first_p50"]), ns(r["first_p99"]),
                ns(r["floor_p50"]) if "floor_p50" in r else "-",
                ns(r["floor_p99"]) if "floor_p99" in r else "-",
                ns(r["rest_p50"]), ns(r["rest_p99"])))
        p("")

    # 2. throughput
    p("## 2. Delivery throughput (first rarch_log until rarch_flush returns)")
    p("")
    py = one(bench="pybaseline")
    p("Target: >= 85% of wrk with the same connection count, and >= 25x the Python-style sender.")
    p("")
    p("| connections | on_full | entries | entries/s | receiver accepted / distinct | spilled to disk | wrk req/s (mean of before/after) | lib / wrk | lib / Python-style | targets |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for c in (2, 4):
        w = [r["rate"] for r in by(bench="wrk", connections=c)]
        wm = sum(w) / len(w) if w else None
        for of in ("spill", "block"):
            r = one(bench="throughput", connections=c, on_full=of)
            if not r:
                continue
            rw = r["rate"] / wm if wm else None
            rp = r["rate"] / py["rate"] if py and py.get("rate") else None
            p("| %d | %s%s | %d | %.0f | %s | %d | %s | %s | %s | %s |" % (
                c, of, " (default)" if of == "spill" else "", r["count"], r["rate"],
                "%s / %s" % (r.get("receiver_accepted", "?"), r.get("receiver_distinct", "?")), r["buffered"],
                " / ".join("%.0f" % x for x in w) + (" (%.0f)" % wm if wm else ""),
                "%.0f%%" % (rw * 100) if rw else "-", "%.1fx" % rp if rp else "-",
                "wrk %s, python %s" % (mark(rw is not None and rw >= 0.85),
                                       mark(rp is not None and rp >= 25))))
    if py:
        p("")
        p("Python-style sender (%s; a fresh connection and JWT per entry): %d entries, %.0f/s, "
          "p50 %s, p99 %s per entry (protocol.md: about 700/s and 1.4 ms)." % (
              py["client"].replace("_", " "), py["count"], py["rate"], ns(py["log_p50"]),
              ns(py["log_p99"])))
    p("")

    # 3. memory
    p("## 3. Memory: entries logged while the server is down (connection refused), then replay")
    p("")
    m, rp, bf = one(bench="memory"), one(bench="replay"), one(bench="bufferfiles")
    if m:
        peak = max(m["hwm_end_kib"], m["hwm_after_log_kib"])
        ok = peak * 1024 < 64 * MIB
        p("| entries | log time | VmHWM after logging | VmHWM at the end (after free) | peak < 64 MiB | on disk | buffered | dropped_buffer_cap | dropped_queue_full | dropped_io |")
        p("|---|---|---|---|---|---|---|---|---|---|")
        p("| %d | %.0f ms | %.1f MiB | %.1f MiB | %s | %.0f MiB, %s lines | %d | %d | %d | %d |" % (
            m["count"], m["log_ms"], m["hwm_after_log_kib"] / 1024, m["hwm_end_kib"] / 1024,
            mark(ok), (bf["bytes"] / MIB) if bf else -1, bf["lines"] if bf else "?",
            m["buffered"], m["dropped_buffer_cap"], m["dropped_queue_full"], m["dropped_io"]))
        p("")
        p("(stats are read before rarch_logger_free; free then writes what was still in memory "
          "to disk, in %.0f ms.)" % m["free_ms"])
        p("")
    if rp:
        p("Replay (new logger on the same buffer_dir, receiver up, rarch_flush): %d entries "
          "replayed in %.1f s (%.0f entries/s), receiver accepted %s (distinct %s), flush status %d, "
          "peak RSS %.1f MiB." % (rp["replayed"], rp["replay_ms"] / 1e3, rp["rate"],
                                  rp.get("receiver_accepted", "?"), rp.get("receiver_distinct", "?"), rp["flush"],
                                  rp["hwm_kib"] / 1024))
        p("")

    # 4. blocking
    p("## 4. Blocking mode (rarch_log posts on the caller's thread)")
    p("")
    p("| threads | calls | requests/s | p50 | p99 | p99.9 | max | errors | vs Python-style sender |")
    p("|---|---|---|---|---|---|---|---|---|")
    for th in (1, 4):
        r = one(bench="blocking", threads=th)
        if r:
            p("| %d | %d | %.0f | %s | %s | %s | %s | %d | %s |" % (
                th, r["count"], r["rate"], ns(r["log_p50"]), ns(r["log_p99"]),
                ns(r["log_p999"]), ns(r["log_max"]), r["errors"],
                "%.1fx" % (r["rate"] / py["rate"]) if py else "-"))
    p("")
    text = "\n".join(md)
    print(text)
    if out_md:
        with open(out_md, "w") as f:
            f.write(text + "\n\n## Raw results\n\n```\n" + open(sys.argv[1]).read() + "```\n")


if __name__ == "__main__":
    main()
