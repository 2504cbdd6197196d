#!/usr/bin/env python3
"""Sum the results of every meson test run named on the command line into one line,
'N passed, N failed', counting each Check test case (from the 'Checks: N, Failures: F,
Errors: E' line a Check runner prints), the cases of a script that ends with its own
'N passed, N failed' line (tests/posix.sh), and each other test as one. A test that crashed
or timed out without such a summary counts as one failure. Exit 1 when anything failed.

Each failed test is named with its exit status and the last lines it printed, just above the
total: CI keeps only the tail of the output, and that tail must say why."""
import json
import os
import re
import sys

CHECK_LINE = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
COUNT_LINE = re.compile(r"^(\d+) passed, (\d+) failed$", re.M)
passed = failed = skipped = 0
failures = []
TAIL_LINES = 6
for build in sys.argv[1:]:
    log = os.path.join(build, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        print(f"{build}: no test log (the build or the run failed)")
        failed += 1
        continue
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            result = t.get("result")
            if result == "SKIP":
                skipped += 1
                continue
            out = (t.get("stdout") or "") + (t.get("stderr") or "")
            m = CHECK_LINE.findall(out)
            counts = COUNT_LINE.findall(t.get("stdout") or "")
            if not m and counts:
                good, bad = (int(x) for x in counts[-1])
                passed += good
                failed += bad
                if result not in ("OK", "EXPECTEDFAIL") and bad == 0:
                    failed += 1  # it failed without saying which case
            elif m:
                n = sum(int(a) for a, _, _ in m)
                bad = sum(int(b) + int(c) for _, b, c in m)
                passed += n - bad
                failed += bad
                if result != "OK" and bad == 0:
                    failed += 1  # crashed or leaked after its checks
            elif result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            else:
                failed += 1
            if result not in ("OK", "EXPECTEDFAIL"):
                failures.append((build, t, out))
for build, t, out in failures:
    print(f"FAILED: {build}: {t.get('name')} ({t.get('result')}, exit status {t.get('returncode')})")
    # the lines that say why: Check's failure lines first, else the output's last lines
    lines = [l for l in out.splitlines() if l.strip()]
    why = [l for l in lines if re.search(r":[FE]:", l)] or lines
    for line in why[-TAIL_LINES:]:
        print(f"    {line[:300]}")
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
sys.exit(1 if failed else 0)
