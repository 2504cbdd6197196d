#!/usr/bin/env python3
"""kill -9 at the N-th call of one kind during a salvage, then a power cut, on ext4 (the sixth
attack's item 1; attack4's salvage_crash.py did the kill on tmpfs, with no power cut).

Template (made once per run): a loop-mounted ext4 image (`commit=600`, so the journal commits only
when something syncs) holding a store of 16 keys written four times over (values 0..21000 bytes,
64 KiB segments, so the checkpoint deleted the older segments), 4 deleted, SNAP, then 5 small PUTs
and 10 PUTs of 21 KB (3-4 segments after the checkpoint), an overwrite and a delete, FLUSH, EXIT;
then one damage, and the image unmounted. DAMAGE (argument 2):
  entry   one byte of the 6th checkpoint entry's key           (salvage rewrites the checkpoint)
  header  one byte of the checkpoint's header (its salt)       (e11c's header salvage)
  log     one byte of a small record's key after the checkpoint, with valid records after it
          (framing damage: its segment is copied aside and cut, later ones renamed aside)
  value   one value byte of a 21 KB record after the checkpoint (value damage: that key only)
  old     one value byte of a live value (k005) in a segment the checkpoint covers (salvage_values)
  full    a 24 MiB disk filled with ~4 KB values (1 MiB segments) until a PUT is refused, one
          value byte of the 11th segment zeroed, `space.reserve` removed (what attack5 finding 1
          says a full disk needs before salvage can copy the segment aside)
First case: an uninterrupted salvage, then the power cut: a strict open must give what it
reported (it returned, so it is durable) and `--check` be clean. Then each case: a copy of the
template is mounted; `kv_cli --salvage` runs under
`strace -e inject=CALL:signal=SIGKILL:when=N`; then the power cut (tests/powercut: only what the
loop device flushed is kept; PC_KEEP=P keeps each unflushed 4 KiB sector with probability P), the
cut image mounted and checked:
  - a strict open either refuses, or gives (on every key but the damaged ones) what an
    uninterrupted salvage of the template gives;
  - a second salvage (uninterrupted) then gives exactly what an uninterrupted salvage gives;
  - `--check` is then clean;
  - for entry/header/log damage, a whole copy of the damaged file (byte for byte) is still there.
usage: salvage_powercut.py KV_CLI DAMAGE [CALL ...]     (root: loop devices)
       env STEP (every STEP-th N, default 1), NMAX (default 400). No randomness: no seed.
Prints one line per failing case and 'N passed, M failed'."""
import hashlib, os, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KV = os.path.realpath(sys.argv[1])
DAMAGE = sys.argv[2]
CALLS = sys.argv[3:] or ["openat", "pwrite64", "write", "fdatasync", "fsync", "rename", "unlink",
                         "ftruncate", "fallocate"]
