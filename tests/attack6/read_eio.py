#!/usr/bin/env python3
"""Read errors of value bytes through the mount (the sixth attack's item 4; issue 11: "A read
error is returned to that reader as EIO and reported; it never crashes the daemon or returns
wrong bytes").

The store: kvfs (`segment_bytes=1m`) on a directory in /dev/shm; NF files of seeded random sizes (1 byte .. 6 MiB) and
bytes, each written in seeded random pieces (so values have several extents), fsync'd, then a
2.5 MiB file `tail` (so the last segments, which a strict open reads, hold no other file); unmount
and mount again (the kernel's page cache of the files goes with the mount).
Modes (argument 2):
  inject  for each SPEC (default `1+ 1 2 3 5 8`: strace's `when=`, counted per thread: every
          daemon thread's N-th pread64) and each FAULT (`error=EIO`, `retval=0`, `retval=100`: the
          call not made, a short count returned), for each file: its pages are dropped
          (posix_fadvise DONTNEED), strace attaches to every daemon thread with
          `inject=pread64:FAULT:when=SPEC`, the file is read whole in 1 MiB preads; then strace
          detaches, the pages are dropped, and the file is read again.
  flip    a byte of each file's value is flipped in its segment while unmounted (the store
          was closed cleanly, so the checkpoint covers them); the mount, then every file read in
          4 KiB preads.
Checked: every byte a read returns is the file's (never other bytes, never a short read before
the end: zeros where data was are wrong bytes); a failed read is EIO; the daemon lives; after
the fault every file reads back whole (inject) / every 4 KiB block but the flipped one's chunk
reads back right and that one (or its neighbour: a chunk is 4 KiB of a record's data, not of
the file) is EIO, again and again (flip).
usage: read_eio.py BUILD inject|flip [SPEC ...]   (root: FUSE, strace)
env: SEED (printed), NF (6)
Prints one line per failing case and 'N passed, M failed'."""
import os, random, shutil, subprocess, sys, tempfile, time

