#!/usr/bin/env python3
"""fulldisk.py — the leader's data directory fills up (a small loop-mounted ext4 image).

    BUILD=build python3 tests/attack15/fulldisk.py [SEED] [BASEPORT] [leader|follower]   (root)

Node 1's directory is on its own 64 MiB ext4 image (losetup -f: our own device, detached at the
end); nodes 2 and 3 are in /tmp. Node 1 is made the leader (or, with 'follower', a follower) by
killing and restarting whoever else leads. Clients then write 32 KiB values until node 1's disk
is full, for up to 60 s. Then: what did node 1 say, does the group still take writes (a new
leader?), and once space is freed (a file of ours on that filesystem removed) and the node
restarted, does it rejoin? Every node is checked against the ledger at the end.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Client, Group, Ledger, ext4_image, int_arg, log, seed_arg, sh,  # noqa: E402
                   stop_clients, verify)

seed = seed_arg()
base = int_arg(2, 22000)
role = sys.argv[3] if len(sys.argv) > 3 else "leader"
rng = random.Random(seed)
log("fulldisk seed %d, node 1 as %s" % (seed, role))


g = Group("fd", base, election_ms=300, extra=",snapshot_entries=256")
img, mnt = os.path.join(g.root, "img1"), os.path.join(g.root, "m1")
dev = ext4_image(img, "64M")
os.makedirs(mnt)
problems = []
try:
    sh("mount", dev, mnt)
    # a filler we can remove later to give space back
    subprocess.call(["fallocate", "-l", "8M", os.path.join(mnt, "filler")])
    n1 = g.node(1)
    n1.dir = os.path.join(mnt, "node")
    g.start()
    for _ in range(20):
        ld = g.leader(30)
        if (ld is n1) == (role == "leader"):
            break
        victim = ld if role == "leader" else n1
        victim.kill()
        time.sleep(1.0)
        victim.start()
        time.sleep(1.0)
    ld = g.leader(30)
    log("leader is node %d" % ld.id)
    ledger = Ledger()

    class Big(Client):
        pass
    clients = [Client(g, ledger, c, seed=seed, keys=400, flush_every=50) for c in range(3)]
    big = "x" * 32768
    import group as G
    orig_cmd = G.Session.cmd

    def cmd(self, line):  # widen every PUT's value to 32 KiB (the ledger keeps the short one)
        if line.startswith("PUT "):
            line = line + "." + big
        r = orig_cmd(self, line)
        if line.startswith("GET ") and r.endswith("." + big):
            r = r[:-(len(big) + 1)]
        return r
    G.Session.cmd = cmd
    for c in clients:
        c.start()
    end = time.time() + 60
    st = {}
    while time.time() < end:
        time.sleep(2)
        try:
            st = n1.stats(3)
        except Exception as e:  # noqa: BLE001
            st = {"stats": str(e)}
        df = sh("df", "--output=avail", mnt).split()[-1]
        log("  node 1: role %s store_error %s applied %s; free %s KiB; acks %d; alive %s" % (
            st.get("role"), st.get("store_error"), st.get("store_applied_index"), df,
            ledger.acks, n1.alive()))
        if not n1.alive() or st.get("store_error", "none") != "none":
            break
    acks_at_full = ledger.acks
    time.sleep(15)
    log("  15 s later: acks %d (were %d at the failure); leader %s" % (
        ledger.acks, acks_at_full, getattr(g.leader(5), "id", None)))
    if ledger.acks == acks_at_full:
        problems.append("WEDGED: no write acknowledged in the 15 s after node 1's disk filled "
                        "(node 1 was %s)" % role)
    log("  client errors: %s" % {k: v for c in clients for k, v in c.errors.items()})
    log("  node 1 log:\n" + n1.logtail(6))
    stop_clients(clients)
    # the way out an operator has: SIGTERM (a leader hands over first, REPLICATION.md 1)
    t0 = time.time()
    n1.term(30)
    log("  SIGTERM to node 1: exited %s after %.1f s; a writable leader then: %s" % (
        n1.p.returncode, time.time() - t0, getattr(g.leader(10), "id", None)))
    os.unlink(os.path.join(mnt, "filler"))
    n1.start()
    p = verify(g, ledger)
    log("  after freeing 8 MiB and restarting node 1: %d problems" % len(p))
    problems += p
finally:
    for x in problems:
        log("PROBLEM " + x)
    log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
    g.shutdown(keep=True)
    subprocess.call(["umount", "-l", mnt])
    subprocess.call(["losetup", "-d", dev])
    subprocess.call(["rm", "-rf", g.root])
sys.exit(1 if problems else 0)
