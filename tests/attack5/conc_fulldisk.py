#!/usr/bin/env python3
"""Writers through the mount while the disk fills, files are deleted and preallocated files are
written; then kill -9 and a power cut, rounds of it.

Each round: a SIZE ext4 image (loop, commit=600), kvfs. FILLERS threads save files of 64 KiB to
2 MiB (write + fsync) and, on ENOSPC, delete 1-3 of their own files (unlink + fsync of the
directory) and go on; one thread preallocates a file of 1-4 MiB (posix_fallocate + fsync), writes
it whole in 256 KiB pwrites with fdatasync each (these writes must never fail with ENOSPC:
posix_fallocate promised), and deletes one of its files now and then. After SECONDS the daemon is
killed (SIGKILL), the power cut (tests/powercut: only what the loop device flushed is kept;
PC_KEEP=P keeps each unflushed 4 KiB sector with probability P) and the image mounted again: every file's
last acknowledged content must be there (a file whose unlink was issued may also be absent; one
being rewritten may hold the acknowledged or the newer bytes); then deleting half the files must
make room for 4 MiB of new ones.
The seed fixes each thread's choices; where the kill lands depends on the timing (it never
decides a verdict).
usage: conc_fulldisk.py BUILD [ROUNDS]     (root: loop devices, FUSE)
env: SIZE (48M), FILLERS (3), SECONDS (6), SEED (printed)
Prints one line per failing round and 'N passed, M failed'."""
import ctypes, hashlib, os, random, shutil, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

