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

NET = int(sys.argv[3]) if len(sys.argv) > 3 else 151
BR = "a15-%d-br" % NET


def sh(*a, check=True):
    return subprocess.run(a, check=check, capture_output=True, text=True).stdout.strip()


if os.environ.get("A15_IN_NETNS") != BR:
    # set up the namespaces, then run this script again inside the bridge's
    nss = [BR] + ["a15-%d-n%d" % (NET, i) for i in (1, 2, 3)]
    try:
        for ns in nss:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", BR, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", BR, "addr", "add", "10.%d.0.100/24" % NET, "dev", "br0")
        sh("ip", "-n", BR, "link", "set", "br0", "up")
        for i in (1, 2, 3):
            ns = "a15-%d-n%d" % (NET, i)
            sh("ip", "link", "add", "a15v%d-%d" % (NET, i), "type", "veth", "peer", "name",
               "a15b%d-%d" % (NET, i))
            sh("ip", "link", "set", "a15v%d-%d" % (NET, i), "netns", ns)
            sh("ip", "link", "set", "a15b%d-%d" % (NET, i), "netns", BR)
            sh("ip", "-n", ns, "link", "set", "a15v%d-%d" % (NET, i), "name", "eth0")
            sh("ip", "-n", ns, "addr", "add", "10.%d.0.%d/24" % (NET, i), "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", BR, "link", "set", "a15b%d-%d" % (NET, i), "master", "br0")
            sh("ip", "-n", BR, "link", "set", "a15b%d-%d" % (NET, i), "up")
        env = dict(os.environ, A15_IN_NETNS=BR)
        rc = subprocess.call(["ip", "netns", "exec", BR, sys.executable] + sys.argv, env=env)
    finally:
        for ns in nss:
            subprocess.call(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    sys.exit(rc)

sys.path.insert(0, os.path.dirname(__file__))
from group import Client, Group, Ledger, Session, log, verify  # noqa: E402

seed = int(sys.argv[1]) if len(sys.argv) > 1 else int(time.time()) % 100000
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 6
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
        clients = [Client(g, ledger, c, seed=seed + rnd) for c in range(3)]
        for c in clients:
            c.start()
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
        for c in clients:
            c.go = False
        for c in clients:
            c.join(30)
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
