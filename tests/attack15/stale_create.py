#!/usr/bin/env python3
"""stale_create.py — the stale-read hazard of the mount: a leader that loses and regains
leadership between reading its store and proposing the change it built from that read.

    BUILD=build python3 tests/attack15/stale_create.py [SEED] [NET]    (root, /dev/fuse, strace)

Three `kvfs -o cluster=` mounts, each daemon in its own network namespace (nsenter --net: the
mounts are in ours), joined by a bridge as in partition.py. Node A is the leader. strace attaches to
A's FUSE worker threads (strace -p each) with a 90 s delay on write(2); `open("d/slot",
O_CREAT|O_EXCL)` on A's mount then stops in A's FUSE thread at the eventfd write of
uv_async_send in repl_propose — *after* the tree read A's store (the name is free) and queued the
batch, before raft's loop submits it; A's other threads (raft) run on. While that thread is held:
A is cut off, another node leads and creates "slot" (O_EXCL, written, fsync'd: acknowledged),
A is healed and applies that create, then the other leader is cut off until A leads again and is
writable. Then the delay ends and the held create goes on under A's new term.
Docs (REPLICATION.md 10): "a change reads the store to decide (is the name free ...), so it must
not start on a store that lags". Expected: A's create fails (EEXIST, or EROFS/ECONNABORTED),
and the other node's fsync'd file stays. Seen: printed at the end.
"""
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import int_arg, log, netns_bridge, netns_delete, read_kvfs, seed_arg, sh  # noqa: E402

NET = int_arg(2, 161)
seed = seed_arg()
BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
KVFS = os.path.join(BUILD, "kvfs")
BR = "a15-%d-br" % NET
rng = random.Random(seed)
HOLD_US = int(os.environ.get("HOLD_S", "60")) * 1000000
WTO = os.environ.get("WRITE_TIMEOUT_MS", "120000")


def link(i, up):
    sh("ip", "-n", BR, "link", "set", "a15b%d-%d" % (NET, i), "up" if up else "down")


