#!/usr/bin/env python3
"""A kill -9 and a power cut while a preallocated file is written on a full disk (the promised
writes cut `space.promise` by a chunk for each segment they need, DESIGN.md 6).

Each case K (0..PA): a SIZE ext4 image (loop, commit=600), kvfs; `p` gets posix_fallocate(PA MiB)
and fsync; the disk is filled with fsync'd 1 MiB files until ENOSPC (with WRITERS>0, that many
threads keep trying to write more fillers the whole time); MiB 0..K-1 of `p` are written, each
fsync'd; then the daemon is killed (SIGKILL, pid from LOCK) and the power cut (tests/powercut:
only what the loop device flushed is kept; PC_KEEP=P keeps each unflushed 4 KiB sector with
probability P). The cut image is mounted again: MiB K..PA-1 of `p` must go in (posix_fallocate's
promise survives the crash), every fsync'd file must read back whole, and deleting half the
fillers must make room for 4 MiB of new files.
usage: promise_crash.py BUILD [K...]      (root: loop devices)
env: SIZE (40M), PA (8), WRITERS (0)
Prints one line per failing case and 'N passed, M failed'."""
import ctypes, hashlib, os, shutil, signal, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

B = os.path.realpath(sys.argv[1])
KVFS = f"{B}/kvfs"
SIZE = os.environ.get("SIZE", "40M")
PA = int(os.environ.get("PA", "8"))
WRITERS = int(os.environ.get("WRITERS", "0"))
KS = [int(k) for k in sys.argv[2:]] or list(range(PA + 1))
libc = ctypes.CDLL(None, use_errno=True)
print(f"size {SIZE} pa {PA} MiB writers {WRITERS} (no randomness: no seed)", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def full(n):
    """a short write (the disk filled in the middle) counts as ENOSPC, never as written"""
    if n != 1 << 20:
        raise OSError(28, "short write")


def data(tag):
    return hashlib.sha256(tag.encode()).digest() * (1 << 15)


class Disk:
    def __init__(self, img, lo):
        self.lo = lo
        os.makedirs(lo, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", img, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, lo, check=True)

    def close(self):
        sh("umount", self.lo)
        sh("losetup", "-d", self.loop)


def put(m, name, good, lock):
    try:
        fd = os.open(f"{m}/{name}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    except OSError as e:
        return e.strerror
    try:
        full(os.write(fd, data(name)))
        os.fsync(fd)
        with lock:
            good[name] = hashlib.sha256(data(name)).hexdigest()
        return None
    except OSError as e:
        with lock:
            good.pop(name, None)
        return e.strerror
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def one(top, k):
    img, lo, m = f"{top}/d.img", f"{top}/lo", f"{top}/m"
    os.makedirs(m, exist_ok=True)
    if os.path.exists(img):
        os.unlink(img)  # a fresh file each case
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    good, lock, probs = {}, threading.Lock(), []
    pc = powercut.Disk(img, top)
    disk = Disk(pc.path, lo)
    mounted = False
    try:
        r = sh(KVFS, f"{lo}/s", m)
        if r.returncode:
            return [f"mount: {r.stderr.strip()}"]
        mounted = True
        fd = os.open(f"{m}/p", os.O_CREAT | os.O_RDWR, 0o644)
        e = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(PA << 20))
        os.fsync(fd)
        if e:
            return [f"posix_fallocate: {os.strerror(e)}"]
        n = 0
        while put(m, f"f{n}", good, lock) is None:
            n += 1
        stop = threading.Event()

        def writer(w):
            j = 0
            while not stop.is_set():
                put(m, f"w{w}-{j}", good, lock)
                j += 1

        ts = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
        for t in ts:
            t.start()
        try:
            for i in range(k):
                full(os.pwrite(fd, data(f"p{i}"), i << 20))
                os.fdatasync(fd)
        except OSError as ex:
            probs.append(f"before the crash, a write into the preallocated range at MiB {i}: {ex.strerror}")
        pid = int(open(f"{lo}/s/LOCK").read().split()[0])
        os.kill(pid, signal.SIGKILL)
        stop.set()
        pc.cut(img + ".cut", seed=f"{k}")     # the power cut
        sh("fusermount3", "-uz", m)
        for t in ts:
            t.join(timeout=30)
        try:
            os.close(fd)
        except OSError:
            pass
        mounted = False
    finally:
        if mounted:
            sh(KVFS, "--unmount", m)
        disk.close()
        pc.close()
    if probs:
        return probs
    disk = Disk(img + ".cut", lo)
    try:
        r = sh(KVFS, f"{lo}/s", m)
        if r.returncode:
            return [f"after the power cut the mount fails: {r.stderr.strip()[-300:]}"]
        try:
            fd = os.open(f"{m}/p", os.O_RDWR)
            try:
                for i in range(k, PA):
                    full(os.pwrite(fd, data(f"p{i}"), i << 20))
                    os.fdatasync(fd)
            except OSError as ex:
                probs.append(f"after the crash, a write into the preallocated range at MiB {i}: "
                             f"{ex.strerror} (mount said {r.stderr.strip()[-200:]!r})")
            os.close(fd)
            bad = []
            for name, h in good.items():
                try:
                    with open(f"{m}/{name}", "rb") as fh:
                        if hashlib.sha256(fh.read()).hexdigest() != h:
                            bad.append(name)
                except OSError as ex:
                    bad.append(f"{name} ({ex.strerror})")
            with open(f"{m}/p", "rb") as fh:
                for i in range(k):
                    if fh.read(1 << 20) != data(f"p{i}"):
                        bad.append(f"p MiB {i}")
            if bad:
                probs.append(f"{len(bad)} fsync'd files differ: {bad[:4]}")
            for j in range(0, n, 2):
                os.unlink(f"{m}/f{j}")
            got = sum(put(m, f"g{j}", {}, lock) is None for j in range(4))
            if got < 4:
                probs.append(f"after deleting {(n + 1) // 2} MiB of files only {got} of 4 MiB went in")
        finally:
            sh(KVFS, "--unmount", m)
    finally:
        disk.close()
        os.unlink(img + ".cut")
        os.unlink(img)
    return probs


def main():
    top = tempfile.mkdtemp(prefix="a5pcr.", dir="/var/tmp")
    passed = failed = 0
    try:
        for k in KS:
            probs = one(top, k)
            if probs:
                print(f"FAIL K={k}: " + "; ".join(probs), flush=True)
            failed += bool(probs)
            passed += not probs
    finally:
        shutil.rmtree(top)
    print(f"{passed} passed, {failed} failed")


main()
