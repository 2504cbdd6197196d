#!/usr/bin/env python3
"""strace_faults.py — a failing disk on one node (strace fault injection) under a write load.

    BUILD=build python3 tests/attack15/strace_faults.py [SEED] [BASEPORT] [CASE...]

A group of three with four ledger clients. Once a leader is up, strace attaches (-p, -f) to the
leader's or a follower's process and makes one system call fail from its Nth call on
(e.g. fsync EIO, io_submit EIO — raft's appends —, pwrite64 ENOSPC). After a while strace is
detached, the group is quiesced and every node is checked against the ledger; the faulty node's
STATS and log lines are printed (does it refuse writes, leave the group, say why?).
CASE is WHO:SYSCALL:ERRNO:WHEN (WHO leader|follower), default: a list of cases.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Group, Ledger, int_arg, log, seed_arg, start_clients, stop_clients,  # noqa: E402
                   verify)

seed = seed_arg()
base = int_arg(2, 21500)
cases = sys.argv[3:] or [
    "leader:fsync:EIO:1+", "follower:fsync:EIO:1+",
    "leader:fdatasync:EIO:1+", "follower:fdatasync:EIO:1+",
    "leader:io_submit:EIO:5+", "follower:io_submit:EIO:5+",
    "leader:pwrite64:ENOSPC:3+", "follower:pwrite64:ENOSPC:3+",
    "leader:fallocate:ENOSPC:1+", "follower:rename:EIO:1+",
]
log("strace_faults seed %d cases %s" % (seed, cases))
rng = random.Random(seed)
problems = []

for ci, case in enumerate(cases):
    who, sc, err, when = case.split(":")
    g = Group("st%d" % ci, base + 10 * ci, election_ms=300, extra=",snapshot_entries=32")
    g.start()
    ledger = Ledger()
    ld = g.leader(30)
    if not ld:
        problems.append("%s: no leader at start" % case)
        g.shutdown()
        continue
    clients = start_clients(g, ledger, 3, seed)
    time.sleep(1)
    victim = ld if who == "leader" else [n for n in g.nodes if n is not ld][0]
    before = victim.stats()
    tr = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-p", str(victim.p.pid),
                           "-e", "trace=%s" % sc, "-e",
                           "inject=%s:error=%s:when=%s" % (sc, err, when)])
    time.sleep(4)
    mid = {}
    try:
        mid = victim.stats(3)
    except Exception as e:  # noqa: BLE001
        mid = {"stats": "failed: %s" % e}
    acks_during = ledger.acks
    time.sleep(2)
    tr.terminate()
    tr.wait()
    time.sleep(1)
    stop_clients(clients)
    time.sleep(5)
    for nd in g.nodes:
        try:
            st = nd.stats(3)
            log("  5 s after the fault ended: node %d role %s term %s last %s commit %s applied %s "
                "store_error %s" % (nd.id, st.get("role"), st.get("term"), st.get("last_index"),
                                    st.get("commit_index"), st.get("store_applied_index"),
                                    st.get("store_error")))
        except Exception as e:  # noqa: BLE001
            log("  5 s after the fault ended: node %d: %s" % (nd.id, e))
    for c in clients:
        c.join(30)
    log("%s: victim node %d (%s) before: role %s; during fault: role %s store_error %s "
        "writable %s; acks %d" % (case, victim.id, who, before.get("role"), mid.get("role"),
                                  mid.get("store_error"), mid.get("writable"), acks_during))
    log("  client errors: %s" % {k: v for c in clients for k, v in c.errors.items()})
    log("  victim log:\n" + victim.logtail(8))
    keep = os.environ.get("A15_LOGS", "/tmp/a15-logs")
    os.makedirs(keep, exist_ok=True)
    kept = os.path.join(keep, "strace-%d-%s.log" % (seed, case.replace(":", "_")))
    subprocess.call(["cp", victim.logpath, kept])
    log("  victim's whole log: %s" % kept)
    p = verify(g, ledger, require_all=False)
    alive = [n.id for n in g.nodes if n.alive()]
    log("  after: alive %s, acks %d unknown %d, problems %d" % (alive, ledger.acks,
                                                                ledger.unknown, len(p)))
    for x in p[:10]:
        log("  PROBLEM " + x)
    problems += ["%s: %s" % (case, x) for x in p]
    g.shutdown(keep=bool(p))

log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
for x in problems:
    log("PROBLEM " + x)
sys.exit(1 if problems else 0)
