#!/usr/bin/env python3
"""Runs a command and adds what it cost to its RESULT lines (issue 21: wrk's CPU per request).

    cpurun.py COMMAND [ARG...]

The command's stdout passes through, except that every line that starts with "RESULT " gets
the child's CPU and context switches appended (os.wait4's rusage: the process and the threads
it ran, user and system time in µs, voluntary and involuntary switches) and its wall time:
" cpu_user_us=.. cpu_sys_us=.. nvcsw=.. nivcsw=.. wall_ms=.. exit=..". Without a RESULT line
from the command, one "RESULT bench=cpurun ..." line carries them. Standard library only.
"""
import os
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    t0 = time.monotonic()
    child = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE)
    out = child.stdout.read().decode(errors="replace")
    child.stdout.close()
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
    tail = " cpu_user_us=%d cpu_sys_us=%d nvcsw=%d nivcsw=%d wall_ms=%.1f exit=%d" % (
        ru.ru_utime * 1e6, ru.ru_stime * 1e6, ru.ru_nvcsw, ru.ru_nivcsw, wall * 1e3, code)
    seen = False
    for line in out.splitlines():
        if line.startswith("RESULT "):
            line += tail
            seen = True
        print(line)
    if not seen:
        print("RESULT bench=cpurun" + tail)
    sys.stdout.flush()
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
