#!/usr/bin/env python3
"""Turns the RESULT/MACHINE lines written by bench/run.sh into one table (stdout) and a
Markdown report: report.py RESULTS_TXT OUT_MD. Targets are marks, never assertions. The last
table gives every target that was marked as a row of BENCHMARKS.md's targets table, in its
column order, ready to be copied there."""
import os
import sys
import time

MIB = 1024 * 1024
SECTIONS = ("caller", "throughput", "memory", "blocking", "degraded", "latency", "cpu", "otlp", "gosdk")
# Issue 15: the share of failed requests of each faulted row of the degraded table, and whether
# the issue sets the target for it (the resets row uses the same formula with p = 0.2, as a mark).
DEGRADED_ROWS = (
    ("healthy", "healthy (first)", None, False),
    ("503-10", "10% of requests answered 503", 0.1, True),
    ("503-30", "30% answered 503", 0.3, True),
    ("503-50", "50% answered 503", 0.5, True),
    ("reset-20", "20% of connections reset", 0.2, False),
    ("healthy-after", "healthy (last)", None, False),
)
# Section 1's baseline library when bench/run.sh is given no --base.
DEFAULT_BASE = "ffcb536"
# The rows of BENCHMARKS.md's targets table, collected by the sections as they mark their
# targets: (target, figure, baseline, ratio, needed, mark). targets_table adds the date, the
# tree and the command.
TARGET_ROWS = []


def target_row(name, figure, baseline="–", ratio_="–", needed="–", mark_="–"):
    TARGET_ROWS.append((name, figure, baseline, ratio_, needed, mark_))


def thousands(v):
    return "{:,.0f}".format(v)


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
    if machine.get("library"):
        p("")
        p("Library measured: commit %s (`bench/run.sh --rev`), not the working tree's build." %
          machine["library"])
    if machine.get("base"):
        p("")
        p("Baseline library of section 1's issue 18 rows: commit %s (`bench/run.sh --base`)." %
          machine["base"])
    if machine.get("sections") and machine["sections"] != ",".join(SECTIONS):
        p("")
        p("Sections run: %s (`--only`)." % machine["sections"].replace(",", ", "))
    p("")

    if by(bench="caller") or by(bench="pause") or by(bench="burst"):
        caller_section(p, by, one, machine)
    if by(bench="throughput") or by(bench="wrk") or by(bench="pybaseline"):
        throughput_section(p, by, one)
    if by(bench="memory") or by(bench="replay"):
        memory_section(p, by, one)
    if by(bench="blocking"):
        blocking_section(p, by, one)
    if by(bench="degraded"):
        degraded_section(p, by, one)
    if by(bench="latency"):
        latency_section(p, by, one)
    if by(bench="cpu") or by(bench="cpuwrk"):
        cpu_section(p, by, one, machine.get("cpu_opts"))
    if by(bench="sink"):
        otlp_section(p, by, one)
    if TARGET_ROWS:
        targets_table(p, machine, sys.argv[1])
    text = "\n".join(md)
    print(text)
    if out_md:
        with open(out_md, "w") as f:
            f.write(text + "\n\n## Raw results\n\n```\n" + open(sys.argv[1]).read() + "```\n")


