#!/usr/bin/env python3
"""Faults injected into the kvfs daemon (strace -f -e inject=CALL:error=ERR:when=N) while a disk
fills, files are deleted and a preallocated file is written: the full-disk paths (checkpoint,
cleaner passes, the reserve lent, space.promise cut by a chunk) meet an error at their N-th CALL.

Each case N: a SIZE ext4 image (loop, commit=600); `kvfs -f` under strace; `p` gets
posix_fallocate(PA MiB) + fsync; 1 MiB files are saved (write + fsync) until ENOSPC; half of them
are deleted; 4 more saved; `p` written whole (1 MiB pwrites, fsync each). Then the daemon is
killed (SIGKILL), the power cut (tests/powercut: only what the loop device flushed is kept;
PC_KEEP=P keeps each unflushed 4 KiB sector with probability P), and the cut image mounted again.
Checked: the daemon neither crashes nor hangs before the kill; after the power cut the mount
opens and every file whose fsync returned 0 (and each MiB of `p` whose fdatasync did) reads back
whole; then deleting half the files makes room for 4 MiB of new files. Failures of the workload
itself are expected (the fault is real to the engine) and only counted.
usage: daemon_faults.py BUILD CALL ERR N_FROM N_TO [STEP]    (root: loop devices, FUSE)
env: SIZE (40M), PA (6), OPTS (segment_bytes=1m)
Prints one line per case (FAIL lines first word), and 'N passed, M failed'."""
import ctypes, hashlib, os, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

