#!/usr/bin/env python3
"""powerloss.py — every node loses power at once: its disk is what reached the device.

    BUILD=build python3 tests/attack15/powerloss.py [SEED] [ROUNDS] [BASEPORT]    (root)

Each node's directory is on its own ext4 image, loop-mounted (losetup -f, our own devices, detached
at the end). Clients write through the leader with a ledger for a few seconds; then all three
nodes are SIGSTOPped (an answer a client got was sent before that), each image file is copied as
it stands — what the loop device received, without what is still dirty in ext4's page cache (the
store runs sync=none: raft's O_DSYNC log is the durable copy) —, the nodes are SIGKILLed, the
originals unmounted, and the group restarts from the copies (ext4 replays its journal at mount).
Every acknowledged write must be on every node once the group is quiet. Images are mounted with
commit=300 so that ext4 itself writes back as little as possible before the copy.
"""
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Client, Group, Ledger, int_arg, log, seed_arg, sh, stop_clients,  # noqa: E402
                   verify)

seed = seed_arg()
rounds = int_arg(2, 4)
base = int_arg(3, 21700)
rng = random.Random(seed)
log("powerloss seed %d rounds %d (rerun: powerloss.py %d %d)" % (seed, rounds, seed, rounds))

work = "/tmp/a15-pl-%d" % base
subprocess.call(["rm", "-rf", work])
os.makedirs(work)
loops = {}  # mountpoint -> loop device (only ours)


def attach(img, mnt):
    dev = sh("losetup", "-f", "--show", img)
    loops[mnt] = dev
    os.makedirs(mnt, exist_ok=True)
    sh("mount", "-o", "commit=300", dev, mnt)


def detach(mnt):
    subprocess.call(["umount", "-l", mnt])
    dev = loops.pop(mnt, None)
    if dev:
        subprocess.call(["losetup", "-d", dev])


g = Group("pl", base, election_ms=300, extra=",snapshot_entries=%d" % rng.choice([32, 256, 4096]),
          root=work)
for nd in g.nodes:
    img = os.path.join(work, "img%d" % nd.id)
    sh("truncate", "-s", "96M", img)
    sh("mkfs.ext4", "-q", img)
    attach(img, os.path.join(work, "m%d" % nd.id))
    nd.dir = os.path.join(work, "m%d" % nd.id, "node")
ledger = Ledger()
problems = []
rnd = 0
try:
    g.start()
    for rnd in range(1, rounds + 1):
        clients = [Client(g, ledger, c, seed=seed + rnd) for c in range(4)]
        if rnd > 1:
            for c, o in zip(clients, old):
                c.seq = o.seq
        for c in clients:
            c.start()
        time.sleep(rng.uniform(2, 6))
        for nd in g.nodes:
            nd.stop()
        acks = ledger.acks
        for nd in g.nodes:
            sh("cp", "--sparse=always", os.path.join(work, "img%d" % nd.id),
               os.path.join(work, "img%d.copy" % nd.id))
        for nd in g.nodes:
            nd.kill()
        stop_clients(clients)
        old = clients
        log("round %d: power lost on all three at %d acks" % (rnd, acks))
        for nd in g.nodes:
            mnt = os.path.join(work, "m%d" % nd.id)
            detach(mnt)
            os.replace(os.path.join(work, "img%d.copy" % nd.id), os.path.join(work, "img%d" % nd.id))
            attach(os.path.join(work, "img%d" % nd.id), mnt)
        g.start()
        p = verify(g, ledger)
        st = {}
        for nd in g.nodes:
            try:
                s = nd.stats()
                st[nd.id] = (s.get("store_applied_index"), s.get("replayed_skipped"),
                             s.get("snapshot_index"))
            except Exception:  # noqa: BLE001
                st[nd.id] = "?"
        log("  after restart: (store_applied, replayed_skipped, snapshot_index) %s; problems %d"
            % (st, len(p)))
        for x in p[:15]:
            log("  PROBLEM " + x)
        problems += ["round %d: %s" % (rnd, x) for x in p]
        if p:
            break
finally:
    log("powerloss rounds: %d, acked writes %d, unknown %d" % (rnd, ledger.acks, ledger.unknown))
    log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
    for nd in g.nodes:
        nd.term()
    if problems:
        for nd in g.nodes:
            subprocess.call(["cp", nd.logpath, "/tmp/a15-logs/powerloss-%d-node%d.log" % (seed, nd.id)])
    for mnt in list(loops):
        detach(mnt)
    subprocess.call(["rm", "-rf", work])
sys.exit(1 if problems else 0)
