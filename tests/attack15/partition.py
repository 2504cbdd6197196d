#!/usr/bin/env python3
"""partition.py — real network partitions between the nodes (ip netns + veth + a bridge).

    BUILD=build python3 tests/attack15/partition.py [SEED] [ROUNDS] [NET]    (root)

Each node runs in its own network namespace (a15-NET-n1..3, address 10.NET.0.I) with a veth
into a bridge in namespace a15-NET-br, where this script and its clients run (it re-executes
itself there). Nothing leaves the machine; the namespaces are removed at the end.
Each round cuts one node off (its veth in the bridge goes down: both directions), with these
shapes:
  leader     the leader is cut off for 3 election timeouts + random, then healed. Meanwhile a
             reader *inside the old leader's namespace* polls its STATS and GET of a key the
             new leader changes: how long does the old leader say `role: leader`/`writable:
             yes` and serve the old value after the group acknowledged the new one?
  follower   a follower is cut off and healed.
  flap       the leader's link flaps (down/up every 100-400 ms) ten times.
After each round the group is quiesced and every node checked against the ledger.
"""
import os
import random
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Group, Ledger, int_arg, log, netns_bridge, netns_delete,  # noqa: E402
                   seed_arg, sh, start_clients, stop_clients, verify)

NET = int_arg(3, 151)
BR = "a15-%d-br" % NET

if os.environ.get("A15_IN_NETNS") != BR:
    # set up the namespaces, then run this script again inside the bridge's
    nss = [BR] + ["a15-%d-n%d" % (NET, i) for i in (1, 2, 3)]
    rc = 1
    try:
        netns_bridge(NET, BR, bridge_addr=True)
        env = dict(os.environ, A15_IN_NETNS=BR)
        rc = subprocess.call(["ip", "netns", "exec", BR, sys.executable] + sys.argv, env=env)
    finally:
        netns_delete(nss)
    sys.exit(rc)

seed = seed_arg()
rounds = int_arg(2, 6)
rng = random.Random(seed)
log("partition seed %d rounds %d net %d (rerun: partition.py %d %d %d)" % (
    seed, rounds, NET, seed, rounds, NET))
EMS = 300
g = Group("part", 20000 + NET * 10, election_ms=EMS, extra=",snapshot_entries=64",
          hosts=["10.%d.0.%d" % (NET, i) for i in (1, 2, 3)])
for nd in g.nodes:
    nd.wrap = ["ip", "netns", "exec", "a15-%d-n%d" % (NET, nd.id)]
g.start()
ledger = Ledger()
problems = []
findings = []


def link(nid, up):
    sh("ip", "link", "set", "a15b%d-%d" % (NET, nid), "up" if up else "down")


def reader(old, key, out, stop):
    """From inside the old leader's namespace: its role and its value of key, as a timeline."""
    ns = "a15-%d-n%d" % (NET, old.id)
    host, port = old.port
    kv_cli = os.path.abspath(os.path.join(os.environ.get("BUILD", "build"), "kv_cli"))
    p = subprocess.Popen(["ip", "netns", "exec", ns, kv_cli, "--connect", "%s:%d" % (host, port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    try:
        while not stop.is_set():
            p.stdin.write("GET %s\nSTATS\n" % key)
            p.stdin.flush()
            val = p.stdout.readline().strip()
            n = int(p.stdout.readline())
            st = dict(l.strip().split(": ", 1) for l in (p.stdout.readline() for _ in range(n))
                      if ": " in l)
            out.append((time.time(), st.get("role"), st.get("writable"), val))
            time.sleep(0.02)
    except (OSError, ValueError):
        pass
    finally:
        p.kill()


rnd = 0
try:
    for rnd in range(1, rounds + 1):
        clients = start_clients(g, ledger, 3, seed + rnd)
        ld = g.leader(30)
        kind = ["leader", "follower", "flap"][(rnd - 1) % 3]
        time.sleep(rng.uniform(0.5, 1.5))
        log("round %d: %s (leader %d), acks %d" % (rnd, kind, ld.id, ledger.acks))
        if kind == "leader":
            key = "probe%d" % rnd
            assert ld.q("PUT %s old" % key) == "OK"
            tl, stop = [], threading.Event()
            rt = threading.Thread(target=reader, args=(ld, key, tl, stop))
            rt.start()
            time.sleep(0.2)
            t_cut = time.time()
            link(ld.id, False)
            new = g.leader(10, exclude=(ld.id,))
            t_new_ack = None
            if new:
                r = new.q("PUT %s new" % key, 15)
                if r == "OK":
                    t_new_ack = time.time()
                    ledger.record(key, 1, "PUT", "new", "ok")
            time.sleep(3 * EMS / 1000 + rng.uniform(0, 1))
            stop.set()
            rt.join()
            link(ld.id, True)
            lead_until = max((t for t, role, w, v in tl if role == "leader"), default=None)
            stale = [(t, v) for t, role, w, v in tl if t_new_ack and t > t_new_ack and v == "old"]
            both = [t for t, role, w, v in tl if t_new_ack and t > t_new_ack and role == "leader"]
            log("  old leader %d says role leader until %s ms after the cut; new leader %s "
                "acknowledged the new value %s ms after the cut; old leader served 'old' after "
                "that ack: %d reads; claimed leadership after it: %d reads" % (
                    ld.id, None if lead_until is None else int((lead_until - t_cut) * 1000),
                    getattr(new, "id", None),
                    None if t_new_ack is None else int((t_new_ack - t_cut) * 1000),
                    len(stale), len(both)))
            if lead_until is not None and lead_until - t_cut > 2.5 * EMS / 1000:
                findings.append("round %d: the cut-off leader said role leader %d ms after the "
                                "cut (election_ms %d)" % (rnd, (lead_until - t_cut) * 1000, EMS))
        elif kind == "follower":
            f = rng.choice([n for n in g.nodes if n is not ld])
            link(f.id, False)
            time.sleep(rng.uniform(1, 3))
            link(f.id, True)
        else:
            for _ in range(10):
                link(ld.id, False)
                time.sleep(rng.uniform(0.1, 0.4))
                link(ld.id, True)
                time.sleep(rng.uniform(0.1, 0.4))
        time.sleep(1)
        stop_clients(clients)
        p = verify(g, ledger)
        log("  acks %d unknown %d problems %d" % (ledger.acks, ledger.unknown, len(p)))
        for x in p[:10]:
            log("  PROBLEM " + x)
        problems += ["round %d (%s): %s" % (rnd, kind, x) for x in p]
        if p:
            break
finally:
    for i in (1, 2, 3):
        link(i, True)
    log("partition rounds: %d, acked writes %d, unknown %d" % (rnd, ledger.acks, ledger.unknown))
    log("acked lost: %d" % sum(1 for x in problems if "LOST" in x))
    for x in findings:
        log("NOTE " + x)
    for x in problems:
        log("PROBLEM " + x)
    g.shutdown(keep=bool(problems))
sys.exit(1 if problems else 0)
