"""group.py — a three-node kvfs group as processes, clients over node ports, a ledger of acks.

Used by the attack scripts in this directory (issue 15). Nothing here decides by timing: sleeps
only shape *when* a fault lands; every verdict is made from the ledger against what the nodes
hold once the group is quiet.

    BUILD=build python3 tests/attack15/SCRIPT.py [seed]
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = os.environ.get("BUILD", "build")
KV_CLI = os.path.abspath(os.path.join(BUILD, "kv_cli"))


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def sh(*a, check=True):
    """Runs a setup command (ip, losetup, mount, ...): its stdout; a failure raises unless
    check is False."""
    return subprocess.run(a, check=check, capture_output=True, text=True).stdout.strip()


def int_arg(i, default):
    """Command-line argument i as a number, or default when it is not given."""
    return int(sys.argv[i]) if len(sys.argv) > i else default


def seed_arg(i=1):
    """The seed: argument i, or one from the clock (each script logs it, so a run can be
    repeated with it)."""
    return int_arg(i, int(time.time()) % 100000)


def ext4_image(img, size):
    """A fresh ext4 image file of size (truncate's words: 64M) on a loop device of its own
    (losetup -f: ours, for the caller to detach): the device."""
    sh("truncate", "-s", size, img)
    sh("mkfs.ext4", "-q", img)
    return sh("losetup", "-f", "--show", img)


def fresh_dir(path):
    """path, emptied (what an earlier run left there goes) and made."""
    subprocess.call(["rm", "-rf", path])
    os.makedirs(path)


def loopback_cluster(root, base, n=3):
    """root/cluster naming nodes 1..n at 127.0.0.1:base+i (the mount scripts' kvfs daemons):
    its path."""
    cluster = os.path.join(root, "cluster")
    with open(cluster, "w") as f:
        for i in range(1, n + 1):
            f.write("%d 127.0.0.1:%d\n" % (i, base + i))
    return cluster


def read_kvfs(mnt, timeout=5):
    """The name: value lines of a kvfs mount's .kvfs as a dict ({} when it cannot be read), or
    None when reading it blocked for timeout seconds (the reading thread is left behind)."""
    out = {}

    def rd():
        try:
            with open(os.path.join(mnt, ".kvfs")) as f:
                out.update(l.rstrip("\n").split(": ", 1) for l in f if ": " in l)
        except OSError:
            pass
    t = threading.Thread(target=rd, daemon=True)
    t.start()
    t.join(timeout)
    return None if t.is_alive() else out


def netns_bridge(net, br, bridge_addr=False):
    """Three network namespaces a15-NET-n1..n3, each with eth0 = 10.NET.0.i/24 on a veth whose
    other end is on bridge br0 in namespace br (the bridge itself 10.NET.0.100 when
    bridge_addr). A node's link is cut with `ip -n BR link set a15bNET-i down`. Returns every
    namespace made, for netns_delete."""
    nss = [br] + ["a15-%d-n%d" % (net, i) for i in (1, 2, 3)]
    for ns in nss:
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", br, "link", "add", "br0", "type", "bridge")
    if bridge_addr:
        sh("ip", "-n", br, "addr", "add", "10.%d.0.100/24" % net, "dev", "br0")
    sh("ip", "-n", br, "link", "set", "br0", "up")
    for i in (1, 2, 3):
        ns = "a15-%d-n%d" % (net, i)
        sh("ip", "link", "add", "a15v%d-%d" % (net, i), "type", "veth", "peer", "name",
           "a15b%d-%d" % (net, i))
        sh("ip", "link", "set", "a15v%d-%d" % (net, i), "netns", ns)
        sh("ip", "link", "set", "a15b%d-%d" % (net, i), "netns", br)
        sh("ip", "-n", ns, "link", "set", "a15v%d-%d" % (net, i), "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", "10.%d.0.%d/24" % (net, i), "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", br, "link", "set", "a15b%d-%d" % (net, i), "master", "br0")
        sh("ip", "-n", br, "link", "set", "a15b%d-%d" % (net, i), "up")
    return nss


def netns_delete(nss):
    for ns in nss:
        subprocess.call(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


class Session:
    """A client session with one node (KVCLI01 protocol): one line in, one line out."""

    def __init__(self, port, timeout=15.0, host="127.0.0.1"):
        if isinstance(port, tuple):
            host, port = port
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.sendall(b"KVCLI01\n")
        self.f = self.s.makefile("rb")

    def cmd(self, line):
        self.s.sendall(line.encode() + b"\n")
        r = self.f.readline()
        if not r:
            raise ConnectionError("session closed")
        return r.decode(errors="replace").rstrip("\n")

    def lines(self, line):
        """A command whose reply is a count line then that many lines (LIST, STATS)."""
        n = self.cmd(line)
        if n.startswith("ERR"):
            raise RuntimeError(n)
        return [self.f.readline().decode(errors="replace").rstrip("\n") for _ in range(int(n))]

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


class Node:
    def __init__(self, g, nid, port, host="127.0.0.1"):
        self.g, self.id = g, nid
        self.port = (host, port)  # what Session takes
        self.wrap = None  # e.g. ["ip", "netns", "exec", NS]
        self.dir = os.path.join(g.root, "node%d" % nid)
        self.logpath = os.path.join(g.root, "node%d.log" % nid)
        self.p = None
        self.stopped = False

    def start(self, wrap=None, extra=""):
        opts = "cluster=%s,node=%d,election_ms=%d,segment_bytes=1M%s%s" % (
            self.g.cluster, self.id, self.g.election_ms, self.g.extra, extra)
        argv = [KV_CLI, "--serve", "-o", opts, self.dir]
        wrap = wrap or self.wrap
        if wrap:
            argv = wrap + argv
        lf = open(self.logpath, "ab")
        lf.write(b"==== start %s\n" % " ".join(argv).encode())
        lf.flush()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=lf)
        self.stopped = False

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kill(self):
        if self.p and self.p.poll() is None:
            if self.stopped:
                os.kill(self.p.pid, signal.SIGCONT)
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self.stopped = False

    def stop(self):
        os.kill(self.p.pid, signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        os.kill(self.p.pid, signal.SIGCONT)
        self.stopped = False

    def term(self, timeout=30):
        if self.p and self.p.poll() is None:
            if self.stopped:
                self.cont()
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                log("node %d did not stop on SIGTERM in %ds: killed" % (self.id, timeout))
                self.kill()

    def q(self, line, timeout=5.0):
        s = Session(self.port, timeout)
        try:
            return s.cmd(line)
        finally:
            s.close()

    def stats(self, timeout=5.0):
        s = Session(self.port, timeout)
        try:
            d = {}
            for l in s.lines("STATS"):
                k, _, v = l.partition(": ")
                d[k] = v
            return d
        finally:
            s.close()

    def dump(self):
        """Every key and value this node's store holds (LIST, then GET each)."""
        s = Session(self.port, 30)
        try:
            keys = s.lines('LIST "" 1000000')
            return {k: s.cmd("GET " + k) for k in keys}
        finally:
            s.close()

    def logtail(self, n=15):
        try:
            with open(self.logpath, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""


class Group:
    def __init__(self, name, base_port, election_ms=300, extra="", n=3, root=None, hosts=None):
        hosts = hosts or ["127.0.0.1"] * n
        self.root = root or tempfile.mkdtemp(prefix="a15-%s-" % name, dir="/tmp")
        self.cluster = os.path.join(self.root, "cluster")
        self.election_ms, self.extra = election_ms, extra
        with open(self.cluster, "w") as f:
            for i in range(1, n + 1):
                f.write("%d %s:%d\n" % (i, hosts[i - 1], base_port + i))
        self.nodes = [Node(self, i, base_port + i, hosts[i - 1]) for i in range(1, n + 1)]
        log("group %s in %s, ports %d..%d" % (name, self.root, base_port + 1, base_port + n))

    def start(self):
        for nd in self.nodes:
            nd.start()

    def node(self, nid):
        return self.nodes[nid - 1]

    def leader(self, timeout=30.0, exclude=()):
        """The node that says it is the writable leader (STATS role: leader), or None."""
        end = time.time() + timeout
        while time.time() < end:
            for nd in self.nodes:
                if nd.id in exclude or not nd.alive() or nd.stopped:
                    continue
                try:
                    st = nd.stats(2)
                    if st.get("role") == "leader" and st.get("writable") == "yes":
                        return nd
                except (OSError, ConnectionError, RuntimeError, ValueError):
                    pass
            time.sleep(0.1)
        return None

    def quiesce(self, timeout=60.0):
        """Wait for a leader whose FLUSH answers OK, then for every live node to apply up to the
        leader's commit index. Returns the leader."""
        end = time.time() + timeout
        while time.time() < end:
            ld = self.leader(max(1.0, end - time.time()))
            if not ld:
                break
            try:
                if ld.q("FLUSH", 20) != "OK":
                    continue
                ci = int(ld.stats()["commit_index"])
            except (OSError, ConnectionError, KeyError, ValueError):
                continue
            self.lagging = []
            lag_end = min(end, time.time() + 30)
            while time.time() < lag_end:
                self.lagging = []
                for nd in self.nodes:
                    if not nd.alive() or nd.stopped:
                        continue
                    try:
                        if int(nd.stats(2).get("store_applied_index", "0")) < ci:
                            self.lagging.append(nd.id)
                    except (OSError, ConnectionError, ValueError):
                        self.lagging.append(nd.id)
                if not self.lagging:
                    return ld
                time.sleep(0.2)
            # a node that does not catch up in 30 s: say so, and judge the others
            return ld
        return None

    def shutdown(self, keep=False):
        for nd in self.nodes:
            nd.term()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


class Ledger:
    """Every operation of every client and its answer. Client c writes keys c<c>/k<j>; the value
    of a PUT is 'c:seq'. One client's operations are sequential (it waits for each answer)."""

    def __init__(self):
        self.mu = threading.Lock()
        self.ops = {}  # key -> list of (seq, kind 'PUT'|'DEL', value, outcome 'ok'|'no'|'unknown')
        self.acks = 0
        self.unknown = 0

    def record(self, key, seq, kind, value, outcome):
        with self.mu:
            self.ops.setdefault(key, []).append((seq, kind, value, outcome))
            if outcome == "ok":
                self.acks += 1
            elif outcome == "unknown":
                self.unknown += 1

    def check(self, state):
        """Compare one node's state (dict) with the ledger. Returns a list of problems: 'LOST'
        (an acknowledged write not there and not overwritten by a later one that may have
        happened), 'PHANTOM' (a value that no write that may have happened gave)."""
        bad = []
        with self.mu:
            for key, ops in self.ops.items():
                got = state.get(key)
                # the latest acknowledged op, and everything after it that may have happened
                last_ok = max((i for i, o in enumerate(ops) if o[3] == "ok"), default=-1)
                allowed = []
                if last_ok >= 0:
                    o = ops[last_ok]
                    allowed.append(None if o[1] == "DEL" else o[2])
                else:
                    allowed.append(None)  # never acknowledged: absent is fine
                    for o in ops[:]:
                        if o[3] == "unknown":
                            allowed.append(None if o[1] == "DEL" else o[2])
                for o in ops[last_ok + 1:]:
                    if o[3] == "unknown":
                        allowed.append(None if o[1] == "DEL" else o[2])
                if got not in allowed:
                    kind = "LOST" if last_ok >= 0 else "PHANTOM"
                    bad.append("%s %s: holds %r, allowed %r (ops %r)" % (
                        kind, key, got, allowed, ops[-4:]))
            for key in state:
                if key not in self.ops:
                    bad.append("PHANTOM %s: no client wrote it (holds %r)" % (key, state[key]))
        return bad


def classify(reply):
    if reply == "OK" or reply == "(nil)":
        return "ok"
    if reply.startswith("ERR not leader") or reply.startswith("ERR too large") \
            or reply.startswith("ERR keys under"):
        return "no"
    return "unknown"


class Client(threading.Thread):
    """Writes through whichever node is leader; every answer goes into the ledger."""

    def __init__(self, g, ledger, c, keys=20, del_every=7, flush_every=10, seed=0):
        super().__init__(daemon=True)
        self.g, self.ledger, self.c = g, ledger, c
        self.keys, self.del_every, self.flush_every = keys, del_every, flush_every
        self.rng = random.Random(seed * 1000 + c)
        self.seq = 0
        self.go = True
        self.flush_ok = 0
        self.errors = {}

    def run(self):
        sess, target = None, None
        while self.go:
            if sess is None:
                target = self.rng.choice([n for n in self.g.nodes])
                try:
                    sess = Session(target.port, 10)
                except OSError:
                    sess = None
                    time.sleep(0.05)
                    continue
            self.seq += 1
            key = "c%d/k%d" % (self.c, self.rng.randrange(self.keys))
            if self.seq % self.flush_every == 0:
                line, kind, val = "FLUSH", "FLUSH", None
            elif self.seq % self.del_every == 0:
                line, kind, val = "DEL " + key, "DEL", None
            else:
                val = "%d:%d" % (self.c, self.seq)
                line, kind = "PUT %s %s" % (key, val), "PUT"
            try:
                r = sess.cmd(line)
            except (OSError, ConnectionError):
                r = "broken"
                sess.close()
                sess = None
            out = classify(r)
            if kind != "FLUSH":
                self.ledger.record(key, self.seq, kind, val, out)
            elif out == "ok":
                self.flush_ok += 1
            if out != "ok":
                k = r[:40]
                self.errors[k] = self.errors.get(k, 0) + 1
            if r.startswith("ERR not leader"):
                # go where it says
                sess.close()
                sess = None
                parts = r.split("leader is ")
                if len(parts) == 2:
                    try:
                        nid = int(parts[1].split()[0])
                        sess = Session(self.g.node(nid).port, 10)
                    except (OSError, ValueError, IndexError):
                        sess = None
                if sess is None:
                    time.sleep(0.05)
            elif out == "unknown" and sess is not None:
                sess.close()
                sess = None
        if sess:
            sess.close()


def start_clients(g, ledger, n, seed, **kw):
    """n ledger clients (Client's keyword options in kw), started."""
    clients = [Client(g, ledger, c, seed=seed, **kw) for c in range(n)]
    for c in clients:
        c.start()
    return clients


def stop_clients(clients, timeout=30):
    """Tells every client to stop after its current operation, then waits for each."""
    for c in clients:
        c.go = False
    for c in clients:
        c.join(timeout)


def verify(g, ledger, require_all=True):
    """Quiesce, then check every live node against the ledger and against each other."""
    ld = g.quiesce(90)
    if not ld:
        log("VERIFY: no leader that answers FLUSH within 90 s")
        for nd in g.nodes:
            log("node %d alive=%s log:\n%s" % (nd.id, nd.alive(), nd.logtail()))
        return ["NO LEADER"]
    problems = []
    states = {}
    for nid in getattr(g, "lagging", []):
        problems.append("LAGGING node %d: not caught up with the leader's commit index 30 s "
                        "after FLUSH: %s" % (nid, g.node(nid).logtail(3)))
    for nd in g.nodes:
        if nd.id in getattr(g, "lagging", []):
            continue
        if not nd.alive():
            if require_all:
                problems.append("node %d is not running: %s" % (nd.id, nd.logtail(5)))
            continue
        try:
            states[nd.id] = nd.dump()
        except (OSError, ConnectionError, RuntimeError) as e:
            problems.append("node %d: dump failed: %s" % (nd.id, e))
    for nid, st in states.items():
        for b in ledger.check(st):
            problems.append("node %d: %s" % (nid, b))
    ids = sorted(states)
    for i in ids[1:]:
        if states[i] != states[ids[0]]:
            diff = [k for k in set(states[i]) | set(states[ids[0]])
                    if states[i].get(k) != states[ids[0]].get(k)]
            problems.append("DIVERGED node %d vs node %d on %d keys, e.g. %r" % (
                i, ids[0], len(diff), [(k, states[ids[0]].get(k), states[i].get(k))
                                      for k in diff[:3]]))
    return problems
