#!/usr/bin/env python3
"""port_junk.py — junk on a node's one port (raft, copies and client sessions share it).

    BUILD=build python3 tests/attack15/port_junk.py [SEED] [CONNECTIONS] [BASEPORT]

A group of three with ledger clients. Meanwhile CONNECTIONS connections to random nodes each
send one of: random bytes; a valid 8-byte preamble (raft's u64 version 1, `KVXFR01\\n`,
`KVCLI01\\n`) followed by random bytes, a huge length, or nothing and a hang-up; a slow client
that never reads its replies. Every node must stay up, the group must keep acknowledging, and
the ledger must hold.
"""
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from group import (Group, Ledger, int_arg, log, seed_arg, start_clients, stop_clients,  # noqa: E402
                   verify)

seed = seed_arg()
conns = int_arg(2, 400)
base = int_arg(3, 22900)
rng = random.Random(seed)
log("port_junk seed %d connections %d" % (seed, conns))
g = Group("junk", base, election_ms=300, extra=",snapshot_entries=64")
g.start()
ledger = Ledger()
clients = start_clients(g, ledger, 2, seed)
problems = []
slow = []
try:
    g.leader(30)
    for k in range(conns):
        nd = rng.choice(g.nodes)
        shape = rng.choice([int(x) for x in os.environ.get("SHAPES", "0,1,2,3,4,5,6,7").split(",")])
        try:
            s = socket.create_connection(nd.port, timeout=2)
            if shape == 0:
                s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
            elif shape == 1:  # raft's handshake: version 1, then junk (server id, address...)
                s.sendall(struct.pack("<Q", 1) + bytes(rng.randrange(256)
                                                       for _ in range(rng.randrange(0, 64))))
            elif shape == 2:  # raft's handshake with a huge address length
                s.sendall(struct.pack("<QQQ", 1, rng.randrange(1, 9), 1 << 40))
            elif shape == 3:
                s.sendall(b"KVXFR01\n" + bytes(rng.randrange(256) for _ in range(rng.randrange(0, 100))))
            elif shape == 4:
                s.sendall(b"KVXFR01\n" + struct.pack("<QQ", rng.randrange(1 << 64), 1 << 62))
            elif shape == 5:
                s.sendall(b"KVCLI01\n" + bytes(rng.randrange(1, 256) for _ in range(rng.randrange(0, 300))) + b"\n")
            elif shape == 6:  # a client that asks a lot and never reads
                s.sendall(b"KVCLI01\n" + b"STATS\n" * 2000)
                slow.append(s)
                continue
            else:
                s.sendall(b"KVCLI01\nPUT junk/" + str(k).encode() + b" " + b"x" * rng.randrange(0, 100000) + b"\n")
            s.close()
        except OSError:
            pass
        if k % 50 == 49:
            dead = [n.id for n in g.nodes if not n.alive()]
            log("  %d connections; acks %d; dead nodes %s" % (k + 1, ledger.acks, dead))
            if dead:
                for n in g.nodes:
                    if not n.alive():
                        problems.append("CRASH node %d: %s" % (n.id, n.logtail(5)))
                break
    acks = ledger.acks
    time.sleep(3)
    if ledger.acks == acks:
        problems.append("no write acknowledged in the 3 s after the junk (slow clients open: %d)"
                        % len(slow))
    stop_clients(clients)
    # the junk PUTs through KVCLI01 are real writes of keys no client owns: leave them out
    for nd in g.nodes:
        pass
    p = verify(g, ledger)
    problems += [x for x in p if "junk/" not in x]
finally:
    for s in slow:
        s.close()
    log("acks %d; problems %d" % (ledger.acks, len(problems)))
    for x in problems:
        log("PROBLEM " + x)
    g.shutdown(keep=bool(problems))
sys.exit(1 if problems else 0)