def caller_section(p, by, one, machine):
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
    paced_targets(one)
    b2b = by(bench="caller", scenario="healthy-b2b")
    if b2b:
        p("The same calls back to back, without pauses (healthy server), after as many untimed "
          "calls and a flush in each thread: the steady cost with warm caches. Issue 18's rows: "
          "each library's runs (`lib`: this tree's or the base's, `--base`), in the order base, "
          "tree, tree, base; the mark is issue 18's target for one run (1 thread p50 <= 250 ns "
          "and p99 <= 1 µs, 4 threads 1.5x that; durable rows: see the table below):")
        p("")
        p("| library | round | durable | threads | calls | log p50 | log p99 | log p99.9 | log max "
          "| floor p50 (get_level) | errors | spilled / dropped | target |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in b2b:
            dropped = r["dropped_queue_full"] + r["dropped_buffer_cap"] + r["dropped_io"]
            target = "-"
            if not r.get("durable"):
                target = mark(b2b_ok(r))
            if r["buffered"] or dropped:
                target += " (spilled: not warm)"
            p("| %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %d | %d / %d | %s |" % (
                r.get("lib", "tree"), r.get("round", "-"), "yes" if r.get("durable") else "no",
                r["threads"], r["count"], ns(r["log_p50"]), ns(r["log_p99"]),
                ns(r["log_p999"]), ns(r["log_max"]), ns(r["floor_p50"]), r["errors"],
                r["buffered"], dropped, target))
        p("")
    pauses = by(bench="pause")
    if pauses:
        p("The first call of a burst against the pause before it (1 thread, healthy server, "
          "bursts of 100; `rbench pause`). Its floor: after the same pause, every other burst "
          "starts with an empty call into the library (`rarch_get_level`), timed alike. "
          "Target (issue 18, 20 ms): first call p50 <= 4x the floor's p50:")
        p("")
        p("| library | round | pause | bursts | first call p50 | first call p99 | floor: empty "
          "first call p50 | floor p99 | first / floor p50 | other calls p50 | other calls p99 "
          "| target |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(pauses, key=lambda r: (r["pause_us"], r.get("lib", "tree") != "base",
                                               r.get("round", 0))):
            q = pause_ratio(r)
            p("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r.get("lib", "tree"), r.get("round", "-"),
                ns(r["pause_us"] * 1000), r["bursts"], ns(r["first_p50"]), ns(r["first_p99"]),
                ns(r["floor_p50"]) if "floor_p50" in r else "-",
                ns(r["floor_p99"]) if "floor_p99" in r else "-",
                "%.1fx" % q if q is not None else "-",
                ns(r["rest_p50"]), ns(r["rest_p99"]),
                mark(q <= 4) if q is not None and r["pause_us"] == 20000 else "-"))
        p("")
    bursts = by(bench="burst")
    if bursts:
        p("`rbench burst` (issue 18): a fresh logger with the default options (url, api_key, "
          "buffer_dir only: queue_capacity 8192, on_full=spill), one thread logs the typical "
          "entry %s times in a tight loop, no warm-up, each call timed; then "
          "`rarch_flush(%s s)`, which waits for the disk buffer's replay too. preempted: calls "
          "over 1 ms in whose window (the call and at most the 255 before it) the thread had an "
          "involuntary context switch. fresh + disk: `delivered - replayed` + `buffered` "
          "(`delivered` counts the replayed entries too). Receiver: its counts after the "
          "process ended:" % ("{:,}".format(bursts[0]["count"]), bursts[0].get("flush_timeout_s", "?")))
        p("")
        p("| library | round | burst time | first call | log p50 | log p99 | log p99.9 | log max "
          "(at call) | calls > 100 µs | calls > 1 ms (preempted) | refused | caller "
          "switches: involuntary / voluntary | on disk at the burst's end | flush | fresh + "
          "disk | dropped | receiver accepted / distinct | target |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in sorted(bursts, key=lambda r: (r.get("lib", "tree") != "base", r.get("round", 0))):
            k = burst_checks(r)
            flush = {0: "OK", 9: "TIMED_OUT", -1: "none"}.get(r.get("flush"), str(r.get("flush")))
            if r.get("killed"):
                flush += ", killed"
            if "log_max" not in r:
                p("| %s | %s | failed (%s) |" % (r.get("lib", "tree"), r.get("round", "-"), flush))
                continue
            p("| %s | %s | %.0f ms | %s | %s | %s | %s | %s (%d) | %d | %d (%d) | %d | %d / %d "
              "| %d | %s, %.1f s | %d + %d | %d | %s / %s | %s |" % (
                  r.get("lib", "tree"), r.get("round", "-"), r["log_ms"], ns(r["first_ns"]),
                  ns(r["log_p50"]), ns(r["log_p99"]), ns(r["log_p999"]), ns(r["log_max"]),
                  r["max_at"], r["over_100us"], r["over_1ms"], r["slow_preempted"], r["errors"],
                  r["caller_nivcsw"], r["caller_nvcsw"], r["burst_buffered"], flush,
                  r["flush_ms"] / 1e3, r["delivered"] - r["replayed"], r["buffered"],
                  k["dropped"], r.get("receiver_accepted", "?"), r.get("receiver_distinct", "?"),
                  k["mark"]))
        p("")
    issue18_table(p, by, one, machine)


def paced_targets(one):
    """Issue 8's caller targets (the paced rows) as rows of BENCHMARKS.md's targets table."""
    scens = ("healthy", "down", "slow")
    for th in (1, 4):
        k = 1 if th == 1 else 2
        rs = [one(bench="caller", durable=0, scenario=s, threads=th) for s in scens]
        if not all(rs):
            continue
        for q, bound in (("p50", 400 * k), ("p99", 2000 * k)):
            vals = [r["log_" + q] for r in rs]
            over = sum(v > bound for v in vals)
            target_row(
                "caller, paced, %d thread%s: %s" % (th, "s" if th > 1 else "", q),
                "healthy %s, down %s, slow %s" % tuple(ns(v) for v in vals),
                "empty call %s%s" % ("" if q == "p50" else "p99 ",
                                     " / ".join(ns(r["floor_" + q]) for r in rs)),
                "–", "≤ %s" % ns(bound),
                "PASS" if not over else "MISS (%d of 3 rows over)" % over)
    parts, same_ok = [], True
    for th in (1, 4):
        h = one(bench="caller", durable=0, scenario="healthy", threads=th)
        for scen in ("down", "slow"):
            r = one(bench="caller", durable=0, scenario=scen, threads=th)
            if h and r:
                a, b = r["log_p50"] / h["log_p50"], r["log_p99"] / h["log_p99"]
                same_ok = same_ok and a <= 1.5 and b <= 1.5
                parts.append("%d thread%s %s %.2fx / %.2fx" % (th, "s" if th > 1 else "", scen, a, b))
    if parts:
        target_row("caller, paced: the same healthy, down or slow", "p50 / p99: " + "; ".join(parts),
                   "the healthy rows", "(the figure)", "within 1.5x", mark(same_ok))
    p50s, p99s = [], []
    for scen in scens:
        for th in (1, 4):
            d, n = (one(bench="caller", durable=x, scenario=scen, threads=th) for x in (1, 0))
            if d and n:
                p50s.append(d["log_p50"] / n["log_p50"])
                p99s.append(d["log_p99"] / n["log_p99"])
    if p50s:
        target_row("caller, paced: durable / default",
                   "p50 %.2f–%.2fx, p99 %.2f–%.2fx" % (min(p50s), max(p50s), min(p99s), max(p99s)),
                   "the default rows", "(the figure)", "≤ 2x",
                   mark(max(p50s) <= 2) + ("" if max(p99s) <= 2 else " (p99 over 2x)"))


def b2b_ok(r):
    """Issue 18's warm targets for one back-to-back run: 1 thread p50 <= 250 ns and
    p99 <= 1 µs; more threads at most 1.5x that."""
    k = 1 if r["threads"] == 1 else 1.5
    return r["log_p50"] <= 250 * k and r["log_p99"] <= 1000 * k


def pause_ratio(r):
    return r["first_p50"] / r["floor_p50"] if r.get("floor_p50") else None


def burst_checks(r):
    """Issue 18's burst targets for one run: no call over 1 ms, none refused, every entry
    delivered or on disk (fresh deliveries + buffered == count, nothing dropped), and after
    flush the receiver has every one (distinct)."""
    n = r["count"]
    dropped = sum(r.get(k, 0) for k in ("dropped_queue_full", "dropped_buffer_cap", "dropped_io"))
    kept = r.get("delivered", 0) - r.get("replayed", 0) + r.get("buffered", 0)
    misses = [w for w, ok in (
        ("calls over 1 ms", r.get("over_1ms", 1) == 0),
        ("refused", r.get("errors", 1) == 0),
        ("dropped", dropped == 0),
        ("not all kept", r.get("logged") == n and kept == n),
        ("flush", r.get("flush") == 0 and not r.get("killed")),
        ("receiver", r.get("receiver_distinct") == n)) if not ok]
    return {"dropped": dropped, "kept": kept, "ok": not misses,
            "mark": "PASS" if not misses else "MISS (%s)" % ", ".join(misses)}


def issue18_table(p, by, one, machine):
    """Issue 18's targets, each figure for this tree beside the base library's, same run."""
    libs = ("tree", "base")
    of = lambda lib, bench, **kw: [r for r in by(bench=bench, **kw) if r.get("lib", "tree") == lib]
    if not (by(bench="caller", scenario="healthy-b2b") or by(bench="pause", pause_us=20000)
            or by(bench="burst")):
        return
    tree_name = "library %s" % machine["library"] if machine.get("library") else "this tree"
    base_name = "base %s" % machine["base"] if machine.get("base") else "base (none)"
    order = ("base, tree, tree, base" if machine.get("base")
             else "tree, tree (no baseline: `--base none`)")

    def vals(lib, bench, key, **kw):
        rs = [r for r in of(lib, bench, **kw) if key(r) is not None]
        return [key(r) for r in rs]

    def agg(xs, how):
        if not xs:
            return None
        return max(xs) if how == "worst" else min(xs) if how == "least" else median(xs)

    def show(xs, how, fmt):
        v = agg(xs, how)
        if v is None:
            return "-"
        if len(xs) == 1:
            return fmt(v)
        return "%s (%s)" % (fmt(v), ", ".join(fmt(x) for x in xs))

    times = lambda x: "%.2fx" % x
    count = lambda x: "{:,}".format(int(x))
    rows = []  # (row, figure, fmt, how, {lib: [values]}, target text, check(value) or None)

    def add(row, figure, fmt, how, get, target=None, check=None):
        rows.append((row, figure, fmt, how, {l: get(l) for l in libs}, target, check))

    b = lambda th, d: lambda l, key: vals(l, "caller", lambda r: r.get(key), scenario="healthy-b2b",
                                          threads=th, durable=d)
    for th, (t50, t99) in ((1, (250, 1000)), (4, (375, 1500))):
        name = "warm, back to back, %d thread%s" % (th, "s" if th > 1 else "")
        g = b(th, 0)
        add(name, "p50", ns, "median", lambda l, g=g: g(l, "log_p50"), "<= %s" % ns(t50),
            lambda v, t=t50: v <= t)
        add(name, "p99", ns, "median", lambda l, g=g: g(l, "log_p99"), "<= %s" % ns(t99),
            lambda v, t=t99: v <= t)
        add(name, "p99.9", ns, "median", lambda l, g=g: g(l, "log_p999"))
        add(name, "max", ns, "worst", lambda l, g=g: g(l, "log_max"))
    g = b(1, 1)
    name = "durable, back to back, 1 thread"
    add(name, "p50", ns, "median", lambda l: g(l, "log_p50"))
    add(name, "p99", ns, "median", lambda l: g(l, "log_p99"))

    def dur_ratio(l):
        d, n = agg(g(l, "log_p50"), "median"), agg(b(1, 0)(l, "log_p50"), "median")
        return [d / n] if d and n else []
    add(name, "p50 / default's p50 (medians)", times, "median", dur_ratio, "<= 1.50x",
        lambda v: v <= 1.5)
    pz = lambda l, key: vals(l, "pause", key, pause_us=20000)
    name = "first call after a 20 ms pause"
    add(name, "first call p50", ns, "median", lambda l: pz(l, lambda r: r.get("first_p50")))
    add(name, "floor p50 (empty call after the same pause)", ns, "median",
        lambda l: pz(l, lambda r: r.get("floor_p50")))
    add(name, "first / floor", times, "median", lambda l: pz(l, pause_ratio), "<= 4.00x",
        lambda v: v <= 4)
    bu = lambda l, key: vals(l, "burst", key)
    n = (by(bench="burst") or [{}])[0].get("count", 100000)
    name = "burst of {:,}, default options".format(n)
    add(name, "max call", ns, "worst", lambda l: bu(l, lambda r: r.get("log_max")), "<= 1.0 ms",
        lambda v: v <= 1e6)
    add(name, "p99.9", ns, "median", lambda l: bu(l, lambda r: r.get("log_p999")))
    add(name, "calls over 1 ms", count, "worst", lambda l: bu(l, lambda r: r.get("over_1ms")),
        "0", lambda v: v == 0)
    add(name, "of them preempted (involuntary switch in their window)", count, "worst",
        lambda l: bu(l, lambda r: r.get("slow_preempted")))
    add(name, "caller's involuntary context switches", count, "worst",
        lambda l: bu(l, lambda r: r.get("caller_nivcsw")))
    add(name, "caller's voluntary context switches", count, "worst",
        lambda l: bu(l, lambda r: r.get("caller_nvcsw")))
    add(name, "calls refused", count, "worst", lambda l: bu(l, lambda r: r.get("errors")), "0",
        lambda v: v == 0)
    add(name, "dropped", count, "worst", lambda l: bu(l, lambda r: burst_checks(r)["dropped"]
                                                         if "log_max" in r else None),
        "0", lambda v: v == 0)
    add(name, "delivered fresh + on disk", count, "least",
        lambda l: bu(l, lambda r: burst_checks(r)["kept"] if "log_max" in r else None),
        "= {:,}".format(n), lambda v: v == n)
    add(name, "receiver distinct after flush", count, "least",
        lambda l: bu(l, lambda r: r.get("receiver_distinct")),
        "= {:,}".format(n), lambda v: v == n)
    add(name, "flush time", lambda x: "%.1f s" % (x / 1e3), "median",
        lambda l: bu(l, lambda r: r.get("flush_ms")))

    p("### Issue 18's targets: %s beside %s, in one run" % (
        tree_name, base_name if machine.get("base") else "no baseline"))
    p("")
    p("Each figure is the median of the library's rounds (the rounds' own figures in "
      "brackets), but `max`, the counts of slow calls, refusals, drops and switches are the "
      "worst round, and the entries kept the least. Rounds ran in the order %s. The marks are "
      "the targets checked on this tree's figure, then on the base's." % order)
    p("")
    p("| row | figure | %s | %s | tree / base | target | mark: tree / base |" % (tree_name, base_name))
    p("|---|---|---|---|---|---|---|")
    last = None
    for row, figure, fmt, how, per, target, check in rows:
        t, bs = agg(per["tree"], how), agg(per["base"], how)
        if t is None and bs is None:
            continue
        rt = "%.2fx" % (t / bs) if t is not None and bs else "-"
        if check:
            mk = " / ".join("-" if v is None else mark(check(v)) for v in (t, bs))
            if t is not None:
                target_row("%s: %s" % (row, figure), show(per["tree"], how, fmt),
                           "%s %s" % (base_name, show(per["base"], how, fmt)) if bs is not None
                           else "–", rt if bs else "–", target.replace("<=", "≤"),
                           mark(check(t)))
        else:
            mk = "-"
        p("| %s | %s | %s | %s | %s | %s | %s |" % (
            row if row != last else "", figure, show(per["tree"], how, fmt),
            show(per["base"], how, fmt), rt, target or "-", mk))
        last = row
    p("")



def throughput_section(p, by, one):
    p("## 2. Delivery throughput (first rarch_log until rarch_flush returns)")
    p("")
    py = one(bench="pybaseline")
    p("Target: >= 85% of wrk with the same connection count, and >= 25x the Python-style sender.")
    p("")
    p("| connections | on_full | entries | entries/s | receiver accepted / distinct | spilled to disk | wrk req/s (mean of before/after) | lib / wrk | lib / Python-style | targets |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    rows = []  # (label, rate, ratio to wrk, ratio to the Python-style sender)
    wrks = []  # (connections, wrk's mean)
    for c in (2, 4):
        w = [r["rate"] for r in by(bench="wrk", connections=c)]
        wm = sum(w) / len(w) if w else None
        if wm:
            wrks.append((c, wm))
        for of in ("spill", "block"):
            r = one(bench="throughput", connections=c, on_full=of)
            if not r:
                continue
            rw = r["rate"] / wm if wm else None
            rp = r["rate"] / py["rate"] if py and py.get("rate") else None
            rows.append(("%d %s" % (c, of), r["rate"], rw, rp))
            p("| %d | %s%s | %d | %.0f | %s | %d | %s | %s | %s | %s |" % (
                c, of, " (default)" if of == "spill" else "", r["count"], r["rate"],
                "%s / %s" % (r.get("receiver_accepted", "?"), r.get("receiver_distinct", "?")), r["buffered"],
                " / ".join("%.0f" % x for x in w) + (" (%.0f)" % wm if wm else ""),
                "%.0f%%" % (rw * 100) if rw else "-", "%.1fx" % rp if rp else "-",
                "wrk %s, python %s" % (mark(rw is not None and rw >= 0.85),
                                       mark(rp is not None and rp >= 25))))
    if rows:
        rates = "%s entries/s (%s)" % (" / ".join(thousands(x[1]) for x in rows),
                                       ", ".join(x[0] for x in rows))
        rw = [x[2] for x in rows]
        target_row("delivery vs wrk, same connections", rates,
                   "wrk " + ", ".join("%s req/s (%d connections)" % (thousands(m), c) for c, m in wrks),
                   " / ".join("%.0f%%" % (x * 100) if x else "-" for x in rw), "≥ 85%",
                   mark(all(x is not None and x >= 0.85 for x in rw)))
        if py and py.get("rate"):
            rp = [x[3] for x in rows]
            target_row("delivery vs the Python-style sender", "the same rows",
                       "Python-style sender %s/s" % thousands(py["rate"]),
                       " / ".join("%.1fx" % x for x in rp), "≥ 25x", mark(all(x >= 25 for x in rp)))
    if py:
        p("")
        p("Python-style sender (%s; a fresh connection and JWT per entry): %d entries, %.0f/s, "
          "p50 %s, p99 %s per entry (protocol.md: about 700/s and 1.4 ms)." % (
              py["client"].replace("_", " "), py["count"], py["rate"], ns(py["log_p50"]),
              ns(py["log_p99"])))
    p("")



def memory_section(p, by, one):
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
        target_row("peak RSS, {:,} entries logged while the server is down".format(m["count"]),
                   "%.1f MiB" % (peak / 1024), "–", "–", "< 64 MiB", mark(ok))
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



def blocking_section(p, by, one):
    py = one(bench="pybaseline")
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
                "%.1fx" % (r["rate"] / py["rate"]) if py and py.get("rate") else "-"))
    p("")


