#!/usr/bin/env python3
"""space.promise (FILESYSTEM.md 4, DESIGN.md 6) damaged or gone while the store is unmounted, then
a full disk: does the mount open, does it say the truth, is the reservation still honoured, does
deleting free space, and does everything fsync'd survive?

Each case: a SIZE ext4 image (loop, commit=600); kvfs mounts a store; a file `p` is preallocated
with posix_fallocate (PA MiB) and fsync'd; clean unmount. Then `space.promise` (or
`space.reserve`) is damaged as the case says; the store is mounted again (its stderr kept), the
disk is filled with 1 MiB fsync'd files until ENOSPC, `p` is written whole (1 MiB pwrites, fsync)
— posix_fallocate promised these writes cannot fail for lack of space —, half the fillers are
deleted and 4 MiB of new files must go in, then a clean remount must read every fsync'd file back.
Cases: none, promise-delete, promise-empty, promise-flip, promise-zero, promise-huge,
promise-dir, reserve-delete, reserve-empty, reserve-dir, both-delete.
usage: promise_damage.py BUILD [CASE...]     (root: loop devices)
env: SIZE (40M), PA (6)
Prints one line per failing case (and notes), and 'N passed, M failed'."""
import ctypes, hashlib, os, shutil, subprocess, sys, tempfile

B = os.path.realpath(sys.argv[1])
KVFS = f"{B}/kvfs"
SIZE = os.environ.get("SIZE", "40M")
PA = int(os.environ.get("PA", "6"))
CASES = sys.argv[2:] or ["none", "promise-delete", "promise-empty", "promise-flip", "promise-zero",
                         "promise-huge", "promise-dir", "reserve-delete", "reserve-empty",
                         "reserve-dir", "both-delete"]
libc = ctypes.CDLL(None, use_errno=True)
print(f"size {SIZE} pa {PA} MiB (no randomness: no seed)", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def full(n):
    """a short write (the disk filled in the middle) counts as ENOSPC, never as written"""
    if n != 1 << 20:
        raise OSError(28, "short write")


def data(tag, mib=1):
    return hashlib.sha256(tag.encode()).digest() * (mib << 15)


def mount(d, m):
    r = sh(KVFS, d, m, timeout=120)
    return r.returncode == 0, (r.stderr + r.stdout).strip()


def damage(case, d):
    prom, res = f"{d}/space.promise", f"{d}/space.reserve"
    what, how = case.split("-") if "-" in case else (case, "")
    files = {"promise": [prom], "reserve": [res], "both": [prom, res]}.get(what, [])
    for f in files:
        if not os.path.exists(f):
            return f"{os.path.basename(f)} does not exist before the damage"
        if how == "delete":
            os.unlink(f)
        elif how == "empty":
            os.truncate(f, 0)
        elif how == "flip":
            with open(f, "r+b") as fh:
                fh.seek(100)
                b = fh.read(1)
                fh.seek(100)
                fh.write(bytes([b[0] ^ 0xff]) if b else b"\xff")
        elif how == "zero":
            with open(f, "r+b") as fh:
                fh.write(b"\0" * 4096)
        elif how == "huge":
            os.truncate(f, 1 << 40)       # sparse: says 1 TiB, holds nothing
        elif how == "dir":
            os.unlink(f)
            os.mkdir(f)
    return None


def fill(m, tag, good, limit=10 ** 6):
    n = 0
    while n < limit:
        name = f"{m}/{tag}{n}"
        try:
            fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        except OSError as e:
            return n, e.strerror
        try:
            full(os.write(fd, data(name)))
            os.fsync(fd)
            good[os.path.basename(name)] = hashlib.sha256(data(name)).hexdigest()
        except OSError as e:
            good.pop(os.path.basename(name), None)
            return n, e.strerror
        finally:
            os.close(fd)
        n += 1
    return n, "limit"


def one(top, case):
    img, lo, m = f"{top}/d.img", f"{top}/lo", f"{top}/m"
    for x in (lo, m):
        os.makedirs(x, exist_ok=True)
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    loop = sh("losetup", "-f", "--show", img, check=True).stdout.strip()
    sh("mount", "-o", "commit=600", loop, lo, check=True)
    d = f"{lo}/s"
    probs, notes, good = [], [], {}
    mounted = False
    try:
        ok, err = mount(d, m)
        if not ok:
            return [f"first mount failed: {err}"], notes
        mounted = True
        fd = os.open(f"{m}/p", os.O_CREAT | os.O_RDWR, 0o644)
        r = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(PA << 20))
        os.fsync(fd)
        os.close(fd)
        if r:
            return [f"posix_fallocate of {PA} MiB: {os.strerror(r)}"], notes
        sh(KVFS, "--unmount", m, check=True)
        mounted = False
        e = damage(case, d)
        if e:
            return [e], notes
        ok, err = mount(d, m)
        if err:
            notes.append(f"mount says: {err[-300:]}")
        if not ok:
            # a clear refusal is fine if it says what to do; note it, and stop the case
            return ([] if err else ["the mount failed and said nothing"]), notes + ["mount refused"]
        mounted = True
        n, why = fill(m, "f", good)
        notes.append(f"{n} MiB of fillers, then {why}")
        fd = os.open(f"{m}/p", os.O_RDWR)
        try:
            for i in range(PA):
                full(os.pwrite(fd, data(f"p{i}"), i << 20))
            os.fsync(fd)
            good["p"] = hashlib.sha256(b"".join(data(f"p{i}") for i in range(PA))).hexdigest()
        except OSError as ex:
            probs.append(f"a write into the preallocated range at MiB {i}: {ex.strerror}")
        finally:
            os.close(fd)
        f0 = os.statvfs(m)
        for j in range(0, n, 2):
            os.unlink(f"{m}/f{j}")
            good.pop(f"f{j}", None)
        sync_fd = os.open(m, os.O_RDONLY)
        os.fsync(sync_fd)
        os.close(sync_fd)
        k, why = fill(m, "g", good, limit=4)
        f1 = os.statvfs(m)
        if k < 4:
            probs.append(f"after deleting {(n + 1) // 2} MiB of files only {k} of 4 MiB went in ({why}); "
                         f"df free {f0.f_bavail * f0.f_frsize >> 10} -> {f1.f_bavail * f1.f_frsize >> 10} KiB")
        sh(KVFS, "--unmount", m, check=True)
        mounted = False
        ok, err = mount(d, m)
        if not ok:
            probs.append(f"the clean remount failed: {err[-300:]}")
            return probs, notes
        mounted = True
        bad = []
        for name, h in good.items():
            try:
                with open(f"{m}/{name}", "rb") as fh:
                    if hashlib.sha256(fh.read()).hexdigest() != h:
                        bad.append(name)
            except OSError as ex:
                bad.append(f"{name} ({ex.strerror})")
        if bad:
            probs.append(f"{len(bad)} fsync'd files differ after the remount: {bad[:4]}")
    finally:
        if mounted:
            sh(KVFS, "--unmount", m)
        sh("umount", lo)
        sh("losetup", "-d", loop)
        os.unlink(img)
    return probs, notes


def main():
    top = tempfile.mkdtemp(prefix="a5prom.", dir="/var/tmp")
    passed = failed = 0
    try:
        for c in CASES:
            probs, notes = one(top, c)
            print(f"{'FAIL' if probs else 'ok  '} {c}: " + "; ".join(probs + notes), flush=True)
            failed += bool(probs)
            passed += not probs
    finally:
        shutil.rmtree(top)
    print(f"{passed} passed, {failed} failed")


main()
