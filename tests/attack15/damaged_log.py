#!/usr/bin/env python3
"""damaged_log.py — a node whose raft directory (or store) was damaged while it was down.

    BUILD=build python3 tests/attack15/damaged_log.py [SEED] [BASEPORT] [CASE...]

For each CASE: a group of three takes writes with a ledger; a follower is killed, the damage is
done to its directory, the group takes more writes, the follower is started again. Then: does it
start, or refuse with a clear line? does it rejoin and end identical to the others? does any node
ever hold a value no write gave, or lose an acknowledged one? With CASE 'majority-*' the leader is
killed after the damage too, so the damaged node's vote decides the next election.
Cases: trunc-open (the open segment holding entries cut at half), flip-open (one bit in its
middle), flip-closed, trunc-closed, no-metadata (metadata1/2 removed: term and vote lost),
flip-snapshot (a bit in a snapshot file), store-wal-flip (a bit in the store's log segment),
majority-trunc-open.
"""
import glob
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Group, Ledger, int_arg, log, seed_arg, start_clients, stop_clients,  # noqa: E402
                   verify)

seed = seed_arg()
base = int_arg(2, 21800)
cases = sys.argv[3:] or ["trunc-open", "flip-open", "flip-closed", "trunc-closed", "no-metadata",
                         "flip-snapshot", "store-wal-flip", "majority-trunc-open",
                         "majority-flip-open"]
rng = random.Random(seed)
log("damaged_log seed %d cases %s" % (seed, cases))
problems = []


def flip(path, lo_frac=0.3, hi_frac=0.7):
    size = os.path.getsize(path)
    off = rng.randrange(int(size * lo_frac), max(int(size * lo_frac) + 1, int(size * hi_frac)))
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x10]))
    return "%s byte %d" % (os.path.basename(path), off)


def used_open(rdir):
    """The open segment holding the most entries: raft preallocates, so the written part is
    before the first all-zero 4 KiB block."""
    best, best_used = None, 0
    for p in glob.glob(os.path.join(rdir, "open-*")):
        data = open(p, "rb").read()
        used = len(data.rstrip(b"\0"))
        if used > best_used:
            best, best_used = p, used
    return best, best_used


def damage(case, nd):
    rdir = os.path.join(nd.dir, "raft")
    if case.endswith("trunc-open"):
        p, used = used_open(rdir)
        if not p:
            return None
        with open(p, "r+b") as f:
            f.truncate(used // 2)
        return "%s cut to %d of %d written bytes" % (os.path.basename(p), used // 2, used)
    if case.endswith("zero-tail-open"):
        # what a torn append leaves in a preallocated segment: its length stays, the end of
        # the last write never reached the disk
        p, used = used_open(rdir)
        if not p:
            return None
        cut = used // 2
        with open(p, "r+b") as f:
            f.seek(cut)
            f.write(b"\0" * (used - cut))
        return "%s zeroed from %d to %d (its length kept)" % (os.path.basename(p), cut, used)
    if case.endswith("flip-open") or case.endswith("flip-open-late"):
        p, used = used_open(rdir)
        if not p:
            return None
        with open(p, "r+b") as f:
            # -late: in the last tenth, among the entries only the leader and this node hold
            lo, hi = (9 * used // 10, used - 64) if case.endswith("late") else (used // 3, 2 * used // 3)
            off = rng.randrange(lo, hi)
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0x10]))
        return "%s byte %d of %d written" % (os.path.basename(p), off, used)
    closed = sorted(p for p in glob.glob(os.path.join(rdir, "0*-0*")) if os.path.getsize(p) > 64)
    if case == "flip-closed":
        return flip(closed[-1]) if closed else None
    if case == "trunc-closed":
        if not closed:
            return None
        with open(closed[-1], "r+b") as f:
            f.truncate(os.path.getsize(closed[-1]) // 2)
        return "%s cut at half" % os.path.basename(closed[-1])
    if case == "no-metadata":
        for m in ("metadata1", "metadata2"):
            os.unlink(os.path.join(rdir, m))
        return "metadata1, metadata2 removed"
    if case == "flip-snapshot":
        snaps = sorted(glob.glob(os.path.join(rdir, "snapshot-*")))
        return flip(snaps[-1], 0.0, 1.0) if snaps else None
    if case == "store-wal-flip":
        segs = sorted(glob.glob(os.path.join(nd.dir, "store", "wal-*.log")))
        return flip(segs[-1], 0.0, 0.2) if segs else None
    raise SystemExit("unknown case " + case)


for ci, case in enumerate(cases):
    snap = 100000 if "open" in case or "closed" in case else 32
    g = Group("dl%d" % ci, base + 10 * ci, election_ms=300, extra=",snapshot_entries=%d" % snap)
    g.start()
    ledger = Ledger()
    ld = g.leader(30)
    clients = start_clients(g, ledger, 3, seed)
    time.sleep(3)
    victim = [n for n in g.nodes if n is not ld][0]
    other = [n for n in g.nodes if n is not ld and n is not victim][0]
    if case.startswith("majority"):
        other.stop()  # the writes from here on are only on leader + victim
        time.sleep(2)
    victim.kill()
    if case.startswith("majority"):
        # acknowledged writes are now on the leader (and the victim's log) only; the leader dies
        stop_clients(clients)
        ld.kill()
        other.cont()
    what = damage(case, victim)
    log("%s: node %d damaged: %s" % (case, victim.id, what))
    if what is None:
        log("  (nothing to damage in this case)")
        g.shutdown()
        continue
    time.sleep(1)
    victim.start()
    time.sleep(3)
    stop_clients(clients)
    if case.startswith("majority"):
        time.sleep(3)
        log("  leader is now %s (old leader %d still down)" % (
            getattr(g.leader(10), "id", None), ld.id))
    started = victim.alive()
    try:
        st = victim.stats(3)
        vs = "role %s store_error %s store_applied %s installs %s" % (
            st.get("role"), st.get("store_error"), st.get("store_applied_index"), st.get("installs"))
    except Exception as e:  # noqa: BLE001
        vs = "no stats (%s)" % e
    log("  victim %s; %s" % ("running" if started else "exited %s" % victim.p.returncode, vs))
    log("  victim log tail:\n" + victim.logtail(6))
    os.makedirs("/tmp/a15-logs", exist_ok=True)
    import shutil
    shutil.copy(victim.logpath, "/tmp/a15-logs/damaged-%d-%s.log" % (seed, case))
    if case.startswith("majority"):
        # check what the two-node majority holds before the old leader is back
        p = verify(g, ledger, require_all=False)
        log("  before the old leader returns: %d problems" % len(p))
        for x in p[:8]:
            log("  PROBLEM " + x)
        problems += ["%s (old leader down): %s" % (case, x) for x in p]
        ld.start()
    p = verify(g, ledger, require_all=False)
    log("  acks %d unknown %d, problems %d" % (ledger.acks, ledger.unknown, len(p)))
    for x in p[:8]:
        log("  PROBLEM " + x)
    problems += ["%s: %s" % (case, x) for x in p]
    g.shutdown(keep=bool(p))

log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
sys.exit(1 if problems else 0)
