#!/usr/bin/env python3
"""A ledger of acknowledged writes through a mounted store, checked after kill -9 of the daemon
(DURABILITY 2.1, 3.1): kv_cli sessions through the control socket (PUT/DEL, FLUSH every few
ops), writers through the mount (write + fsync, atomic save: write tmp + fsync + rename + fsync
of the directory), snapshots from the control file and from kv_cli SNAP, small segments and
checkpoints so that the cleaner and segment deletion run all the time. After SECONDS the daemon
is killed with SIGKILL mid-flight; then the store is opened with kv_cli and every key must hold
its last acknowledged value or a value written after it (never an older one, never absent if the
last acknowledged op was a write, never present if it was a delete with nothing written after).

With POWERCUT=1 the store lives on a loop-mounted ext4 image, and each round ends in a power cut
instead: the daemon is stopped (SIGSTOP: it acknowledges nothing after the cut), the power cut
(tests/powercut: only what the loop device flushed is kept, atomically; PC_KEEP=P keeps each
unflushed 4 KiB sector with probability P), the daemon killed, and the cut image is mounted and checked the same way; the next round goes on
from it.

usage: conc_ledger.py KVFS KV_CLI SECONDS [ROUNDS] [SEED]   (root: FUSE, loop devices)"""
import os, random, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KVFS, KV, SECS = sys.argv[1], sys.argv[2], float(sys.argv[3])
ROUNDS = int(sys.argv[4]) if len(sys.argv) > 4 else 1
SEED = int(sys.argv[5]) if len(sys.argv) > 5 else 1
OPTS = "segment_bytes=256k,checkpoint_bytes=512k,commit_ms=50"
NS, NW, NKEYS = int(os.environ.get("NS", "6")), 3, 40  # NS kv_cli sessions, NW mount writers
POWERCUT = os.environ.get("POWERCUT") == "1"
LOOP = [None]
DISK = [None]
print(f"seed {SEED}", flush=True)


class Ledger:
    """per key: the last acknowledged state (value or None for deleted) and every value written
    since (acknowledged or not)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}
        self.since = {}

    def issued(self, k, v):
        with self.lock:
            self.since.setdefault(k, []).append(v)

    def ack(self, k, v):
        with self.lock:
            self.acked[k] = v
            s = self.since.get(k, [])
            if v in s:
                self.since[k] = s[s.index(v) + 1:]

    def allowed(self, k):
        with self.lock:
            return ({self.acked[k]} if k in self.acked else {None, "(unknown)"}) | set(self.since.get(k, []))


def session(sid, led, stop, rnd, stats):
    p = subprocess.Popen([KV, "--raw", DIR], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pending = []
    gen = 0
    try:
        while not stop.is_set():
            gen += 1
            k = f"s{sid}k{rnd.randrange(NKEYS)}"
            if rnd.random() < 0.8:
                v = f"{k}.{gen}." + "x" * rnd.choice([1, 50, 3000, 20000])
                led.issued(k, v)
                p.stdin.write(f"PUT {k} {v}\n")
            else:
                v = None
                led.issued(k, None)
                p.stdin.write(f"DEL {k}\n")
            p.stdin.flush()
            r = p.stdout.readline()
            if not r:
                return
            pending.append((k, v))
            if len(pending) >= 6:
                p.stdin.write("FLUSH\n")
                p.stdin.flush()
                r = p.stdout.readline()
                if r != "OK\n":
                    return
                for k2, v2 in pending:
                    led.ack(k2, v2)
                stats["flushes"] += 1
                pending = []
    except (BrokenPipeError, OSError):
        pass
    finally:
        try:
            p.kill()
            p.wait()
        except Exception:
            pass


def writer(wid, led, stop, rnd, stats):
    gen = 0
    while not stop.is_set():
        gen += 1
        k = f"w{wid}f{rnd.randrange(NKEYS)}"
        v = f"{k}.{gen}." + "y" * rnd.choice([10, 5000, 70000])
        try:
            if rnd.random() < 0.5:
                # in place: a kill between the O_TRUNC and the fsync may leave the file empty
                # or with a page-aligned first part of the write (FILESYSTEM.md 6)
                led.issued(k, "")
                led.issued(k, v)
                with open(f"{MNT}/{k}", "w") as f:
                    f.write(v)
                    f.flush()
                    os.fsync(f.fileno())
            else:
                led.issued(k, v)
                tmp = f"{MNT}/.{k}.tmp{gen}"
                with open(tmp, "w") as f:
                    f.write(v)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, f"{MNT}/{k}")
                fd = os.open(MNT, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
            led.ack(k, v)
            stats["fsyncs"] += 1
        except OSError:
            return


def snapper(stop, rnd, stats):
    while not stop.is_set():
        try:
            if rnd.random() < 0.5:
                with open(f"{MNT}/.kvfs", "w") as f:
                    f.write("snapshot\n")
            else:
                subprocess.run([KV, DIR, "SNAP"], capture_output=True, timeout=60)
            stats["snaps"] += 1
        except (OSError, subprocess.TimeoutExpired):
            return
        time.sleep(0.05)


def gone(pid, secs):
    """has process pid ended (its zombie reaped) within secs?"""
    for _ in range(int(secs * 10)):
        if not os.path.exists(f"/proc/{pid}"):
            return True
        time.sleep(0.1)
    return False


def abort(conn):
    """abort this test's own FUSE connection (fusectl, mounted here if it is not)"""
    ctl = "/sys/fs/fuse/connections"
    mounted = subprocess.run(["mountpoint", "-q", ctl]).returncode == 0
    if not mounted:
        subprocess.run(["mount", "-t", "fusectl", "none", ctl], check=True)
    try:
        with open(f"{ctl}/{conn}/abort", "w") as f:
            f.write("1")
    finally:
        if not mounted:
            subprocess.run(["umount", ctl])


