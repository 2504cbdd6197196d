#!/usr/bin/env python3
"""powerloss_install.py — a node loses power while it installs a copy of the store.

    BUILD=build python3 tests/attack15/powerloss_install.py [SEED] [ROUNDS] [BASEPORT]   (root)

Node 1's directory is on its own ext4 image (losetup -f: ours, detached at the end); nodes 2
and 3 in /tmp. Clients write with a ledger (values of 2 KiB, snapshot_entries=32, so a wiped
node must fetch a copy). Each round: node 1 is killed, its directory wiped, restarted; at a
random moment 0.05-2 s later (while it fetches, writes `incoming/`, swaps it in, or replays)
it is SIGSTOPped, its image copied as it stands (what reached the device), killed, and
restarted from the copy. It must start (or refuse clearly), never answer from a half-installed
store as if complete, and end identical to the others with every acknowledged write.
"""
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import group as G  # noqa: E402
from group import (Client, Group, Ledger, ext4_image, int_arg, log, seed_arg, sh,  # noqa: E402
                   stop_clients, verify)

seed = seed_arg()
rounds = int_arg(2, 6)
base = int_arg(3, 23100)
rng = random.Random(seed)
log("powerloss_install seed %d rounds %d" % (seed, rounds))


g = Group("pli", base, election_ms=300, extra=",snapshot_entries=32")
img, mnt = os.path.join(g.root, "img1"), os.path.join(g.root, "m1")
dev = [ext4_image(img, "256M")]
os.makedirs(mnt)
sh("mount", "-o", "commit=300", dev[0], mnt)
n1 = g.node(1)
n1.dir = os.path.join(mnt, "node")
orig_cmd = G.Session.cmd
pad = "p" * 2048


def cmd(self, line):  # 2 KiB values (the ledger keeps the short one)
    if line.startswith("PUT "):
        line = line + "." + pad
    r = orig_cmd(self, line)
    if r.endswith("." + pad):
        r = r[:-(len(pad) + 1)]
    return r


G.Session.cmd = cmd
ledger = Ledger()
problems = []
rnd = 0
try:
    g.start()
    g.leader(30)
    for rnd in range(1, rounds + 1):
        clients = [Client(g, ledger, c, seed=seed + rnd, keys=200) for c in range(3)]
        if rnd > 1:
            for c, o in zip(clients, old):
                c.seq = o.seq
        for c in clients:
            c.start()
        time.sleep(2)
        n1.kill()
        shutil.rmtree(n1.dir)
        time.sleep(1.5)
        n1.start()
        d = rng.uniform(0.05, 2.0)
        time.sleep(d)
        n1.stop()
        sh("cp", "--sparse=always", img, img + ".copy")
        n1.kill()
        listing = sorted(os.listdir(n1.dir)) if os.path.isdir(n1.dir) else []
        subprocess.call(["umount", "-l", mnt])
        subprocess.call(["losetup", "-d", dev[0]])
        os.replace(img + ".copy", img)
        dev[0] = sh("losetup", "-f", "--show", img)
        sh("mount", "-o", "commit=300", dev[0], mnt)
        after = sorted(os.listdir(n1.dir)) if os.path.isdir(n1.dir) else []
        log("round %d: power lost %.2f s into node 1's rejoin; its directory had %s, after the "
            "loss %s" % (rnd, d, listing, after))
        n1.start()
        time.sleep(2)
        stop_clients(clients)
        old = clients
        p = verify(g, ledger)
        try:
            st = n1.stats(3)
            log("  node 1: role %s installs %s store_applied %s" % (
                st.get("role"), st.get("installs"), st.get("store_applied_index")))
        except Exception as e:  # noqa: BLE001
            log("  node 1: %s; log: %s" % (e, n1.logtail(4)))
        log("  acks %d unknown %d problems %d" % (ledger.acks, ledger.unknown, len(p)))
        for x in p[:10]:
            log("  PROBLEM " + x)
        problems += ["round %d: %s" % (rnd, x) for x in p]
        if p:
            shutil.copy(n1.logpath, "/tmp/a15-logs/powerloss_install-%d.log" % seed)
            break
finally:
    log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
    g.shutdown(keep=True)
    subprocess.call(["umount", "-l", mnt])
    subprocess.call(["losetup", "-d", dev[0]])
    subprocess.call(["rm", "-rf", g.root])
sys.exit(1 if problems else 0)