B = os.path.realpath(sys.argv[1])
KVFS = f"{B}/kvfs"
CALL, ERR, NF, NT = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
STEP = int(sys.argv[6]) if len(sys.argv) > 6 else 1
SIZE = os.environ.get("SIZE", "40M")
PA = int(os.environ.get("PA", "6"))
OPTS = os.environ.get("OPTS", "segment_bytes=1m")
libc = ctypes.CDLL(None, use_errno=True)
print(f"call {CALL} err {ERR} size {SIZE} pa {PA} opts {OPTS} (no randomness: no seed)", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def full(n):
    """a short write (the disk filled in the middle) counts as ENOSPC, never as written"""
    if n != 1 << 20:
        raise OSError(28, "short write")


def data(tag):
    return hashlib.sha256(tag.encode()).digest() * (1 << 15)


def save(m, name, good, fails):
    try:
        fd = os.open(f"{m}/{name}", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    except OSError as e:
        fails.append(e.strerror)
        return False
    try:
        full(os.write(fd, data(name)))
        os.fsync(fd)
        good[name] = data(name)
        return True
    except OSError as e:
        good.pop(name, None)
        fails.append(e.strerror)
        return False
    finally:
        os.close(fd)


def workload(m, good, pgood, fails):
    fd = os.open(f"{m}/p", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        e = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(PA << 20))
        if e:
            fails.append(f"posix_fallocate: {os.strerror(e)}")
        os.fsync(fd)
    except OSError as ex:
        fails.append(f"fsync of p: {ex.strerror}")
    n = 0
    while n < 200 and save(m, f"f{n}", good, fails):
        n += 1
    for j in range(0, n, 2):
        try:
            os.unlink(f"{m}/f{j}")
            good.pop(f"f{j}", None)
        except OSError as ex:
            fails.append(f"unlink: {ex.strerror}")
    for j in range(4):
        save(m, f"g{j}", good, fails)
    for i in range(PA):
        try:
            full(os.pwrite(fd, data(f"p{i}"), i << 20))
            os.fdatasync(fd)
            pgood[i] = data(f"p{i}")
        except OSError as ex:
            fails.append(f"p MiB {i}: {ex.strerror}")
            pgood.pop(i, None)
    os.close(fd)
    return n


def one(top, n):
    img, lo, m, tr = f"{top}/d.img", f"{top}/lo", f"{top}/m", f"{top}/trace"
    for x in (lo, m):
        os.makedirs(x, exist_ok=True)
    if os.path.exists(img):
        os.unlink(img)  # a fresh file each case
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    disk = powercut.Disk(img, top)
    loop = sh("losetup", "-f", "--show", disk.path, check=True).stdout.strip()
    sh("mount", "-o", "commit=600", loop, lo, check=True)
    d = f"{lo}/s"
    good, pgood, fails, probs = {}, {}, [], []
    inj = []
    try:
        sp = subprocess.Popen(["strace", "-f", "-y", "-qq", "-o", tr, "-e", f"trace={CALL}",
                               "-e", f"inject={CALL}:error={ERR}:when={n}", KVFS, "-f", "-o", OPTS, d, m],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(400):
            if os.path.ismount(m):
                break
            if sp.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.ismount(m):
            sp.kill()
            sp.wait()
            e = sp.stderr.read().decode().strip()
            return ([] if e else ["no mount and no message"]), f"mount refused: {e[-160:]}", []
        nf = workload(m, good, pgood, fails)
        if sp.poll() is not None:
            probs.append(f"the daemon ended by itself: {sp.returncode} {sp.stderr.read().decode()[-200:]}")
        pid = int(open(f"{d}/LOCK").read().split()[0])
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        disk.cut(img + ".cut", seed=f"{n}")      # the power cut
        sp.wait(timeout=60)
        sh("fusermount3", "-uz", m)
        inj = [l for l in open(tr).read().splitlines() if "(INJECTED)" in l]
    finally:
        sh("umount", lo)
        sh("losetup", "-d", loop)
        disk.close()
    where = inj[0].split("<")[1].split(">")[0].rsplit("/", 1)[-1] if inj and "<" in inj[0] else "-"
    loop = sh("losetup", "-f", "--show", img + ".cut", check=True).stdout.strip()
    sh("mount", "-o", "commit=600", loop, lo, check=True)
    try:
        r = sh(KVFS, "-o", OPTS, d, m)
        if r.returncode:
            probs.append(f"after the power cut the mount fails: {r.stderr.strip()[-300:]}")
            return probs, where, fails
        try:
            bad = []
            for name, v in good.items():
                try:
                    if open(f"{m}/{name}", "rb").read() != v:
                        bad.append(name)
                except OSError as ex:
                    bad.append(f"{name} ({ex.strerror})")
            try:
                with open(f"{m}/p", "rb") as fh:
                    for i, v in pgood.items():
                        fh.seek(i << 20)
                        if fh.read(1 << 20) != v:
                            bad.append(f"p MiB {i}")
            except OSError as ex:
                if pgood:
                    bad.append(f"p ({ex.strerror})")
            if bad:
                probs.append(f"{len(bad)} acknowledged files differ after the power cut: {bad[:4]}")
            live = sorted(x for x in os.listdir(m) if x[0] in "fg")
            for x in live[::2]:
                os.unlink(f"{m}/{x}")
            got = sum(save(m, f"h{j}", {}, []) for j in range(4))
            if got < 4:
                probs.append(f"after deleting {len(live[::2])} of {len(live)} files only {got} of 4 MiB went in")
        finally:
            sh(KVFS, "--unmount", m)
    finally:
        sh("umount", lo)
        sh("losetup", "-d", loop)
        os.unlink(img + ".cut")
        os.unlink(img)
    return probs, where, fails


def main():
    top = tempfile.mkdtemp(prefix="a5dflt.", dir="/var/tmp")
    passed = failed = 0
    try:
        for n in range(NF, NT + 1, STEP):
            probs, where, fails = one(top, n)
            tag = "FAIL" if probs else "ok  "
            print(f"{tag} {CALL} #{n} [{where}]: {len(fails)} workload errors {sorted(set(fails))[:3]}"
                  + ("; " + "; ".join(probs) if probs else ""), flush=True)
            failed += bool(probs)
            passed += not probs
    finally:
        shutil.rmtree(top)
    print(f"{passed} passed, {failed} failed")


main()