B = os.path.realpath(sys.argv[1])
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
KVFS = f"{B}/kvfs"
SIZE = os.environ.get("SIZE", "48M")
FILLERS = int(os.environ.get("FILLERS", "3"))
SECS = float(os.environ.get("SECONDS", "6"))
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
libc = ctypes.CDLL(None, use_errno=True)
print(f"seed {SEED} size {SIZE} fillers {FILLERS} seconds {SECS} rounds {ROUNDS}", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def blob(tag, n):
    return (hashlib.sha256(tag.encode()).digest() * (n // 32 + 1))[:n]


class Ledger:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}      # name -> bytes acknowledged (None: never)
        self.maybe = {}      # name -> set of other states it may hold (newer writes, absent)

    def start(self, name, new):
        with self.lock:
            self.maybe.setdefault(name, set()).add(new)

    def ack(self, name, data):
        with self.lock:
            self.acked[name] = data
            self.maybe[name] = set()

    def check(self, m):
        bad = []
        for name, a in self.acked.items():
            try:
                with open(f"{m}/{name}", "rb") as fh:
                    g = fh.read()
            except FileNotFoundError:
                g = None
            except OSError as e:
                bad.append(f"{name}: {e.strerror}")
                continue
            if g == a:
                continue
            others = self.maybe.get(name, set())
            if g is None and None in others:
                continue
            if g is not None and any(o is not None and g == o for o in others):
                continue
            bad.append(f"{name}: {'absent' if g is None else f'{len(g)} other bytes'}, "
                       f"acknowledged {'deletion' if a is None else f'{len(a)} bytes'}")
        return bad


def write_all(fd, data, off=None):
    """a short write (the disk filled in the middle of it) is an error here, as ENOSPC"""
    done = 0
    while done < len(data):
        n = os.write(fd, data[done:]) if off is None else os.pwrite(fd, data[done:], off + done)
        if n <= 0:
            raise OSError(28, "short write")
        done += n


def filler(m, w, rnd, led, stop, errs):
    mine, j = [], 0
    while not stop.is_set():
        name = f"f{w}-{j}"
        j += 1
        data = blob(name, rnd.randrange(64 << 10, 2 << 20))
        led.start(name, None)
        try:
            fd = os.open(f"{m}/{name}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        except OSError:
            continue
        led.start(name, b"")
        try:
            led.start(name, data)
            write_all(fd, data)
            os.fsync(fd)
            led.ack(name, data)
            mine.append(name)
        except OSError as e:
            if e.errno != 28 and not stop.is_set():
                errs.append(f"{name}: {e.strerror}")
            elif e.errno == 28:
                errs.append("ENOSPC")
            for _ in range(rnd.randrange(1, 4)):
                if not mine:
                    break
                v = mine.pop(rnd.randrange(len(mine)))
                led.start(v, None)
                try:
                    os.unlink(f"{m}/{v}")
                    dfd = os.open(m, os.O_RDONLY)
                    os.fsync(dfd)
                    os.close(dfd)
                    led.ack(v, None)
                except OSError:
                    pass
        finally:
            os.close(fd)


def preallocator(m, rnd, led, stop, errs):
    mine, j = [], 0
    while not stop.is_set():
        name = f"p{j}"
        j += 1
        size = rnd.randrange(1, 5) << 20
        try:
            fd = os.open(f"{m}/{name}", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError:
            time.sleep(0.05)
            continue
        led.start(name, None)
        led.start(name, b"")
        e = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(size))
        cur = bytearray(size)
        led.start(name, bytes(cur))
        try:
            os.fsync(fd)
            led.ack(name, bytes(cur) if not e else b"")
        except OSError:
            pass
        if e == 0:
            for off in range(0, size, 256 << 10):
                if stop.is_set():
                    break
                piece = blob(f"{name}@{off}", 256 << 10)
                cur[off:off + len(piece)] = piece
                led.start(name, bytes(cur))
                try:
                    write_all(fd, piece, off)
                    os.fdatasync(fd)
                    led.ack(name, bytes(cur))
                except OSError as ex:
                    if not stop.is_set():
                        errs.append(f"PROMISE BROKEN: {name} write at {off} of {size} after "
                                    f"posix_fallocate: {ex.strerror}")
                    break
            mine.append(name)
        os.close(fd)
        if mine and (e or rnd.random() < 0.5):
            v = mine.pop(0)
            led.start(v, None)
            try:
                os.unlink(f"{m}/{v}")
                dfd = os.open(m, os.O_RDONLY)
                os.fsync(dfd)
                os.close(dfd)
                led.ack(v, None)
            except OSError:
                pass


def one(top, r):
    img, lo, m = f"{top}/d.img", f"{top}/lo", f"{top}/m"
    for x in (lo, m):
        os.makedirs(x, exist_ok=True)
    if os.path.exists(img):
        os.unlink(img)  # a fresh file each round
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    disk = powercut.Disk(img, top)
    loop = sh("losetup", "-f", "--show", disk.path, check=True).stdout.strip()
    sh("mount", "-o", "commit=600", loop, lo, check=True)
    led, stop, errs, probs = Ledger(), threading.Event(), [], []
    try:
        rr = sh(KVFS, f"{lo}/s", m)
        if rr.returncode:
            return [f"mount: {rr.stderr.strip()}"]
        ts = [threading.Thread(target=filler, args=(m, w, random.Random(f"{SEED}-{r}-{w}"), led, stop, errs),
                               daemon=True) for w in range(FILLERS)]
        ts.append(threading.Thread(target=preallocator, args=(m, random.Random(f"{SEED}-{r}-p"), led, stop, errs),
                                   daemon=True))
        for t in ts:
            t.start()
        time.sleep(SECS)
        pid = int(open(f"{lo}/s/LOCK").read().split()[0])
        stop.set()
        os.kill(pid, signal.SIGKILL)
        disk.cut(img + ".cut", seed=f"{SEED}-{r}")     # the power cut
        sh("fusermount3", "-uz", m)
        for t in ts:
            t.join(timeout=60)
            if t.is_alive():
                probs.append("a writer hangs after the kill")
    finally:
        sh("umount", "-l", lo)
        sh("losetup", "-d", loop)
        disk.close()
    probs += [e for e in errs if e.startswith("PROMISE")][:3]
    loop = sh("losetup", "-f", "--show", img + ".cut", check=True).stdout.strip()
    sh("mount", "-o", "commit=600", loop, lo, check=True)
    try:
        rr = sh(KVFS, f"{lo}/s", m)
        if rr.returncode:
            probs.append(f"after the power cut the mount fails: {rr.stderr.strip()[-300:]}")
            return probs
        try:
            bad = led.check(m)
            if bad:
                probs.append(f"{len(bad)} files differ from the ledger: {bad[:3]}")
            live = sorted(os.listdir(m))
            for x in live[::2]:
                os.unlink(f"{m}/{x}")
            got = 0
            for j in range(4):
                try:
                    with open(f"{m}/new{j}", "wb") as fh:
                        fh.write(blob(f"new{j}", 1 << 20))
                        fh.flush()
                        os.fsync(fh.fileno())
                    got += 1
                except OSError:
                    pass
            if got < 4:
                probs.append(f"after deleting {len(live[::2])} of {len(live)} files only {got} of 4 MiB went in")
        finally:
            sh(KVFS, "--unmount", m)
    finally:
        sh("umount", lo)
        sh("losetup", "-d", loop)
        os.unlink(img + ".cut")
        os.unlink(img)
    print(f"  round {r}: {len(led.acked)} names acknowledged, {errs.count('ENOSPC')} ENOSPC, "
          f"{len(errs) - errs.count('ENOSPC')} other write errors",
          flush=True)
    return probs


def main():
    top = tempfile.mkdtemp(prefix="a5conc.", dir="/var/tmp")
    passed = failed = 0
    try:
        for r in range(ROUNDS):
            probs = one(top, r)
            if probs:
                print(f"FAIL round {r}: " + "; ".join(probs), flush=True)
            failed += bool(probs)
            passed += not probs
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")


main()
