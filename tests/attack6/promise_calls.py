#!/usr/bin/env python3
"""kill -9 at the N-th CALL of the kvfs daemon (every thread: strace -f -p, so N counts per
thread) during a posix_fallocate through the mount, or during the first write into the reserved
range on a full disk; then a power cut (tests/powercut: only what the loop device flushed is kept; PC_KEEP=P keeps each
unflushed 4 KiB sector with probability P). The sixth attack's
item 3; attack5's promise_crash.py killed only between 1 MiB writes.

Each case: a 40 MiB ext4 image (loop, commit=600), kvfs (default options); 4 files of 1 MiB are
written and fsync'd (the ledger).
  MODE fallocate: strace attaches; `p` gets posix_fallocate(0, PA MiB), then fsync. Killed or
    not, the power cut follows.
  MODE write: `p` gets posix_fallocate(PA MiB) and fsync; the disk is filled with fsync'd 1 MiB
    files until ENOSPC; strace attaches; MiB 0 of `p` is written with pwrite and fdatasync'd
    (the promised write that finds the disk full: space.promise cut by a chunk, a segment of
    that size, the append — DESIGN.md 6). Then the power cut.
The copy is mounted again and checked:
  - the mount succeeds; every fsync'd file reads back whole (and MiB 0 of `p` if its fdatasync
    returned 0);
  - when posix_fallocate returned 0 and fsync too (a promise made): the disk is filled with
    1 MiB files (MODE fallocate), then every MiB of `p` not yet written goes in (pwrite +
    fdatasync): never ENOSPC;
  - when the fallocate was not acknowledged: the outcome of writing `p` on the full disk is
    printed, not judged;
  - deleting `p` and half the fillers makes room for as many MiB of new files (at most 4), and after an unmount
    `space.promise` holds no more than 1 MiB (nothing promised is left) and `kv_cli --check`
    exits 0.
usage: promise_calls.py BUILD MODE CALL N_FROM N_TO      (root: loop devices, FUSE, strace)
       promise_calls.py BUILD MODE count
env: PA (8). No randomness: no seed. Prints one line per failing case and 'N passed, M failed'."""
import ctypes, hashlib, os, shutil, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

B = os.path.realpath(sys.argv[1])
KVFS, KV = f"{B}/kvfs", f"{B}/kv_cli"
MODE = sys.argv[2]
PA = int(os.environ.get("PA", "8"))
libc = ctypes.CDLL(None, use_errno=True)
CALLS = "pwrite64,write,fdatasync,fsync,rename,unlink,ftruncate,fallocate,openat"
print(f"mode {MODE} pa {PA} MiB (no randomness: no seed)", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def data(tag):
    return hashlib.sha256(tag.encode()).digest() * (1 << 15)


class Disk:
    def __init__(self, img, lo):
        self.lo = lo
        os.makedirs(lo, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", img, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, lo, check=True)

    def close(self):
        for _ in range(50):
            if sh("umount", self.lo).returncode == 0:
                break
            time.sleep(0.2)
        sh("losetup", "-d", self.loop)


def put(path, body):
    """1 on success; a short write counts as ENOSPC"""
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    except OSError:
        return 0
    try:
        if os.write(fd, body) != len(body):
            return 0
        os.fsync(fd)
        return 1
    except OSError:
        return 0
    finally:
        try:
            os.close(fd)
        except OSError:
            pass


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/stat").read().split(") ")[1].split()[0] != "Z"


def fill(m, prefix):
    n = 0
    while put(f"{m}/{prefix}{n}", data(f"{prefix}{n}")):
        n += 1
    os.unlink(f"{m}/{prefix}{n}") if os.path.exists(f"{m}/{prefix}{n}") else None
    return n


def attach(pid, top, call, n, count):
    args = ["strace", "-f", "-p", str(pid)]
    if count:
        args += ["-c", "-o", f"{top}/count", "-e", f"trace={CALLS}"]
    else:
        args += ["-o", f"{top}/tr", "-e", f"trace={call}", "-e", f"inject={call}:signal=SIGKILL:when={n}"]
    err = open(f"{top}/st.err", "w")
    sp = subprocess.Popen(args, stderr=err)
    ntask = len(os.listdir(f"/proc/{pid}/task"))
    for _ in range(200):
        if "attached" in open(f"{top}/st.err").read():  # "attached with N threads"
            break
        time.sleep(0.05)
    return sp


def life(top, img, call, n, count):
    lo, m = f"{top}/lo", f"{top}/m"
    os.makedirs(m, exist_ok=True)
    if os.path.exists(img):
        os.unlink(img)  # a fresh file each case
    sh("truncate", "-s", "40M", img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    pc = powercut.Disk(img, top)
    disk = Disk(pc.path, lo)
    st = {"ledger": {}, "fillers": 0, "promised": False, "w0": False, "note": ""}
    sp = pid = None
    try:
        r = sh(KVFS, f"{lo}/s", m)
        if r.returncode:
            raise RuntimeError(f"mount: {r.stderr.strip()}")
        pid = int(open(f"{lo}/s/LOCK").read().split()[0])
        for i in range(4):
            if put(f"{m}/l{i}", data(f"l{i}")):
                st["ledger"][f"l{i}"] = data(f"l{i}")
        fd = os.open(f"{m}/p", os.O_CREAT | os.O_RDWR, 0o644)
        os.fsync(fd)
        if MODE == "write":
            e = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(PA << 20))
            os.fsync(fd)
            assert e == 0, os.strerror(e)
            st["promised"] = True
            st["fillers"] = fill(m, "f")
        sp = attach(pid, top, call, n, count)
        try:
            if MODE == "fallocate":
                e = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(PA << 20))
                if e == 0:
                    os.fsync(fd)
                    st["promised"] = True
                else:
                    st["note"] = f"posix_fallocate: {os.strerror(e)}"
            else:
                w = os.pwrite(fd, data("p0"), 0)
                if w == 1 << 20:
                    os.fdatasync(fd)
                    st["w0"] = True
                else:
                    st["note"] = f"short write {w}"
        except OSError as ex:
            st["note"] = f"{MODE}: {ex.strerror}"
        for _ in range(20):
            if not alive(pid) or count:
                break
            time.sleep(0.1)
        st["killed"] = not alive(pid)
        pc.cut(img + ".cut", seed=f"{call}-{n}")  # the power cut
        try:
            os.close(fd)
        except OSError:
            pass
    finally:
        if sp:
            if sp.poll() is None:
                sp.terminate()
            sp.wait()
        if pid and alive(pid):
            os.kill(pid, 9)
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.1)
        sh("fusermount3", "-uz", m)
        disk.close()
        pc.close()
        os.unlink(img)
    return st