root = "/tmp/a15-stale-%d" % NET
subprocess.call(["rm", "-rf", root])
os.makedirs(root)
nss = [BR] + ["a15-%d-n%d" % (NET, i) for i in (1, 2, 3)]
procs, mnts = {}, {}
result = 1
tracer = None
try:
    netns_bridge(NET, BR)
    cluster = os.path.join(root, "cluster")
    with open(cluster, "w") as f:
        for i in (1, 2, 3):
            f.write("%d 10.%d.0.%d:%d\n" % (i, NET, i, 7000 + i))
    for i in (1, 2, 3):
        mnts[i] = os.path.join(root, "m%d" % i)
        os.makedirs(mnts[i])
        lf = open(os.path.join(root, "n%d.log" % i), "ab")
        procs[i] = subprocess.Popen(
            ["nsenter", "--net=/run/netns/a15-%d-n%d" % (NET, i), KVFS, "-f", "-o",
             "cluster=%s,node=%d,election_ms=300,write_timeout_ms=%s" % (cluster, i, WTO),
             os.path.join(root, "d%d" % i), mnts[i]], stdout=lf, stderr=lf)

    def kvfs_stats(i, timeout=5):
        """.kvfs of node i's mount, or {} (also when reading it blocks: a thread is left)."""
        out = read_kvfs(mnts[i], timeout)
        if out is None:
            log("  reading node %d's .kvfs blocks" % i)
        return out or {}

    def writable_leader(exclude=(), timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            for i in (1, 2, 3):
                if i not in exclude and kvfs_stats(i).get("writable") == "yes":
                    return i
            time.sleep(0.1)
        return None

    A = writable_leader()
    log("node %d leads; its daemon is pid %d" % (A, procs[A].pid))
    os.mkdir(os.path.join(mnts[A], "d"))  # the held create locks d, not the root (.kvfs)
    with open(os.path.join(mnts[A], "d", "warmup"), "w") as f:
        f.write("w")
        os.fsync(f.fileno())
    # The FUSE worker threads (blocked reading /dev/fuse) get strace with a long delay on
    # write(2): the only write such a thread makes for a create is uv_async_send's eventfd
    # write in repl_propose, after the tree read the store and queued the batch and before the
    # raft loop submits it. (Replies to the kernel are writev.)
    tids = []
    for tid in os.listdir("/proc/%d/task" % procs[A].pid):
        try:
            sc = open("/proc/%d/task/%s/syscall" % (procs[A].pid, tid)).read().split()
        except OSError:
            continue
        if sc and sc[0] == "0" and int(sc[1], 16) > 2:  # read(fd > 2): /dev/fuse
            fdl = os.readlink("/proc/%d/fd/%d" % (procs[A].pid, int(sc[1], 16)))
            if fdl == "/dev/fuse":
                tids.append(tid)
    log("FUSE worker threads of node %d: %s" % (A, tids))
    argv = ["strace", "-qq", "-o", os.path.join(root, "strace.out"), "-e", "trace=write", "-e",
            "inject=write:delay_enter=%d" % HOLD_US]
    for tid in tids:
        argv += ["-p", tid]
    tracer = subprocess.Popen(argv)
    time.sleep(3)
    res = {}
    t_start = time.time()

    def create_on_A():
        try:
            fd = os.open(os.path.join(mnts[A], "d", "slot"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            res["t"] = time.time() - t_start
            os.write(fd, b"written by node A (stale create)\n")
            os.fsync(fd)
            os.close(fd)
            res["A"] = "created, written, fsync'd"
        except OSError as e:
            res["A"] = "failed: %s" % e
    t = threading.Thread(target=create_on_A, daemon=True)
    t.start()
    time.sleep(1)
    if "A" in res:
        log("the create was not held: %s" % res)
        raise SystemExit(2)
    log("node %d's create of 'slot' is held in repl_propose (its store said: free)" % A)
    stA = kvfs_stats(A)
    log("  A: term %s role %s" % (stA.get("term"), stA.get("role")))
    link(A, False)
    B = writable_leader(exclude=(A,))
    log("A cut off; node %s leads" % B)
    fd = os.open(os.path.join(mnts[B], "d", "slot"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.write(fd, b"written by node B (acknowledged)\n")
    os.fsync(fd)
    os.close(fd)
    log("node %d created 'slot', wrote and fsync'd it: acknowledged" % B)
    link(A, True)
    time.sleep(1.5)
    def leader_seen():
        """Who leads, as the two other nodes' .kvfs say (A's own .kvfs blocks while A's
        create is held)."""
        for i in (1, 2, 3):
            if i != A:
                ld = kvfs_stats(i).get("leader", "")
                if ld and ld.split()[0].isdigit() and int(ld.split()[0]) in (1, 2, 3):
                    return int(ld.split()[0])
        return None
    cur = None
    for attempt in range(30):
        time.sleep(1.0)
        cur = leader_seen()
        log("  leader seen by the others: %s" % cur)
        if cur == A or cur is None:
            if cur == A:
                break
            continue
        link(cur, False)
        time.sleep(rng.uniform(1.0, 2.0))
        link(cur, True)
    time.sleep(2)  # A applies its term's first entry and becomes writable
    stA = kvfs_stats(A)
    log("A leads again: %s (term %s, writable %s, store_applied %s)" % (
        cur == A, stA.get("term"), stA.get("writable"), stA.get("store_applied_index")))
    if cur != A:
        raise SystemExit(2)
    try:
        log("  A's store says (.kvfs keys) %s" % stA.get("keys"))
    except OSError as e:
        log("  A: %s" % e)
    for i in (1, 2, 3):
        if i != A:
            log("  before the held create goes on, node %d's mount: d/slot = %r" % (
                i, open(os.path.join(mnts[i], "d", "slot")).read()))
    log("waiting for the held write(2) to end (strace delay %d s from the create)" % (HOLD_US // 1000000))
    t.join(HOLD_US / 1e6 + 60)
    log("A's held create: %s" % res.get("A", "still blocked"))
    time.sleep(2)
    for i in (1, 2, 3):
        try:
            log("node %d's mount: slot = %r; ls = %s" % (
                i, open(os.path.join(mnts[i], "d", "slot")).read(),
                sorted(os.listdir(os.path.join(mnts[i], "d")))))
        except OSError as e:
            log("node %d's mount: %s" % (i, e))
    final = {}
    for i in (1, 2, 3):
        try:
            final[i] = open(os.path.join(mnts[i], "d", "slot")).read()
        except OSError as e:
            final[i] = str(e)
    lost = any("node B" not in v for v in final.values())
    log("VERDICT: %s" % (
        "ACKNOWLEDGED WRITE LOST: node %d's O_EXCL create, written and fsync'd, was replaced by "
        "node %d's create built on its stale store (A's create: %s)" % (B, A, res.get("A"))
        if lost else "held: node %d's fsync'd file is intact (A's create: %s)" % (B, res.get("A"))))
    result = 1 if lost else 0
finally:
    if tracer and tracer.poll() is None:
        tracer.terminate()
    for i, p in procs.items():
        subprocess.call(["fusermount3", "-uz", mnts[i]], stderr=subprocess.DEVNULL)
        p.kill()
        p.wait()
    netns_delete(nss)
    log("logs in %s" % root)
sys.exit(result)
