#!/usr/bin/env python3
"""kill_rounds.py — kill -9, SIGSTOP and wipes at crafted moments against a ledger of acks.

    BUILD=build python3 tests/attack15/kill_rounds.py [SEED] [ROUNDS] [BASEPORT]

Small snapshot_entries so that a restarted or wiped node is sent a copy of the store (install-
snapshot) and raft snapshots (the store's kv_flush) happen all the time. Each round picks one of:
  leader      SIGKILL the leader during writes
  follower    SIGKILL a follower during writes
  stop        SIGSTOP the leader for 3 election timeouts, then SIGCONT
  wipe        kill a follower, wipe its directory, restart it (it needs a copy), and kill the
              leader while the copy is being sent
  install     kill a follower, wait until the group snapshotted past it, restart, kill the
              *follower* again while it is installing the copy, restart
  flushkill   kill the leader right after a FLUSH was sent
  all         SIGKILL all three at once, restart all
  term        SIGTERM to the leader during writes (a clean stop: leadership handed over)
  loop        one node (any) killed 10 times 0.02-0.6 s after each start (KINDS=loop to pick)
and after each round restarts whoever is down, quiesces and checks every node against the ledger.
Prints the seed; 'acked lost: N' at the end; exit 1 on any problem.
"""
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Client, Group, Ledger, int_arg, log, seed_arg, start_clients,  # noqa: E402
                   stop_clients, verify)

seed = seed_arg()
rounds = int_arg(2, 12)
base = int_arg(3, 21100)
kinds = os.environ.get("KINDS", "leader,follower,stop,wipe,install,flushkill,all").split(",")
rng = random.Random(seed)
log("kill_rounds seed %d rounds %d kinds %s (rerun: kill_rounds.py %d %d)" % (
    seed, rounds, kinds, seed, rounds))

g = Group("kill", base, election_ms=300,
          extra=",snapshot_entries=32" + os.environ.get("EXTRA", ""))  # e.g. ,checkpoint_bytes=64k
g.start()
ledger = Ledger()
clients = start_clients(g, ledger, 4, seed)
problems = []


def restart_down():
    for nd in g.nodes:
        if not nd.alive():
            nd.start()


try:
    for rnd in range(1, rounds + 1):
        ld = g.leader(30)
        if not ld:
            problems.append("round %d: no leader" % rnd)
            break
        kind = rng.choice(kinds)
        fol = rng.choice([n for n in g.nodes if n is not ld])
        time.sleep(rng.uniform(0.2, 1.5))
        log("round %d: %s (leader %d, follower %d), acks %d" % (rnd, kind, ld.id, fol.id,
                                                                  ledger.acks))
        if kind == "leader":
            ld.kill()
            time.sleep(rng.uniform(0.5, 2))
        elif kind == "follower":
            fol.kill()
            time.sleep(rng.uniform(0.5, 2))
        elif kind == "stop":
            ld.stop()
            time.sleep(3 * g.election_ms / 1000 + rng.uniform(0, 1))
            ld.cont()
        elif kind == "wipe":
            fol.kill()
            shutil.rmtree(fol.dir)
            time.sleep(1.5)  # enough entries for a raft snapshot past the start
            fol.start()
            # kill the leader while the copy is being fetched/sent
            time.sleep(rng.uniform(0.05, 1.0))
            cur = g.leader(5)
            if cur and cur is not fol:
                log("  killing leader %d during the wiped node's install" % cur.id)
                cur.kill()
            time.sleep(1)
        elif kind == "install":
            fol.kill()
            time.sleep(2)
            fol.start()
            time.sleep(rng.uniform(0.05, 0.8))
            log("  killing follower %d while it installs" % fol.id)
            fol.kill()
            time.sleep(0.5)
        elif kind == "flushkill":
            from group import Session
            s = Session(ld.port, 5)
            s.s.sendall(b"FLUSH\n")
            time.sleep(rng.uniform(0, 0.02))
            ld.kill()
            s.close()
        elif kind == "loop":
            # a restart loop: the same node killed again and again while it starts (raft's
            # load, the store's recovery, the replay, a copy being fetched)
            n = rng.choice(g.nodes)
            for _ in range(10):
                n.kill()
                n.start()
                time.sleep(rng.uniform(0.02, 0.6))
            n.kill()
        elif kind == "term":
            # a clean stop of the leader during writes (it hands leadership over first)
            ld.term(30)
            time.sleep(rng.uniform(0.2, 1))
        elif kind == "all":
            for nd in g.nodes:
                nd.kill()
            time.sleep(0.3)
        restart_down()
        # verify in the middle of traffic: pause clients
        stop_clients(clients)
        p = verify(g, ledger)
        if p:
            log("round %d: %d problems" % (rnd, len(p)))
            for x in p[:20]:
                log("  " + x)
            problems += ["round %d (%s): %s" % (rnd, kind, x) for x in p]
            break
        st = {nd.id: nd.stats() for nd in g.nodes}
        log("  ok: acks %d unknown %d; installs %s" % (
            ledger.acks, ledger.unknown, [st[i].get("installs") for i in st]))
        old = clients
        clients = [Client(g, ledger, c.c, seed=seed + rnd) for c in old]
        for c, o in zip(clients, old):
            c.seq = o.seq
            c.start()
finally:
    stop_clients(clients)
    lost = sum(1 for x in problems if "LOST" in x)
    log("replication rounds: %d" % rnd)
    log("acked writes: %d, unknown: %d" % (ledger.acks, ledger.unknown))
    log("acked lost: %d" % lost)
    for x in problems:
        log("PROBLEM " + x)
    g.shutdown(keep=bool(problems))
    if problems:
        log("kept %s" % g.root)
sys.exit(1 if problems else 0)