B = os.path.realpath(sys.argv[1])
KVFS, KV = f"{B}/kvfs", f"{B}/kv_cli"
MODE = sys.argv[2]
SPECS = sys.argv[3:] or ["1+", "1", "2", "3", "5", "8"]
FAULTS = ["error=EIO", "retval=0", "retval=100"]
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
NF = int(os.environ.get("NF", "6"))
print(f"seed {SEED} mode {MODE} nf {NF}", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def content(i):
    r = random.Random(f"{SEED}-{i}")
    n = [1, 4095, 4097, 200000, 1 << 20, 6 << 20][i % 6] + r.randrange(3)
    return r.randbytes(n)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return open(f"/proc/{pid}/stat").read().split(") ")[1].split()[0] != "Z"


def drop(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_all(path, want, step):
    """(problems, errors seen): reads [0, len) in `step` preads, checking every byte returned"""
    probs, errs = [], []
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < len(want):
            try:
                b = os.pread(fd, step, off)
            except OSError as e:
                if e.errno != 5:
                    probs.append(f"a read at {off} fails with {e.strerror}, not EIO")
                errs.append(off)
                off += step
                continue
            if b != want[off:off + len(b)]:
                bad = next(j for j in range(len(b)) if j >= len(want) - off or b[j] != want[off + j])
                probs.append(f"a read at {off} returned {len(b)} bytes, wrong from byte {off + bad}")
                break
            if not b:
                probs.append(f"a read at {off} returned 0 bytes (end of file) before the end {len(want)}")
                break
            off += len(b)
    finally:
        os.close(fd)
    return probs, errs


def mount(d, m):
    r = sh(KVFS, "-o", "segment_bytes=1m", d, m)
    if r.returncode:
        raise SystemExit(f"mount fails: {r.stderr}")
    return int(open(f"{d}/LOCK").read().split()[0])


def make(top):
    d, m = f"{top}/d", f"{top}/m"
    os.makedirs(m, exist_ok=True)
    mount(d, m)
    for i in range(NF):
        data = content(i)
        r = random.Random(f"{SEED}-w{i}")
        fd = os.open(f"{m}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644)
        off = 0
        while off < len(data):
            n = min(len(data) - off, r.choice([1, 100, 4096, 5000, 65536, 300000]))
            os.pwrite(fd, data[off:off + n], off)
            off += n
        os.fsync(fd)
        os.close(fd)
    # the last segments hold only this: a strict open reads the segment holding the checkpoint's
    # LSN, and damage there refuses the open (DURABILITY 4.5) instead of reaching a reader
    with open(f"{m}/tail", "wb") as fh:
        fh.write(b"t" * (5 << 19))
        os.fsync(fh.fileno())
    sh(KVFS, "--unmount", m, check=True)
    return d, m


def inject(top, d, m):
    passed = failed = 0
    pid = mount(d, m)
    try:
        for spec in SPECS:
            for fault in FAULTS:
                hits = eios = 0
                for i in range(NF):
                    want = content(i)
                    drop(f"{m}/f{i}")
                    err = open(f"{top}/st.err", "w")
                    sp = subprocess.Popen(["strace", "-f", "-p", str(pid), "-o", f"{top}/tr", "-e", "trace=pread64",
                                           "-e", f"inject=pread64:{fault}:when={spec}"], stderr=err)
                    ntask = len(os.listdir(f"/proc/{pid}/task"))
                    for _ in range(200):
                        if "attached" in open(f"{top}/st.err").read():  # "attached with N threads"
                            break
                        time.sleep(0.05)
                    probs, errs = read_all(f"{m}/f{i}", want, 1 << 20)
                    sp.terminate()
                    sp.wait()
                    hit = open(f"{top}/tr").read().count("INJECTED")
                    hits += hit
                    eios += len(errs)
                    if not alive(pid):
                        probs.append("the daemon died")
                        print(f"FAIL {fault} when={spec} f{i}: " + "; ".join(probs), flush=True)
                        return passed, failed + 1
                    drop(f"{m}/f{i}")
                    p2, e2 = read_all(f"{m}/f{i}", want, 1 << 20)
                    if p2 or e2:
                        probs.append(f"after the fault: {p2[:2]} {len(e2)} EIO")
                    if probs:
                        failed += 1
                        print(f"FAIL {fault} when={spec} f{i} ({len(want)} bytes, {hit} injected, {len(errs)} EIO): "
                              + "; ".join(probs[:3]), flush=True)
                    else:
                        passed += 1
                print(f"{fault} when={spec}: {hits} calls injected, {eios} reads got EIO", flush=True)
    finally:
        sh(KVFS, "--unmount", m)
    return passed, failed


def flip(top, d, m):
    passed = failed = 0
    # one byte in the middle of each file of more than 4 KiB, found by its bytes in the segments
    segs = sorted(n for n in os.listdir(d) if n.startswith("wal-"))
    flipped = {}
    for i in range(NF):
        want = content(i)
        if len(want) < 8192:
            continue
        at = len(want) // 2
        pat = want[at:at + 64]
        for s in segs:
            b = bytearray(open(f"{d}/{s}", "rb").read())
            j = b.find(pat)
            if j >= 0:
                b[j] ^= 0x01
                open(f"{d}/{s}", "wb").write(b)
                flipped[i] = at
                break
    print(f"flipped a byte of {sorted(flipped)} at {flipped}", flush=True)
    pid = mount(d, m)
    try:
        for rnd in range(2):
            for i in range(NF):
                want = content(i)
                drop(f"{m}/f{i}")
                probs, errs = read_all(f"{m}/f{i}", want, 4096)
                if i in flipped:
                    blk = flipped[i] // 4096 * 4096
                    # a chunk is 4 KiB of the record's data, not of the file: it may span two blocks
                    if blk not in errs or any(abs(e - blk) > 4096 for e in errs):
                        probs.append(f"EIO at {errs[:4]}, expected the block at {blk} (and at most its neighbours)")
                elif errs:
                    probs.append(f"EIO at {errs[:4]} in an undamaged file")
                if not alive(pid):
                    probs.append("the daemon died")
                if probs:
                    failed += 1
                    print(f"FAIL flip round {rnd} f{i}: " + "; ".join(probs[:3]), flush=True)
                else:
                    passed += 1
    finally:
        sh(KVFS, "--unmount", m)
    c = sh(KV, "--check", d)
    print(f"--check exits {c.returncode}: {c.stdout.strip().splitlines()[-3:]}", flush=True)
    return passed, failed


def main():
    top = tempfile.mkdtemp(prefix="a6re.", dir="/dev/shm")
    try:
        d, m = make(top)
        passed, failed = (inject if MODE == "inject" else flip)(top, d, m)
        print(f"{passed} passed, {failed} failed")
    finally:
        shutil.rmtree(top, ignore_errors=True)


main()