STEP = int(os.environ.get("STEP", "1"))
NMAX = int(os.environ.get("NMAX", "400"))
OPTS = "segment_bytes=65536,checkpoint_bytes=1G,sync=none"
KEYS = [f"k{i:03d}" for i in range(16)] + [f"a{i:03d}" for i in range(5)] + [f"b{i:03d}" for i in range(10)]
print(f"no seed; damage {DAMAGE}; calls {CALLS} step {STEP}", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


class Img:
    def __init__(self, path, mnt):
        self.path, self.mnt = path, mnt
        os.makedirs(mnt, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", path, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, mnt, check=True)

    def close(self):
        sh("umount", self.mnt, check=True)
        sh("losetup", "-d", self.loop)


def run(args, inp=None, pre=()):
    return subprocess.run(list(pre) + [KV] + args, input=inp, capture_output=True, text=True, timeout=600)


def bigval(k):
    return (f"{k}-big-" * 4000)[:21000]


def build_full(d):
    """a 24 MiB disk filled by PUTs of ~4 KB (1 MiB segments) until one is refused; one value byte
    of a middle segment zeroed; space.reserve removed (attack5 finding 1: salvage needs its room)"""
    lines = [f"PUT k{i} " + (f"v{i}-" * 1000) for i in range(3000)] + ["FLUSH"]
    p = run(["-o", "segment_bytes=1m", "--raw", d], "\n".join(lines) + "\n")
    acked = [i for i, r in enumerate(p.stdout.split("\n")[:3000]) if r == "OK"]
    KEYS[:] = [f"k{i}" for i in range(3000)]
    seg = sorted(n for n in os.listdir(d) if n.startswith("wal-"))[10]
    with open(f"{d}/{seg}", "r+b") as f:  # in place: the disk is full
        f.seek(500000)
        f.write(b"\0")
    os.unlink(f"{d}/space.reserve")
    print(f"full: {len(acked)} PUTs acknowledged; a byte of {seg} zeroed; space.reserve removed", flush=True)
    return seg


def build(d):
    if DAMAGE == "full":
        return build_full(d)
    lines = []
    for gen in range(4):
        for k in KEYS[:16]:
            n = [0, 7, 300, 5000, 21000][(int(k[1:]) + gen) % 5]
            lines.append(f"PUT {k} " + (f"{k}.{gen}." * (n // 6 + 1))[:n])
    for k in KEYS[12:16]:
        lines.append(f"DEL {k}")
    lines.append("SNAP")
    for k in KEYS[16:21]:
        lines.append(f"PUT {k} after-{k}")
    for k in KEYS[21:]:
        lines.append(f"PUT {k} {bigval(k)}")
    lines += ["PUT k001 rewritten", "DEL k002", "FLUSH", "EXIT"]
    p = run(["-o", OPTS, d], "\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    ck = [n for n in os.listdir(d) if n.startswith("ckpt-")][0]
    path = os.path.join(d, ck)
    b = bytearray(open(path, "rb").read())
    segs = sorted(n for n in os.listdir(d) if n.startswith("wal-"))
    if DAMAGE == "entry":
        off = 48
        for _ in range(5):
            klen = int.from_bytes(b[off + 4:off + 6], "little")
            mlen = int.from_bytes(b[off + 6:off + 8], "little")
            ne = int.from_bytes(b[off + 8:off + 12], "little")
            off += 20 + klen + mlen + 40 * ne
        b[off + 21] ^= 0x10
        open(path, "wb").write(b)
        return ck
    if DAMAGE == "header":
        b[20] ^= 0x01
        open(path, "wb").write(b)
        return ck
    pat = {"log": b"\x04\x00a001", "value": bigval("b003")[:12].encode(),
           "old": None}[DAMAGE]
    if DAMAGE == "old":
        # a live value below the checkpoint: 3000 bytes after k004.3 begins lies in k005.3 (5000 bytes)
        pat = b"k004.3.k004.3."
    for seg in segs:
        sp = os.path.join(d, seg)
        s = bytearray(open(sp, "rb").read())
        i = s.find(pat)
        if i >= 0:
            s[i + (3 if DAMAGE == "log" else 3000)] ^= 0x01
            open(sp, "wb").write(s)
            return seg
    raise SystemExit(f"pattern {pat!r} not found in {segs}")


def state(d):
    p = run(["--raw", d], "".join(f"GET {k}\n" for k in KEYS))
    if p.returncode != 0:
        return None
    return tuple(p.stdout.split("\n")[:len(KEYS)])


def digests(d):
    have = set()
    for nm in os.listdir(d):
        if nm.startswith(("wal-", "ckpt-")) and ".tmp" not in nm:
            have.add(hashlib.sha1(open(os.path.join(d, nm), "rb").read()).hexdigest())
    return have


def main():
    top = tempfile.mkdtemp(prefix="a6salv.", dir="/var/tmp")
    tmpl = f"{top}/template.img"
    sh("truncate", "-s", "24M" if DAMAGE == "full" else "32M", tmpl, check=True)
    sh("mkfs.ext4", "-q", "-F", tmpl, check=True)
    m = Img(tmpl, f"{top}/mnt")
    try:
        damaged = build(f"{m.mnt}/s")
        dhash = hashlib.sha1(open(f"{m.mnt}/s/{damaged}", "rb").read()).hexdigest()
    finally:
        m.close()
    shutil.copyfile(tmpl, f"{top}/ref.img")
    m = Img(f"{top}/ref.img", f"{top}/mnt")
    try:
        strict = run(["--check", f"{m.mnt}/s"])
        sal = run(["--salvage", f"{m.mnt}/s"], pre=["strace", "-f", "-c", "-o", f"{top}/count", "-e",
                                                   "trace=" + ",".join(CALLS)])
        want = state(f"{m.mnt}/s")
        counts = {}
        for line in open(f"{top}/count"):
            f = line.split()
            if len(f) >= 5 and f[-1] in CALLS:
                counts[f[-1]] = int(f[3])
    finally:
        m.close()
    assert want is not None, "an uninterrupted salvage does not leave an openable store"
    lost = [KEYS[i] for i in range(len(KEYS)) if want[i] == "(nil)"]
    print(f"damage {DAMAGE} in {damaged}: check exit {strict.returncode} ({strict.stdout.strip()[-160:]}); "
          f"an uninterrupted salvage keeps {len(KEYS) - len(lost)}/{len(KEYS)} keys (absent: {lost}); "
          f"its calls: {counts}", flush=True)
    passed = failed = 0
    # the salvage run through, then the power cut: what it reported done must be durable
    img = f"{top}/case.img"
    disk = powercut.Disk(tmpl, top)
    m = Img(disk.path, f"{top}/mnt")
    try:
        p = run(["--salvage", f"{m.mnt}/s"])
        disk.cut(img + ".cut")  # the power cut
    finally:
        m.close()
        disk.close()
    m = Img(img + ".cut", f"{top}/mnt")
    try:
        st = state(f"{m.mnt}/s")
        chk = run(["--check", f"{m.mnt}/s"])
        if p.returncode != 0 or st != want or chk.returncode != 0:
            failed += 1
            diff = [KEYS[i] for i in range(len(KEYS)) if st is None or st[i] != want[i]]
            print(f"FAIL {DAMAGE} power cut after a salvage that returned {p.returncode}: strict open "
                  f"{'refuses' if st is None else 'differs in ' + str(diff[:6]) if diff else 'matches'}; "
                  f"--check exits {chk.returncode}: {chk.stdout.strip()[-200:]}", flush=True)
        else:
            passed += 1
    finally:
        m.close()
        os.unlink(img + ".cut")
    for call in CALLS:
        for n in range(1, min(counts.get(call, 0), NMAX) + 1, STEP):
            img = f"{top}/case.img"
            disk = powercut.Disk(tmpl, top)
            m = Img(disk.path, f"{top}/mnt")
            try:
                p = run(["--salvage", f"{m.mnt}/s"],
                        pre=["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}",
                             "-e", f"inject={call}:signal=SIGKILL:when={n}"])
                disk.cut(img + ".cut", seed=f"{call}-{n}")  # the power cut
            finally:
                m.close()
                disk.close()
            killed = p.returncode in (-9, 137)
            probs = []
            m = Img(img + ".cut", f"{top}/mnt")
            try:
                d = f"{m.mnt}/s"
                st = state(d)
                if st is not None:
                    diff = [KEYS[i] for i in range(len(KEYS)) if st[i] != want[i] and KEYS[i] not in lost]
                    if diff:
                        probs.append(f"a strict open after the cut gives another state (keys {diff[:6]})")
                p2 = run(["--salvage", d])
                st2 = state(d)
                if st2 != want:
                    diff = [KEYS[i] for i in range(len(KEYS)) if st2 is None or st2[i] != want[i]]
                    probs.append(f"a second salvage gives another state (keys {diff[:6]}; exit {p2.returncode}): "
                                 f"{(p2.stdout.strip() + ' ' + p2.stderr.strip())[-300:]}")
                chk = run(["--check", d])
                if chk.returncode != 0:
                    probs.append(f"--check after the second salvage exits {chk.returncode}: {chk.stdout.strip()[-200:]}")
                if DAMAGE in ("entry", "header", "log", "full") and dhash not in digests(d):
                    probs.append(f"no whole copy of {damaged} is left")
            finally:
                m.close()
                os.unlink(img + ".cut")
            if probs:
                failed += 1
                print(f"FAIL {DAMAGE} kill at {call} #{n} (killed={killed}): " + "; ".join(probs), flush=True)
            else:
                passed += 1
        print(f"{call}: {counts.get(call, 0)} calls", flush=True)
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
