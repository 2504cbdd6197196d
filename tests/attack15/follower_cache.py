#!/usr/bin/env python3
"""follower_cache.py — does a follower's mount show the leader's change as soon as it applied it?

    BUILD=build python3 tests/attack15/follower_cache.py [SEED] [ROUNDS] [BASEPORT]  (root, /dev/fuse)

REPLICATION.md 10.2: "After a change's fsync returns on the leader, a follower's mount shows it
once the follower has applied up to the leader's commit_index of that moment. The kernel's
caches do not add to that". Three `kvfs -o cluster=` mounts with day-long cache timeouts
(entry/attr/negative_timeout=86400, so only the applied-entry notifications can make a follower
fresh). Each round the follower first reads (caches) the state, then the leader makes one change
and fsyncs, the script waits until every follower's store_applied_index reaches the leader's
commit_index, and then reads on each follower: contents (read and mmap), size, mode, xattr,
symlink target, link count, directory listing, existence.
"""
import mmap
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import fresh_dir, int_arg, log, loopback_cluster, read_kvfs, seed_arg  # noqa: E402

seed = seed_arg()
rounds = int_arg(2, 40)
base = int_arg(3, 23500)
BUILD = os.path.abspath(os.environ.get("BUILD", "build"))
rng = random.Random(seed)


log("follower_cache seed %d rounds %d" % (seed, rounds))
root = "/tmp/a15-fc-%d" % base
fresh_dir(root)
cluster = loopback_cluster(root, base)
mnts = {i: os.path.join(root, "m%d" % i) for i in (1, 2, 3)}
procs = {}


def stats(i):
    return read_kvfs(mnts[i], 5) or {}


def view(m, name):
    """What a mount shows of one name (and its directory)."""
    p = os.path.join(m, "d", name)
    v = {"ls": sorted(os.listdir(os.path.join(m, "d")))}
    try:
        st = os.lstat(p)
        v["mode"] = oct(st.st_mode)
        v["size"] = st.st_size
        v["nlink"] = st.st_nlink
        if os.path.islink(p):
            v["link"] = os.readlink(p)
        else:
            with open(p, "rb") as f:
                v["data"] = f.read()
            if st.st_size:
                with open(p, "rb") as f:
                    mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
                    v["mmap"] = mm[:]
                    mm.close()
            try:
                v["xattr"] = os.getxattr(p, "user.a15")
            except OSError:
                v["xattr"] = None
    except FileNotFoundError:
        v["exists"] = False
    return v


problems = []
try:
    for i in (1, 2, 3):
        os.makedirs(mnts[i])
        lf = open(os.path.join(root, "n%d.log" % i), "ab")
        procs[i] = subprocess.Popen(
            [os.path.join(BUILD, "kvfs"), "-f", "-o",
             "cluster=%s,node=%d,election_ms=300,entry_timeout=86400,attr_timeout=86400,"
             "negative_timeout=86400" % (cluster, i), os.path.join(root, "d%d" % i), mnts[i]],
            stdout=lf, stderr=lf)
    end = time.time() + 30
    L = None
    while time.time() < end and L is None:
        for i in (1, 2, 3):
            if os.path.ismount(mnts[i]) and stats(i).get("writable") == "yes":
                L = i
        time.sleep(0.1)
    log("leader %s" % L)
    lm = mnts[L]
    os.mkdir(os.path.join(lm, "d"))
    names = ["f%d" % k for k in range(6)]
    for n in names:
        with open(os.path.join(lm, "d", n), "wb") as f:
            f.write(b"initial " + n.encode())
            os.fsync(f.fileno())
    time.sleep(1)
    for rnd in range(1, rounds + 1):
        n = rng.choice(names)
        p = os.path.join(lm, "d", n)
        # followers look first: their kernels cache what they saw
        for i in (1, 2, 3):
            if i != L:
                view(mnts[i], n)
        op = rng.choice(["rewrite", "truncate", "append", "rename-over", "unlink", "recreate",
                         "chmod", "xattr", "symlink", "hardlink", "pwrite-middle"])
        try:
            if op == "rewrite":
                with open(p, "wb") as f:
                    f.write(("round %d " % rnd).encode() * rng.randrange(1, 500))
                    os.fsync(f.fileno())
            elif op == "truncate":
                os.truncate(p, rng.randrange(0, 8))
            elif op == "append":
                with open(p, "ab") as f:
                    f.write(b"+%d" % rnd)
                    os.fsync(f.fileno())
            elif op == "pwrite-middle":
                fd = os.open(p, os.O_WRONLY)
                os.pwrite(fd, b"<%d>" % rnd, 3)
                os.fsync(fd)
                os.close(fd)
            elif op == "rename-over":
                other = rng.choice([x for x in names if x != n])
                os.rename(os.path.join(lm, "d", other), p)
                with open(os.path.join(lm, "d", other), "wb") as f:
                    f.write(b"refilled %d" % rnd)
                    os.fsync(f.fileno())
            elif op == "unlink":
                os.unlink(p)
            elif op == "recreate":
                if os.path.lexists(p):
                    os.unlink(p)
                with open(p, "wb") as f:
                    f.write(b"recreated %d" % rnd)
                    os.fsync(f.fileno())
            elif op == "chmod":
                os.chmod(p, rng.choice([0o600, 0o644, 0o755, 0o400]))
            elif op == "xattr":
                os.setxattr(p, "user.a15", b"x%d" % rnd)
            elif op == "symlink":
                if os.path.lexists(p):
                    os.unlink(p)
                os.symlink("target-%d" % rnd, p)
            elif op == "hardlink":
                q = p + ".ln"
                if os.path.lexists(q):
                    os.unlink(q)
                os.link(p, q)
        except OSError as e:
            log("round %d: %s %s on the leader: %s (fine: nothing to change)" % (rnd, op, n, e))
            continue
        dfd = os.open(os.path.join(lm, "d"), os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        ci = int(stats(L).get("commit_index", "0"))
        end = time.time() + 30
        while time.time() < end and any(int(stats(i).get("store_applied_index", "0")) < ci
                                        for i in (1, 2, 3)):
            time.sleep(0.05)
        want = view(lm, n)
        for i in (1, 2, 3):
            if i == L:
                continue
            got = view(mnts[i], n)
            if got != want:
                diff = {k: (want.get(k), got.get(k)) for k in set(want) | set(got)
                        if want.get(k) != got.get(k)}
                problems.append("round %d: %s %s: node %d's mount differs after it applied "
                                "the change: %s" % (rnd, op, n, i, str(diff)[:300]))
                log("STALE " + problems[-1])
        if rnd % 10 == 0:
            log("round %d: %d stale views so far" % (rnd, len(problems)))
finally:
    for i in procs:
        subprocess.call(["fusermount3", "-u", mnts[i]], stderr=subprocess.DEVNULL)
    time.sleep(2)
    for i in procs:
        if procs[i].poll() is None:
            procs[i].kill()
        subprocess.call(["fusermount3", "-uz", mnts[i]], stderr=subprocess.DEVNULL)
    log("stale views: %d" % len(problems))
    if problems:
        log("logs kept in %s" % root)
    else:
        subprocess.call(["rm", "-rf", root])
sys.exit(1 if problems else 0)
