#!/usr/bin/env python3
"""stale_read_stop.py — how stale can a read on a deposed leader be? (SIGSTOP, not a partition)

    BUILD=build python3 tests/attack15/stale_read_stop.py [SEED] [ROUNDS] [BASEPORT]

Each round: PUT k old through the leader L (acknowledged); open a session with L; SIGSTOP L for
PAUSE seconds (10 election timeouts); the others elect a new leader, which acknowledges PUT k
new; then SIGCONT L and at once send, on the session opened before, `GET k` and `STATS`. Docs
(REPLICATION.md 5): "A deposed leader that has not noticed yet (a partition) serves reads at
most about one election timeout stale, then steps down." and "On the leader they see every
write it acknowledged" — a read answered 'old' by a node saying `role: leader` after the group
acknowledged 'new' PAUSE seconds earlier is stale by PAUSE, not by one election timeout.
Prints each round's answers; exit 1 when a stale answer came with `role: leader`.
"""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import Group, Session, int_arg, log, seed_arg  # noqa: E402

seed = seed_arg()
rounds = int_arg(2, 5)
base = int_arg(3, 22600)
rng = random.Random(seed)
EMS = 300
PAUSE = 10 * EMS / 1000
log("stale_read_stop seed %d rounds %d" % (seed, rounds))
g = Group("srs", base, election_ms=EMS)
g.start()
stale_as_leader = 0
flush_stale = []
try:
    for rnd in range(1, rounds + 1):
        L = g.leader(30)
        key = "k%d" % rnd
        assert L.q("PUT %s old" % key) == "OK"
        s = Session(L.port, 30)
        L.stop()
        t_stop = time.time()
        new = g.leader(20, exclude=(L.id,))
        r = new.q("PUT %s new" % key, 15) if new else "no new leader"
        t_ack = time.time()
        while time.time() < t_stop + PAUSE:
            time.sleep(0.05)
        L.cont()
        s.s.sendall(("GET %s\n" % key).encode())
        got = s.f.readline().decode().strip()
        st = {}
        for l in s.lines("STATS"):
            k, _, v = l.partition(": ")
            st[k] = v
        t_read = time.time()
        # and the docs' linearizable read: FLUSH on that node, then GET, must not give 'old'
        fl = s.cmd("FLUSH")
        after = s.cmd("GET %s" % key)
        s.close()
        if fl == "OK" and after == "old" and r == "OK":
            flush_stale.append(rnd)
        log("  then FLUSH on L: %r, GET after it: %r" % (fl, after))
        stale = got == "old" and r == "OK"
        log("round %d: L=%d paused %.1f s; new leader %s acknowledged 'new' (%s) %.1f s before "
            "L answered GET %s = %r; L's STATS then: role %s writable %s term %s" % (
                rnd, L.id, PAUSE, getattr(new, "id", None), r, t_read - t_ack, key, got,
                st.get("role"), st.get("writable"), st.get("term")))
        if stale and st.get("role") == "leader":
            stale_as_leader += 1
        time.sleep(rng.uniform(0.5, 1.5))
finally:
    g.shutdown()
log("stale reads answered by a node saying role leader: %d of %d" % (stale_as_leader, rounds))
log("FLUSH OK then a stale GET on the same node (the docs' linearizable read broken): %s" % (
    flush_stale or "never"))
sys.exit(1 if stale_as_leader or flush_stale else 0)