def check(top, img, st):
    lo, m = f"{top}/lo", f"{top}/m"
    probs, info = [], ""
    disk = Disk(img, lo)
    try:
        r = sh(KVFS, f"{lo}/s", m)
        if r.returncode:
            return [f"after the power cut the mount fails: {r.stderr.strip()[-300:]}"], info
        try:
            bad = []
            for name, body in st["ledger"].items():
                try:
                    if open(f"{m}/{name}", "rb").read() != body:
                        bad.append(name)
                except OSError as e:
                    bad.append(f"{name} ({e.strerror})")
            for j in range(st["fillers"]):
                try:
                    if open(f"{m}/f{j}", "rb").read() != data(f"f{j}"):
                        bad.append(f"f{j}")
                except OSError as e:
                    bad.append(f"f{j} ({e.strerror})")
            if st["w0"]:
                try:
                    with open(f"{m}/p", "rb") as fh:
                        if fh.read(1 << 20) != data("p0"):
                            bad.append("p MiB 0")
                except OSError as e:
                    bad.append(f"p ({e.strerror})")
            if bad:
                probs.append(f"{len(bad)} fsync'd files differ: {bad[:4]}")
            fillers = st["fillers"]
            extra = 0
            if MODE == "fallocate":
                extra = fill(m, "x")
            first = 1 if st["w0"] else 0
            got = None
            try:
                fd = os.open(f"{m}/p", os.O_RDWR)
                try:
                    for i in range(first, PA):
                        got = i
                        if os.pwrite(fd, data(f"p{i}"), i << 20) != 1 << 20:
                            raise OSError(28, "short write")
                        os.fdatasync(fd)
                    got = None
                finally:
                    os.close(fd)
            except OSError as e:
                msg = f"writing MiB {got} of p on the full disk: {e.strerror}"
                if st["promised"]:
                    probs.append(f"{msg} (posix_fallocate had returned 0)")
                else:
                    info = f"unacknowledged fallocate: {msg}"
            if got is None and not st["promised"]:
                info = "unacknowledged fallocate: the range still went in"
            os.unlink(f"{m}/p")
            for j in range(0, fillers, 2):
                os.unlink(f"{m}/f{j}")
            for j in range(0, extra, 2):
                os.unlink(f"{m}/x{j}")
            freed = (fillers + 1) // 2 + (extra + 1) // 2
            need = min(4, freed)
            ok = sum(put(f"{m}/g{j}", data(f"g{j}")) for j in range(need))
            if ok < need:
                ls = sh("sh", "-c", f"ls -ls {lo}/s | sed 1d | awk '{{print $6, $10}}' | tr '\\n' ' '; df -k {lo} | tail -1").stdout
                probs.append(f"after deleting p and {freed} of the {fillers + extra} 1 MiB fillers only {ok} of "
                             f"{need} MiB went in (the store: {ls.strip()})")
        finally:
            r = sh(KVFS, "--unmount", m)
            if r.returncode:
                probs.append(f"unmount: {r.stderr.strip()[-200:]}")
        pf = f"{lo}/s/space.promise"
        if os.path.exists(pf) and os.path.getsize(pf) > (1 << 20):
            probs.append(f"space.promise holds {os.path.getsize(pf)} bytes with nothing promised")
        c = sh(KV, "--check", f"{lo}/s")
        if c.returncode:
            probs.append(f"--check exits {c.returncode}: {c.stdout.strip()[-200:]}")
    finally:
        disk.close()
    return probs, info


def main():
    top = tempfile.mkdtemp(prefix="a6pc.", dir="/var/tmp")
    img = f"{top}/d.img"
    try:
        if sys.argv[3] == "count":
            st = life(top, img, None, 0, True)
            print(f"uninterrupted: {st['note']}; daemon calls, every thread:")
            print(open(f"{top}/count").read())
            probs, info = check(top, img + ".cut", st)
            print("power cut of an uninterrupted run: " + ("; ".join(probs) if probs else "holds") + f" {info}")
            return
        call, nf, nt = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        passed = failed = 0
        for n in range(nf, nt + 1):
            st = life(top, img, call, n, False)
            probs, info = check(top, img + ".cut", st)
            os.unlink(img + ".cut")
            tag = f"{MODE} kill at {call} #{n} (killed={st['killed']}, promised={st['promised']}, {st['note']})"
            if probs:
                failed += 1
                print(f"FAIL {tag}: " + "; ".join(probs), flush=True)
            else:
                passed += 1
                if info:
                    print(f"ok   {tag}: {info}", flush=True)
            if not st["killed"]:
                print(f"{call} #{n}: not killed; stop", flush=True)
                break
        print(f"{passed} passed, {failed} failed")
    finally:
        shutil.rmtree(top, ignore_errors=True)


main()
