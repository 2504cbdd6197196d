#!/usr/bin/env python3
"""mount_rounds.py — three `kvfs -o cluster=` mounts; files written and fsync'd through the
leader's mount while its daemon is killed (-9) or stopped, with a ledger of what fsync acknowledged.

    BUILD=build python3 tests/attack15/mount_rounds.py [SEED] [ROUNDS] [BASEPORT]   (root, /dev/fuse)

A writer thread creates files f<N> (64-4096 bytes of a pattern naming N) on whichever mount is
writable, and for every fsync that returned 0 records the file as acknowledged; every 5th file
it also rewrites an older acknowledged file (O_TRUNC, new contents, fsync) and renames one.
Each round: SIGKILL the leader's daemon (its mount is lazily unmounted and mounted again), or
SIGSTOP it for 3 election timeouts, or SIGKILL a follower's. After each round, once a mount is
writable again and `echo flush > .kvfs` returned there, every acknowledged file must read back
byte for byte on every mount (after each follower applied the leader's commit index).
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import fresh_dir, int_arg, log, loopback_cluster, read_kvfs, seed_arg  # noqa: E402

seed = seed_arg()
rounds = int_arg(2, 8)
base = int_arg(3, 22400)
BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
KVFS = os.path.join(BUILD, "kvfs")
rng = random.Random(seed)
EMS = 300


log("mount_rounds seed %d rounds %d (rerun: mount_rounds.py %d %d)" % (seed, rounds, seed, rounds))
root = "/tmp/a15-mr-%d" % base
fresh_dir(root)
cluster = loopback_cluster(root, base)
procs, mnts = {}, {i: os.path.join(root, "m%d" % i) for i in (1, 2, 3)}
stopped = set()


def mount(i):
    os.makedirs(mnts[i], exist_ok=True)
    lf = open(os.path.join(root, "n%d.log" % i), "ab")
    procs[i] = subprocess.Popen([KVFS, "-f", "-o", "cluster=%s,node=%d,election_ms=%d,"
                                 "snapshot_entries=64" % (cluster, i, EMS),
                                 os.path.join(root, "d%d" % i), mnts[i]], stdout=lf, stderr=lf)
    end = time.time() + 30
    while time.time() < end and not os.path.ismount(mnts[i]):
        time.sleep(0.05)


def kill(i):
    if i in stopped:
        os.kill(procs[i].pid, signal.SIGCONT)
        stopped.discard(i)
    procs[i].kill()
    procs[i].wait()
    subprocess.call(["fusermount3", "-uz", mnts[i]])


def stats(i, timeout=5):
    return read_kvfs(mnts[i], timeout) or {}


def writable(timeout=30, exclude=()):
    end = time.time() + timeout
    while time.time() < end:
        for i in (1, 2, 3):
            if i not in stopped and i not in exclude and stats(i, 2).get("writable") == "yes":
                return i
        time.sleep(0.1)
    return None


def content(n, gen):
    unit = ("file %d generation %d;" % (n, gen)).encode()
    size = random.Random(n * 7 + gen).randrange(64, 4096)
    return (unit * (size // len(unit) + 1))[:size]


acked = {}  # name -> bytes whose fsync returned 0 (the last one)
maybe = {}  # name -> list of contents written without a known outcome
mu = threading.Lock()
go = True
errors = {}
last_op = [(0, "")]


def writer():
    n = 0
    while go:
        i = writable(5)
        if i is None:
            continue
        mnt = mnts[i]
        n += 1
        try:
            if n % 5 == 0 and acked:
                with mu:
                    name = rng.choice(sorted(acked))
                gen = n
                data = content(int(name[1:].split(".")[0]), gen)
            else:
                name, data = "f%d" % n, content(n, 0)
            with mu:
                # O_TRUNC may commit while the write after it fails: empty is a possible state
                maybe.setdefault(name, []).extend([b"", data])
            last_op[0] = (time.time(), "write %s on node %d" % (name, i))
            fd = os.open(os.path.join(mnt, name), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            with mu:
                acked[name] = data
                maybe[name] = []
        except OSError as e:
            errors[e.strerror] = errors.get(e.strerror, 0) + 1
            time.sleep(0.05)


problems = []
rnd = 0
try:
    for i in (1, 2, 3):
        mount(i)
    ld = writable()
    log("node %d is writable" % ld)
    for rnd in range(1, rounds + 1):
        go = True
        wt = threading.Thread(target=writer, daemon=True)
        wt.start()
        time.sleep(rng.uniform(1.5, 3))
        ld = writable()
        kind = rng.choice(["kill-leader", "kill-leader", "stop-leader", "kill-follower"])
        log("round %d: %s (leader %s), acknowledged files %d, errors %s; writer's last op %.1f s "
            "ago: %s" % (rnd, kind, ld, len(acked), errors, time.time() - last_op[0][0],
                         last_op[0][1]))
        if kind == "kill-leader":
            kill(ld)
            time.sleep(rng.uniform(0.5, 1.5))
            mount(ld)
        elif kind == "stop-leader":
            os.kill(procs[ld].pid, signal.SIGSTOP)
            stopped.add(ld)
            time.sleep(3 * EMS / 1000 + rng.uniform(0, 1))
            os.kill(procs[ld].pid, signal.SIGCONT)
            stopped.discard(ld)
        else:
            f = rng.choice([i for i in (1, 2, 3) if i != ld])
            kill(f)
            time.sleep(rng.uniform(0.5, 1.5))
            mount(f)
        time.sleep(1)
        go = False
        wt.join(60)
        if wt.is_alive():
            problems.append("round %d: HANG: the writer is stuck for 60 s in: %s" % (
                rnd, last_op[0][1]))
            log("  " + problems[-1])
            break
        new = writable(60)
        if new is None:
            problems.append("round %d: no writable mount within 60 s" % rnd)
            break
        with open(os.path.join(mnts[new], ".kvfs"), "w") as f:
            f.write("flush\n")
        ci = int(stats(new).get("commit_index", "0"))
        end = time.time() + 60
        while time.time() < end and any(int(stats(i, 2).get("store_applied_index", "0")) < ci
                                        for i in (1, 2, 3)):
            time.sleep(0.2)
        time.sleep(1.5)  # the followers' kernels: entry/attr timeouts are 1 s on a node
        bad = []
        for i in (1, 2, 3):
            for name, data in sorted(acked.items()):
                try:
                    got = open(os.path.join(mnts[i], name), "rb").read()
                except OSError as e:
                    got = e.strerror
                if got != data and got not in maybe.get(name, []):
                    bad.append("node %d: %s: %r... (want %d bytes %r...)" % (
                        i, name, got[:30], len(data), data[:30]))
        log("  checked %d acknowledged files on 3 mounts: %d wrong" % (len(acked), len(bad)))
        for b in bad[:8]:
            log("  LOST " + b)
        problems += ["round %d (%s): LOST %s" % (rnd, kind, b) for b in bad]
        if bad:
            break
finally:
    go = False
    log("mount rounds: %d, acknowledged files %d, errors %s" % (rnd, len(acked), errors))
    log("acked lost: %d" % len(problems))
    for i in list(procs):
        if i in stopped:
            os.kill(procs[i].pid, signal.SIGCONT)
        subprocess.call(["fusermount3", "-u", mnts[i]], stderr=subprocess.DEVNULL)
    time.sleep(2)
    for i in list(procs):
        if procs[i].poll() is None:
            procs[i].kill()
        subprocess.call(["fusermount3", "-uz", mnts[i]], stderr=subprocess.DEVNULL)
    if problems:
        log("kept %s" % root)
    else:
        subprocess.call(["rm", "-rf", root])
sys.exit(1 if problems else 0)