def daemon_pid():
    for line in open(f"{DIR}/LOCK"):
        return int(line.strip())


def check(led):
    keys = sorted(set(led.acked) | set(led.since))
    p = subprocess.run([KV, "--raw", DIR], input="".join(f"GET {k}\n" for k in keys), capture_output=True,
                       text=True, timeout=300)
    if p.returncode != 0:
        return [f"the store does not open after the kill: {p.stderr.strip()[-300:]}"]
    got = p.stdout.split("\n")
    bad = []
    for k, g in zip(keys, got):
        g = None if g == "(nil)" else g
        al = led.allowed(k)
        if g is not None and "" in al and any(v and v.startswith(g) and len(g) % 4096 == 0 for v in al):
            continue  # a page-aligned first part of an in-place write in flight at the kill
        if g not in al and not ("(unknown)" in al and g is not None and g.startswith(k + ".")):
            want = led.acked.get(k, "(never acknowledged)")
            bad.append(f"{k}: holds {str(g)[:30]!r}, last acknowledged {str(want)[:30]!r}")
    return bad


def main():
    global DIR, MNT, IMG, LOOPMNT
    top = tempfile.mkdtemp(prefix="cledger.", dir="/var/tmp" if POWERCUT else "/dev/shm")
    DIR, MNT = f"{top}/s", f"{top}/m"
    os.mkdir(MNT)
    if POWERCUT:
        IMG, LOOPMNT = f"{top}/disk.img", f"{top}/disk"
        os.mkdir(LOOPMNT)
        subprocess.run(["truncate", "-s", "512M", IMG], check=True)
        subprocess.run(["mkfs.ext4", "-q", IMG], check=True)
        DISK[0] = powercut.Disk(IMG, top)
        LOOP[0] = subprocess.run(["losetup", "-f", "--show", DISK[0].path], capture_output=True, text=True,
                                 check=True).stdout.strip()
        subprocess.run(["mount", LOOP[0], LOOPMNT], check=True)
        DIR = f"{LOOPMNT}/s"
    led = Ledger()
    rnd = random.Random(SEED)
    failed = 0
    hung = []
    for rd in range(ROUNDS):
        r = subprocess.run([KVFS, "-o", OPTS, DIR, MNT], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"round {rd}: cannot mount: {r.stderr.strip()}")
            failed += 1
            break
        conn = os.minor(os.stat(MNT).st_dev)  # this mount's FUSE connection (to abort a hang)
        stop = threading.Event()
        stats = {"flushes": 0, "fsyncs": 0, "snaps": 0}
        th = [threading.Thread(target=session, args=(i, led, stop, random.Random(rnd.random()), stats)) for i in range(NS)]
        th += [threading.Thread(target=writer, args=(i, led, stop, random.Random(rnd.random()), stats)) for i in range(NW)]
        th.append(threading.Thread(target=snapper, args=(stop, random.Random(rnd.random()), stats)))
        for t in th:
            t.start()
        time.sleep(SECS * (0.5 + rnd.random()))
        pid = daemon_pid()
        if POWERCUT:
            # stopped first: a save acknowledged after the cut would be one the disk never saw
            # (the cut disk drops every write), and the ledger would count it
            os.kill(pid, signal.SIGSTOP)
            DISK[0].cut(IMG + ".cut", seed=f"{SEED}-{rd}")  # the power cut
        os.kill(pid, signal.SIGKILL)
        stop.set()
        subprocess.run(["fusermount3", "-u", "-z", MNT], capture_output=True)
        if not gone(pid, 30):
            hung.append(rd)
            stacks = []
            for t in os.listdir(f"/proc/{pid}/task"):
                try:
                    stacks.append(open(f"/proc/{pid}/task/{t}/wchan").read())
                except OSError:
                    pass
            print(f"round {rd}: HANG: the killed daemon {pid} cannot exit after 30 s (its threads wait in "
                  f"{sorted(set(x for x in stacks if x not in ('', '0')))}); the mount's requests hang, "
                  f"the store stays locked; aborting FUSE connection {conn}", flush=True)
            try:  # what a user trying to get the store back sees meanwhile
                c = subprocess.run([KV, "--check", DIR], capture_output=True, text=True, timeout=10)
                print(f"  kv_cli --check meanwhile: exit {c.returncode}: {(c.stdout + c.stderr).strip()[-200:]}")
            except subprocess.TimeoutExpired:
                print("  kv_cli --check meanwhile: no answer in 10 s")
            abort(conn)
            gone(pid, 30)
        if POWERCUT:
            for t in th:
                t.join(60)
            time.sleep(0.5)
            subprocess.run(["umount", LOOPMNT], check=True)
            subprocess.run(["losetup", "-d", LOOP[0]], check=True)
            DISK[0].close()
            os.replace(IMG + ".cut", IMG)
            DISK[0] = powercut.Disk(IMG, top)
            LOOP[0] = subprocess.run(["losetup", "-f", "--show", DISK[0].path], capture_output=True, text=True,
                                     check=True).stdout.strip()
            subprocess.run(["mount", LOOP[0], LOOPMNT], check=True)
        for t in th:
            t.join(60)
        time.sleep(0.2)
        segs = len([n for n in os.listdir(DIR) if n.startswith("wal-")])
        bad = check(led)
        print(f"round {rd}: {stats['flushes']} FLUSHes, {stats['fsyncs']} fsync'd saves, {stats['snaps']} snapshots "
              f"acknowledged; {segs} segments; {len(bad)} keys wrong" + ("".join("\n  " + b for b in bad[:8])), flush=True)
        if bad:
            failed += 1
    failed += len(hung)
    print(f"{ROUNDS - failed} passed, {failed} failed" + (f" ({len(hung)} hangs: rounds {hung})" if hung else ""))
    subprocess.run(["fusermount3", "-u", "-z", MNT], capture_output=True)
    if POWERCUT:
        subprocess.run(["umount", LOOPMNT])
        subprocess.run(["losetup", "-d", LOOP[0]])
        DISK[0].close()
    if not failed:
        subprocess.run(["rm", "-rf", top])
    else:
        print(f"store kept in {DIR}")


main()