def ratio(x):
    if x is None:
        return "-"
    return "%.3f" % x if x < 0.1 else "%.2f" % x


def degraded_checks(r, p_fail, ref):
    """Issue 15's targets for one row: throughput >= 0.8 x (1 - p) x healthy, every entry
    delivered (the receiver saw every request id and flush returned OK), duplicates < 1%."""
    secs = r["total_ms"] / 1e3 if r.get("total_ms") else None
    rate = r.get("receiver_distinct", 0) / secs if secs else 0.0
    ratio = rate / ref if ref else None
    need = 0.8 * (1 - p_fail) if p_fail is not None else None
    dup = r.get("receiver_duplicates", 0) / r["count"] if r.get("count") else None
    return {
        "rate": rate,
        "count": r.get("count", 0),
        "distinct": r.get("receiver_distinct", 0),
        "duplicates": r.get("receiver_duplicates", 0),
        "ratio": ratio,
        "need": need,
        "throughput": ratio is not None and need is not None and ratio >= need,
        "all": r.get("receiver_distinct", -1) >= r["count"] and r.get("flush") == 0
        and not r.get("killed"),
        "dup": dup,
        "dups": dup is not None and dup < 0.01,
    }


def degraded_section(p, by, one):
    rows = by(bench="degraded")
    h = [one(bench="degraded", scenario=s) for s in ("healthy", "healthy-after")]
    h = [r for r in h if r]
    refs = [degraded_checks(r, None, None)["rate"] for r in h]
    ref = sum(refs) / len(refs) if refs else None
    c = rows[0]["count"]
    p("## 5. Degraded server (issue 15): %d entries, default options, against a server failing "
      "a share of requests" % c)
    p("")
    p("One thread logs %d typical entries in a tight loop with the default options "
      "(`on_full=spill`, `connections=2`), then calls `rarch_flush(%d s)`; the receiver answers "
      "a share of the requests, at random, with 503, or resets the connection. "
      "delivered/s: distinct request ids the receiver accepted, over the time from the first "
      "`rarch_log` until flush returned. The reference is the mean of the two healthy rows, "
      "the first and the last of the table (%s). On disk: lines left in the buffer files "
      "(`*.jsonl` but dead letters and corrupt lines) once the process has ended "
      "(`close_timeout_ms=0`, so that `rarch_logger_free` writes what is left at once). The "
      "library's counters are read when flush returns." % (
          c, rows[0].get("flush_timeout_s", 300),
          " and ".join("%.0f/s" % x for x in refs) if refs else "missing"))
    p("")
    p("Targets: with a share p <= 50% of random 503s, throughput >= 0.8 x (1 - p) x healthy, "
      "every entry delivered, duplicates < 1%. The 20% resets row has no target in the issue: "
      "it is marked with the same formula at p = 0.2, as information (`no target`).")
    p("")
    p("| server | flush | first log to flush | delivered (distinct) | delivered/s | vs healthy "
      "| needed | duplicates | time to deliver all | on disk after | dead letters "
      "| requests / faults | lib delivered | failed_attempts | retried | buffered | replayed "
      "| poisoned | targets |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    summary = []
    for scen, name, p_fail, targeted in DEGRADED_ROWS:
        r = one(bench="degraded", scenario=scen)
        if not r:
            continue
        k = degraded_checks(r, p_fail, ref)
        flush = {0: "OK", 9: "TIMED_OUT", -1: "none"}.get(r.get("flush"), str(r.get("flush")))
        if r.get("killed"):
            flush = "killed (row timeout)" if r.get("flush") == -1 else flush + ", then killed"
        if p_fail is None:
            marks = "reference" + ("" if k["all"] else ", not all delivered")
        else:
            misses = [w for w, ok in (("throughput", k["throughput"]), ("delivery", k["all"]),
                                      ("duplicates", k["dups"])) if not ok]
            marks = "PASS" if not misses else "MISS (%s)" % ", ".join(misses)
            if not targeted:
                marks += "; no target"
            summary.append((name, targeted, k, marks))
        lib = lambda key: str(r[key]) if key in r else "-"
        p("| %s | %s | %.1f s | %d of %d | %.0f | %s | %s | %s (%s%%) | %s | %s | %s | %s / %s "
          "| %s | %s | %s | %s | %s | %s | %s |" % (
              name, flush, r["total_ms"] / 1e3, r.get("receiver_distinct", -1), r["count"],
              k["rate"], ratio(k["ratio"]),
              "%.2f" % k["need"] if k["need"] is not None else "-",
              r.get("receiver_duplicates", "?"),
              "%.2f" % (k["dup"] * 100) if k["dup"] is not None else "?",
              "%.1f s" % (r["total_ms"] / 1e3) if k["all"] else "not within the row",
              r.get("disk_lines", "?"), r.get("dead_letters", "?"),
              r.get("receiver_requests", "?"), r.get("receiver_faults", "?"),
              lib("delivered"), lib("failed_attempts"), lib("retried"), lib("buffered"),
              lib("replayed"), lib("poisoned"), marks))
    p("")
    if summary:
        p("Targets check (issue 15):")
        p("")
        for name, targeted, k, marks in summary:
            target_row(name, "%s/s; %s of %s; %s duplicates" % (
                thousands(k["rate"]), thousands(k["distinct"]), thousands(k["count"]),
                thousands(k["duplicates"])),
                "healthy first / last %s/s" % " / ".join(thousands(x) for x in refs),
                ratio(k["ratio"]),
                "≥ %.2f, all delivered, < 1%% duplicates" % k["need"] if targeted
                else "no target (%.2f by the formula)" % k["need"], marks)
            p("- %s%s: throughput %s x healthy (needed %.2f), %s, duplicates %s: **%s**" % (
                name, "" if targeted else " (no target in the issue; p = 0.2 by the same formula)",
                ratio(k["ratio"]), k["need"],
                "every entry delivered" if k["all"] else "NOT every entry delivered",
                "%.2f%%" % (k["dup"] * 100) if k["dup"] is not None else "?", marks))
        p("")
    tp = one(bench="throughput", connections=2, on_full="spill")
    if tp and ref:
        p("Section 2's healthy figure in the same run (2 connections, spill, %d entries): "
          "%.0f entries/s; this table's healthy reference: %.0f/s." % (tp["count"], tp["rate"], ref))
        p("")


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def usage_us(r):
    """The process's user + system CPU of a row (rbench's getrusage, or cpurun's), in µs, less
    what rbench's thread sampler spent (sampler_cpu_us: it is rbench's, not the library's)."""
    if "cpu_user_us" not in r:
        return None
    return r["cpu_user_us"] + r["cpu_sys_us"] - r.get("sampler_cpu_us", 0)


def switches(r):
    """Voluntary + involuntary context switches of the process, less the sampler's."""
    return r["nvcsw"] + r["nivcsw"] - r.get("sampler_csw", 0)


def user_share(r):
    return r["cpu_user_us"] / (r["cpu_user_us"] + r["cpu_sys_us"])


def kib(v):
    return "%.1f MiB" % (v / 1024) if isinstance(v, (int, float)) and v >= 0 else "-"


def lat_rate(r):
    """Delivered per second: the library's `delivered` when flush returned, over the time from
    the first rarch_log until then (a bounded row counts what it delivered in its time)."""
    secs = r.get("total_ms", 0) / 1e3
    return r.get("delivered", 0) / secs if secs > 0 else 0.0


LAT_CONFIGS = (("default", "default (adaptive, up to 64)"),
               ("fixed2", "`concurrency=fixed,connections=2`"))


def latency_section(p, by, one):
    rows = by(bench="latency")
    wrk = [r["rate"] for r in by(bench="latwrk") if r.get("rate")]
    wm = sum(wrk) / len(wrk) if wrk else None
    counts = lambda pred: sorted({r["count"] for r in rows if pred(r)})
    c0 = counts(lambda r: r["latency_ms"] == 0)
    cd = counts(lambda r: r["latency_ms"] > 0 and r["config"] == "default")
    fixed_bounded = [r for r in rows if r.get("config") == "fixed2" and r.get("latency_ms", 0) > 0]
    p("## 6. Distant server (issue 16): default options against "
      "`concurrency=fixed,connections=2`, every answer delayed")
    p("")
    p("One thread logs %s typical entries (%s at 0 ms) in a tight loop, then calls "
      "`rarch_flush`; the receiver delays every answer by the latency (`{\"latency_ms\":D}`, "
      "no CPU). entries/s: the library's `delivered` when flush returned, over the time from "
      "the first `rarch_log`. Concurrency limit and rtt p50: `rarch_stats` when flush returned "
      "(the concurrency the pipeline settled on). Threads: the most seen while the row ran "
      "(`/proc/self/status`, every 50 ms, the sampler not counted); RSS when flush returned; "
      "CPU: the process's user + system time (getrusage) over the row, less the sampler's, "
      "per delivered entry." % (
          "/".join("{:,}".format(c) for c in cd) or "-",
          "/".join("{:,}".format(c) for c in c0) or "-"))
    if fixed_bounded:
        f = fixed_bounded[0]
        p("")
        p("**Bounded rows**: the fixed-2 rows at 10 ms and more log {:,} entries (the default "
          "rows {}) with `rarch_flush({} s)`; where the flush times out, the rate is what was "
          "delivered within that time (marked `bounded`).".format(
              f["count"], "/".join("{:,}".format(c) for c in cd), f.get("flush_timeout_s", 0)))
    p("")
    p("Targets: default >= 500/s at 50 ms and >= 100/s at 200 ms; at 0 ms at least the fixed-2 "
      "figure of the same run (medians of the rounds) with a concurrency limit <= 8.")
    p("")
    p("| latency | options | round | entries | flush | time | delivered | entries/s | "
      "vs fixed-2 | lib / wrk | concurrency limit | rtt p50 | threads (max) | RSS | "
      "CPU per entry | spilled | receiver distinct / dups | target |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lats = sorted({r["latency_ms"] for r in rows})
    checks = []
    for d in lats:
        fx = [lat_rate(r) for r in rows if r["latency_ms"] == d and r["config"] == "fixed2"]
        fmed = median(fx)
        for cfg, name in LAT_CONFIGS:
            for r in [r for r in rows if r["latency_ms"] == d and r["config"] == cfg]:
                rate = lat_rate(r)
                flush = {0: "OK", 9: "TIMED_OUT", -1: "none"}.get(r.get("flush"), str(r.get("flush")))
                if r.get("killed"):
                    flush += ", killed"
                if flush != "OK" and cfg == "fixed2":
                    flush += " (bounded)"
                cpu = usage_us(r)
                target = "-"
                if cfg == "default":
                    if d == 50:
                        target = mark(rate >= 500) + " (>= 500/s)"
                    elif d == 200:
                        target = mark(rate >= 100) + " (>= 100/s)"
                    elif d == 0:
                        target = "see below"
                p("| %d ms | %s | %s | %d | %s | %.1f s | %d | %.0f | %s | %s | %s | %s | %s | %s "
                  "| %s | %s | %s / %s | %s |" % (
                      d, name, r.get("round", 1), r["count"], flush, r.get("total_ms", 0) / 1e3,
                      r.get("delivered", 0), rate,
                      "%.1fx" % (rate / fmed) if fmed and cfg == "default" else "-",
                      "%.0f%%" % (100 * rate / wm) if wm and d == 0 else "-",
                      r.get("concurrency_limit", "-"),
                      ns(r["rtt_p50_us"] * 1000) if "rtt_p50_us" in r else "-",
                      r.get("threads_max", "-"), kib(r.get("rss_kib")),
                      ns(1000 * cpu / r["delivered"]) if cpu is not None and r.get("delivered") else "-",
                      r.get("buffered", "-"), r.get("receiver_distinct", "?"),
                      r.get("receiver_duplicates", "?"), target))
    p("")
    if wrk:
        p("wrk against the same receiver with no delay, 2 connections, before and after the 0 ms "
          "rows: %s req/s (mean %.0f)." % (" / ".join("%.0f" % x for x in wrk), wm))
        p("")
    p("Targets check (issue 16):")
    p("")
    for d, need in ((50, 500), (200, 100)):
        r = one(bench="latency", latency_ms=d, config="default")
        f = one(bench="latency", latency_ms=d, config="fixed2")
        if r:
            rate, frate = lat_rate(r), lat_rate(f) if f else None
            target_row("%d ms away, default options" % d, "%s entries/s" % thousands(rate),
                       "fixed-2 %s/s" % thousands(frate) if f else "–",
                       "%.1fx" % (rate / frate) if frate else "–", "≥ %d/s" % need,
                       mark(rate >= need))
            p("- %d ms, default: %.0f entries/s (needed %d; fixed-2 in this run: %s), settled on "
              "a concurrency limit of %s, rtt p50 %s: **%s**" % (
                  d, lat_rate(r), need, "%.0f/s" % lat_rate(f) if f else "-",
                  r.get("concurrency_limit", "?"),
                  ns(r["rtt_p50_us"] * 1000) if "rtt_p50_us" in r else "-",
                  mark(lat_rate(r) >= need)))
    z = [r for r in rows if r["latency_ms"] == 0 and r["config"] == "default"]
    zf = [r for r in rows if r["latency_ms"] == 0 and r["config"] == "fixed2"]
    if z and zf:
        dm, fm = median([lat_rate(r) for r in z]), median([lat_rate(r) for r in zf])
        lim = [r.get("concurrency_limit") for r in z]
        ok = dm >= fm and all(x is not None and x <= 8 for x in lim)
        target_row("0 ms: at least fixed-2's rate, ≤ 8 in flight",
                   "%s/s; limits %s" % (" / ".join(thousands(lat_rate(r)) for r in z),
                                        " / ".join(str(x) for x in lim)),
                   "fixed-2 %s/s" % " / ".join(thousands(lat_rate(r)) for r in zf),
                   "%.2fx" % (dm / fm) if fm else "–", "≥ 1x, limit ≤ 8", mark(ok))
        p("- 0 ms: default %.0f entries/s against fixed-2 %.0f/s (medians of %d and %d rounds: "
          "%.2fx%s), concurrency limit at the end %s (needed <= 8): **%s**" % (
              dm, fm, len(z), len(zf), dm / fm if fm else 0,
              "; of wrk: %.0f%% and %.0f%%" % (100 * dm / wm, 100 * fm / wm) if wm else "",
              ", ".join(str(x) for x in lim), mark(ok)))
    r = one(bench="latency", latency_ms=50, config="default")
    if r:
        cpu = usage_us(r)
        f = one(bench="latency", latency_ms=50, config="fixed2")
        target_row("50 ms: threads, RSS, CPU at %s in flight" % r.get("concurrency_limit", "?"),
                   "%s threads, %s, %s per entry" % (
                       r.get("threads_max", "?"), kib(r.get("rss_kib")),
                       ns(1000 * cpu / r["delivered"]) if cpu is not None and r.get("delivered")
                       else "-"),
                   "fixed-2: %s threads, %s" % (f.get("threads_max", "?"), kib(f.get("rss_kib")))
                   if f else "–", "–", "reported", "reported")
        p("- At 50 ms with the default options (a concurrency limit of %s at the end): %s threads "
          "at most (%s when flush returned), RSS %s (peak %s), CPU %.2f s (user %.2f + system "
          "%.2f, less %.3f s of rbench's thread sampler) for %d entries in %.1f s: %s per entry, "
          "%.0f%% of a core; %.0f context switches a second (the sampler's taken out)." % (
              r.get("concurrency_limit", "?"), r.get("threads_max", "?"), r.get("threads_end", "?"),
              kib(r.get("rss_kib")), kib(r.get("hwm_kib")), cpu / 1e6, r["cpu_user_us"] / 1e6,
              r["cpu_sys_us"] / 1e6, r.get("sampler_cpu_us", 0) / 1e6, r.get("delivered", 0),
              r["total_ms"] / 1e3, ns(1000 * cpu / r["delivered"]) if r.get("delivered") else "-",
              100 * cpu / 1e3 / r["total_ms"], switches(r) / (r["total_ms"] / 1e3)))
    p("")


def cpu_per(r, key="delivered"):
    cpu = usage_us(r)
    n = r.get(key)
    return cpu / n if cpu is not None and n else None


def us(v):
    return "-" if v is None else "%.1f µs" % v


def cpu_section(p, by, one, opts=None):
    rows = by(bench="cpu")
    wrk = by(bench="cpuwrk")
    st = by(bench="cpustrace")
    p("## 7. CPU per delivered entry (issue 21): steady rates, full speed, and wrk beside")
    p("")
    if opts:
        p("**Options**: the library rows ran with `%s` (`BENCH_CPU_OPTS`), not the defaults." % opts)
        p("")
    p("`rbench cpu`: one thread logs the typical entry at 500/s or 5,000/s (a tick of "
      "max(1 ms, 1/rate): the entries due, then `clock_nanosleep` to the next tick), or in a "
      "tight loop (full speed), with the default options (or `BENCH_CPU_OPTS`), then calls "
      "`rarch_flush`. CPU: the "
      "process's user + system time (getrusage `RUSAGE_SELF`, every thread) from the first "
      "`rarch_log` until flush returned, per entry delivered, less what rbench's thread "
      "sampler spent (it reads `/proc/self/status` every 50 ms). Sender side: the same less "
      "the calling thread's own (`RUSAGE_THREAD`: its `rarch_log` calls and pacing sleeps). "
      "Wake-ups: voluntary + involuntary context switches per second (getrusage), the "
      "process's and the sender side's. wrk: 2 connections (`-t2 -c2`), against the same "
      "receiver, its rusage from `bench/cpurun.py` (os.wait4), per request. Each row's figure is "
      "the median of the rounds (the range beside it).")
    p("")
    p("Targets: at 5,000/s at most 1.2x the full-speed figure; at full speed at most 0.7x wrk's "
      "CPU per request.")
    p("")
    p("| load | rounds | entries | achieved rate | CPU per delivered entry (median; range) | "
      "user / system | sender side per entry | wake-ups/s: process / sender side | "
      "concurrency limit | threads (max) | delivered / receiver distinct | target |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
    wrk_med = median([cpu_per(r, "requests") for r in wrk])
    meds = {rate: median([cpu_per(r) for r in rows if r.get("rate_target") == rate])
            for rate in (500, 5000, 0)}
    full = meds.get(0)
    for rate, name in ((500, "500/s"), (5000, "5,000/s"), (0, "full speed")):
        rs = [r for r in rows if r.get("rate_target") == rate]
        if not rs:
            continue
        per = [cpu_per(r) for r in rs]
        m = meds[rate]
        secs = lambda r: r["total_ms"] / 1e3
        sender = median([(usage_us(r) - r["caller_cpu_us"]) / r["delivered"] for r in rs
                         if r.get("delivered")])
        wake = median([switches(r) / secs(r) for r in rs])
        wake_s = median([(switches(r) - r["caller_nvcsw"] - r["caller_nivcsw"]) / secs(r)
                         for r in rs])
        ufrac = median([user_share(r) for r in rs])
        target = "no target"
        if rate == 5000 and m and full:
            target = "%s (%.2fx full speed, <= 1.2x)" % (mark(m <= 1.2 * full), m / full)
        elif rate == 0 and m and wrk_med:
            target = "%s (%.2fx wrk, <= 0.7x)" % (mark(m <= 0.7 * wrk_med), m / wrk_med)
        p("| %s | %d | %s | %s | %s (%s–%s) | %.0f%% / %.0f%% | %s | %.0f / %.0f | %s | %s | %s | "
          "%s |" % (
              name, len(rs), "/".join(str(r["count"]) for r in rs[:1]),
              "%.0f/s" % median([r.get("delivered", 0) / secs(r) for r in rs]),
              us(m), us(min(x for x in per if x is not None)),
              us(max(x for x in per if x is not None)), 100 * ufrac, 100 - 100 * ufrac,
              us(sender), wake, wake_s,
              "/".join(str(r.get("concurrency_limit", "?")) for r in rs),
              "/".join(str(r.get("threads_max", "?")) for r in rs),
              "; ".join("%s / %s" % (r.get("delivered", "?"), r.get("receiver_distinct", "?"))
                        for r in rs), target))
    if wrk:
        per = [cpu_per(r, "requests") for r in wrk]
        secs = [r["wall_ms"] / 1e3 for r in wrk]
        p("| wrk, 2 connections | %d | %s | %s | %s (%s–%s) per request | %.0f%% / %.0f%% | - | "
          "%.0f / - | - | - | - | reference |" % (
              len(wrk), "/".join(str(r["requests"]) for r in wrk[:1]),
              "%.0f/s" % median([r["rate"] for r in wrk]), us(wrk_med), us(min(per)), us(max(per)),
              100 * median([user_share(r) for r in wrk]),
              100 - 100 * median([user_share(r) for r in wrk]),
              median([switches(r) / s for r, s in zip(wrk, secs)])))
    p("")
    p("Targets check (issue 21):")
    p("")
    mid = meds.get(5000)
    with_opts = " (%s)" % opts if opts else ""
    if full and mid:
        target_row("CPU per entry at 5,000/s" + with_opts, us(mid), "full speed " + us(full),
                   "%.2fx" % (mid / full), "≤ 1.2x", mark(mid <= 1.2 * full))
    if full and wrk_med:
        target_row("CPU per entry at full speed" + with_opts, us(full),
                   "wrk %s per request" % us(wrk_med), "%.2fx" % (full / wrk_med), "≤ 0.7x",
                   mark(full <= 0.7 * wrk_med))
    if full and mid:
        p("- 5,000/s: %s per entry, %.2fx the full-speed %s (needed <= 1.2x): **%s**" % (
            us(mid), mid / full, us(full), mark(mid <= 1.2 * full)))
    if full and wrk_med:
        p("- full speed: %s per entry, %.2fx wrk's %s per request (needed <= 0.7x): **%s**" % (
            us(full), full / wrk_med, us(wrk_med), mark(full <= 0.7 * wrk_med)))
    if meds.get(500) and full:
        p("- 500/s (no target): %s per entry, %.2fx the full-speed figure." % (
            us(meds[500]), meds[500] / full))
    p("")
    if st:
        p("System calls (`strace -f -c`, one run of each load after the timed ones, without the "
          "thread sampler; strace slows every call, so a run under it batches more than one "
          "without: read these as counts, not times). The caller's pacing sleeps "
          "(`clock_nanosleep`, one per tick) are taken out in the column after the total:")
        p("")
        p("| load | entries | system calls | per entry | per entry, without the caller's "
          "sleeps | the most frequent, per entry |")
        p("|---|---|---|---|---|---|")
        for r in st:
            n = r.get("delivered") or r["count"]
            total = r.get("sc_total", 0)
            calls = sorted(((k[3:], v) for k, v in r.items()
                            if k.startswith("sc_") and k != "sc_total" and isinstance(v, int)),
                           key=lambda kv: -kv[1])
            p("| %s | %d | %d | %.2f | %.2f | %s |" % (
                {500: "500/s", 5000: "5,000/s", 0: "full speed"}.get(r["rate_target"],
                                                                     str(r["rate_target"])),
                n, total, total / n, (total - r.get("caller_sleeps", 0)) / n,
                ", ".join("%s %.2f" % (k, v / n) for k, v in calls[:5])))
        p("")


OTLP_ROWS = (("rarch", "rarch sink → receiver `/log` (the baseline)"),
             ("otlp", "`sink=otlp` (http/protobuf) → Collector → receiver `/v1/logs`"),
             ("otlp-json", "`sink=otlp`, `otlp_protocol=http/json` → Collector → receiver"),
             ("otlp-gzip", "`sink=otlp`, `compression=gzip` (protobuf) → Collector → receiver"))


def spread(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = fmt % median(xs)
    return m if len(xs) == 1 else "%s (%s–%s)" % (m, fmt % min(xs), fmt % max(xs))


def otlp_section(p, by, one):
    rows = by(bench="sink")
    n = rows[0]["count"]
    rounds = max(r.get("round", 1) for r in rows)
    p("### 8. OTLP through an OpenTelemetry Collector (issue 17), first rarch_log until rarch_flush returns")
    p("")
    p("Target: `sink=otlp` at least 5x the rarch sink's entries/s, %d entries, default options, "
      "one thread in a tight loop, in the same run. Median of %d round(s) (min–max); "
      "\"e2e\" is until the receiver has counted every record the Collector exported." % (n, rounds))
    p("")
    p("| sink | rounds | flush: entries/s | vs rarch | e2e: entries/s | vs rarch | "
      "through the disk (`buffered`) | library CPU per entry | Collector CPU per entry | "
      "receiver CPU per entry | arrived (receiver / library delivered) | check |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|")
    meds = {}
    cpu = {}
    for label, title in OTLP_ROWS:
        rs = [r for r in rows if r.get("label") == label]
        if not rs:
            continue
        rate = median([r["rate"] for r in rs])
        e2e = [r.get("e2e_rate", r["rate"]) for r in rs]
        meds[label] = (rate, median(e2e))
        base = meds.get("rarch")
        vs = lambda i: "%.2fx" % (meds[label][i] / base[i]) if base and label != "rarch" else "-"
        per = lambda key: [r[key] * 1000.0 / r["count"] for r in rs if key in r]
        lib = [(r["cpu_user_us"] + r["cpu_sys_us"]) / r["count"] for r in rs if "cpu_user_us" in r]
        if lib:
            cpu[label] = median(lib)
        p("| %s | %d | %s | %s | %s | %s | %s of %d | %s µs | %s | %s µs | %s | %s |" % (
            title, len(rs), spread([r["rate"] for r in rs], "%.0f"), vs(0),
            spread(e2e, "%.0f"), vs(1), spread([r.get("buffered") for r in rs], "%d"), n,
            spread(lib, "%.1f"),
            "-" if label == "rarch" else spread(per("collector_cpu_ms"), "%.1f") + " µs",
            spread(per("receiver_cpu_ms"), "%.1f"),
            "; ".join("%s / %s" % (r.get("receiver_count", "?"), r.get("delivered", "?")) for r in rs),
            "ok" if all(r.get("check") == "ok" for r in rs) else "**FAIL**"))
    p("")
    base = meds.get("rarch")
    for label, proto in (("otlp-json", "http/json"), ("otlp", "http/protobuf")):
        if base and label in meds:
            f = meds[label][0] / base[0]
            target_row("`sink=otlp` %s vs the rarch sink" % proto,
                       "%s entries/s (end to end %s)" % (thousands(meds[label][0]),
                                                         thousands(meds[label][1])),
                       "rarch sink %s/s" % thousands(base[0]), "%.2fx" % f,
                       "≥ 5x (withdrawn by issue 33)", mark(f >= 5))
    if base and "otlp" in meds:
        f, e = meds["otlp"][0] / base[0], meds["otlp"][1] / base[1]
        p("Target check (issue 17): `sink=otlp` %.0f entries/s until flush returns, %.2fx the rarch "
          "sink's %.0f (needed >= 5x): **%s**; end to end %.2fx." % (
              meds["otlp"][0], f, base[0], mark(f >= 5), e))
        p("")
    if "otlp" in meds and "otlp-json" in meds:
        f = meds["otlp"][1] / meds["otlp-json"][1]
        target_row("protobuf chain vs the JSON chain", "%s/s end to end" % thousands(meds["otlp"][1]),
                   "JSON chain %s/s" % thousands(meds["otlp-json"][1]), "%.2fx" % f, "≥ 1.25x",
                   mark(f >= 1.25))
        p("Target check (issue 33): the protobuf chain end to end %.0f entries/s, %.2fx the JSON "
          "chain's %.0f (needed >= 1.25x): **%s**." % (
              meds["otlp"][1], f, meds["otlp-json"][1], mark(f >= 1.25)))
        p("")
    if "otlp" in cpu and "rarch" in cpu:
        f = cpu["otlp"] / cpu["rarch"]
        json_cpu = (" (JSON %.1f µs, %.2fx)" % (cpu["otlp-json"], cpu["otlp-json"] / cpu["rarch"])
                    if "otlp-json" in cpu else "")
        target_row("library CPU per entry, protobuf vs the rarch sink",
                   "%.1f µs%s" % (cpu["otlp"], json_cpu), "rarch sink %.1f µs" % cpu["rarch"],
                   "%.2fx" % f, "≤ 0.25x", mark(f <= 0.25))
        p("Target check (issue 33): the library's CPU per delivered entry with `sink=otlp` "
          "(protobuf) %.1f µs, %.2fx the rarch sink's %.1f µs (needed <= 0.25x): **%s**." % (
              cpu["otlp"], f, cpu["rarch"], mark(f <= 0.25)))
        p("")


def run_command(machine):
    """The command that made these results, from the MACHINE lines bench/run.sh wrote."""
    sections = machine.get("sections", ",".join(SECTIONS))
    args = []
    if machine.get("mode") == "quick":
        args.append("--quick")
    if sections != ",".join(SECTIONS):
        args += ["--only", sections]
    if machine.get("library"):
        args += ["--rev", machine["library"]]
    if "caller" in sections.split(","):
        base = machine.get("base")
        if not base:
            args += ["--base", "none"]
        elif not DEFAULT_BASE.startswith(base) and not base.startswith(DEFAULT_BASE):
            args += ["--base", base]
    env = "BENCH_CPU_OPTS=%s " % machine["cpu_opts"] if machine.get("cpu_opts") else ""
    if not args:
        return "`%smake bench`" % env
    return "`%sbench/run.sh %s`" % (env, " ".join(args))


def targets_table(p, machine, results_path):
    """Every target marked above as a row of BENCHMARKS.md's targets table, in its column
    order. The date is the results file's (the end of the run); the tree is the library's
    commit (`--rev`) or the working tree's `git describe`."""
    date = time.strftime("%Y-%m-%d", time.gmtime(os.path.getmtime(results_path)))
    tree = machine.get("library") or machine.get("version", "?")
    p("## Targets, as rows of BENCHMARKS.md")
    p("")
    p("Copy a row over the one of the same target in BENCHMARKS.md's table; add to the date "
      "cell whether the tree is older than the current code.")
    p("")
    p("| target | figure (latest measured) | baseline | ratio | needed | mark | date, tree | command |")
    p("|---|---|---|---|---|---|---|---|")
    for row in TARGET_ROWS:
        p("| %s | %s, %s | %s |" % (" | ".join(str(c) for c in row), date, tree,
                                   run_command(machine)))
    p("")


if __name__ == "__main__":
    main()
