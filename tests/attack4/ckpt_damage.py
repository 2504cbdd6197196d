#!/usr/bin/env python3
"""Damage every byte of a checkpoint (format v2), cut it at every size, append to it; then check
what strict open, --check and --salvage do (docs/FORMAT.md 6, 7, 8; DURABILITY 4).

The store: NKEYS keys (default 16) (empty, inline and extent values), overwritten so the cleaner and the
checkpoint delete old segments, a SNAP, then writes after the checkpoint (new keys, an overwrite,
a delete), FLUSHed. For each case, on a copy:
  - strict open must refuse (a damaged checkpoint is damage), or give exactly the model;
  - --check must exit 1;
  - --salvage, then every key is either its model value or absent (never a wrong value), every
    write after the checkpoint is there, and a strict open and --check then succeed;
  - a second --salvage changes nothing.
Prints one line per failing case, a summary of keys lost per damaged region, and
'N passed, M failed'.

usage: ckpt_damage.py KV_CLI [MODE ...]    MODE: flip (default), trunc, append, two
"""
import os, random, shutil, subprocess, sys, tempfile, collections

KV = sys.argv[1]
MODES = sys.argv[2:] or ["flip", "trunc", "append", "two"]
OPTS = "segment_bytes=65536,checkpoint_bytes=1G,sync=none"
SEED = int(os.environ.get("SEED", "1"))
print(f"seed {SEED}", flush=True)
rnd = random.Random(SEED)


def run(args, inp=None):
    p = subprocess.run([KV] + args, input=inp, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


KEYS = [f"k{i:03d}" for i in range(int(os.environ.get("NKEYS", "16")))]
AFTER = [f"a{i:03d}" for i in range(5)]


def val(k, gen):
    n = [0, 7, 300, 5000, 21000][hash((k, gen)) % 5 if False else (int(k[1:]) + gen) % 5]
    return (f"{k}.{gen}." * (n // 6 + 1))[:n]


def build(base):
    model = {}
    lines = []
    for gen in range(4):  # overwrites make dead segments: the checkpoint deletes them
        for k in KEYS:
            v = val(k, gen)
            lines.append(f"PUT {k} {v}")
            model[k] = v
    for k in KEYS[-4:]:
        lines.append(f"DEL {k}")
        model.pop(k)
    lines.append("SNAP")
    covered = dict(model)
    for k in AFTER:
        lines.append(f"PUT {k} after-{k}")
        model[k] = f"after-{k}"
    lines.append("PUT k001 rewritten-after")
    model["k001"] = "rewritten-after"
    lines.append("DEL k002")
    model.pop("k002")
    lines.append("FLUSH")
    rc, out, err = run(["-o", OPTS, base], "\n".join(lines) + "\n")
    assert rc == 0, (rc, out[-200:], err)
    return model, covered


def read_all(d):
    keys = KEYS + AFTER
    rc, out, err = run(["--raw", d], "".join(f"GET {k}\n" for k in keys))
    if rc != 0:
        return None, err.strip()
    outl = out.split("\n")
    got = {}
    for k, line in zip(keys, outl):
        if line != "(nil)":
            got[k] = line
    return got, ""


def copy(base, dst):
    os.mkdir(dst, 0o700)
    for n in os.listdir(base):
        if n != "space.reserve":
            shutil.copy2(os.path.join(base, n), os.path.join(dst, n))


def ckpt_of(d):
    c = sorted(n for n in os.listdir(d) if n.startswith("ckpt-") and n.endswith(".kvc"))
    return os.path.join(d, c[-1])


def judge(case, d, model, covered, region, stats):
    """returns a list of problems"""
    probs = []
    got, err = read_all(d)
    if got is not None and got != model:
        probs.append(f"strict open served a wrong state: {diff(model, got)}")
    rc, out, err2 = run(["--check", d])
    if rc != 1:
        probs.append(f"--check exit {rc} (want 1): {out.strip()[-200:]} {err2.strip()[-200:]}")
    rc, sout, serr = run(["--salvage", d])
    got, err = read_all(d)
    if got is None:
        probs.append(f"strict open after salvage refused: {err[-300:]}")
        return probs, sout + serr
    lost = []
    for k in KEYS + AFTER:
        if k in got and (k not in model or got[k] != model[k]):
            probs.append(f"WRONG value for {k} after salvage: {got[k][:40]!r} want {model.get(k, '(absent)')[:40]!r}")
        elif k not in got and k in model:
            lost.append(k)
    late = [k for k in AFTER + ["k001"] if k in lost]
    if late:
        probs.append(f"salvage lost {len(late)} keys written (and flushed) after the checkpoint ({len(lost)} lost in all)")
    stats[region].append(len(lost))
    rc, out, err3 = run(["--check", d])
    if rc != 0:
        probs.append(f"--check after salvage exit {rc}: {(out + err3).strip()[-300:]}")
    rc2, sout2, serr2 = run(["--salvage", d])
    got2, _ = read_all(d)
    if got2 != got:
        probs.append("a second salvage changed the state")
    if len(lost) > 0 and str(len(lost)) not in sout + serr and "lost" not in (sout + serr):
        probs.append(f"{len(lost)} keys lost but the salvage output does not say so: {(sout + serr).strip()[-300:]}")
    return probs, (sout + serr).strip().replace("\n", " | ")[-400:]


def diff(a, b):
    ks = sorted(set(a) | set(b))
    d = [k for k in ks if a.get(k) != b.get(k)]
    return f"{len(d)} keys differ, first {d[:3]}"


def region_of(off, size, bounds):
    if off < 48:
        return "header"
    if off >= size - 16:
        return "footer"
    for i, (s, e, k) in enumerate(bounds):
        if s <= off < e:
            rel = off - s
            if rel < 4:
                return "entry.crc"
            if rel < 6:
                return "entry.klen"
            if rel < 8:
                return "entry.mlen"
            if rel < 12:
                return "entry.next"
            if rel < 20:
                return "entry.size"
            return "entry.key/ext"
    return "?"


def entry_bounds(path):
    b = open(path, "rb").read()
    n = int.from_bytes(b[24:32], "little")
    off = 48
    out = []
    for _ in range(n):
        klen = int.from_bytes(b[off + 4:off + 6], "little")
        mlen = int.from_bytes(b[off + 6:off + 8], "little")
        ne = int.from_bytes(b[off + 8:off + 12], "little")
        end = off + 20 + klen + mlen + 40 * ne
        out.append((off, end, b[off + 20:off + 20 + klen].decode()))
        off = end
    assert off + 16 == len(b), (off, len(b))
    return out


def main():
    top = tempfile.mkdtemp(prefix="ckdmg.", dir="/dev/shm")
    base = os.path.join(top, "base")
    model, covered = build(base)
    ck = ckpt_of(base)
    raw = open(ck, "rb").read()
    size = len(raw)
    bounds = entry_bounds(ck)
    segs = sorted(n for n in os.listdir(base) if n.startswith("wal-"))
    print(f"checkpoint {os.path.basename(ck)}: {size} bytes, {len(bounds)} entries; segments {segs}", flush=True)
    got, err = read_all(base)
    assert got == model, diff(model, got)
    cases = []
    if "flip" in MODES:
        for off in range(size):
            cases.append(("flip", off))
    if "trunc" in MODES:
        for n in range(size):
            cases.append(("trunc", n))
    if "append" in MODES:
        cases.append(("append", 1))
        cases.append(("append", 16))
    if "two" in MODES:
        for _ in range(int(os.environ.get("TWO", "300"))):
            cases.append(("two", tuple(rnd.sample(range(size), 2))))  # two distinct bytes
    passed = failed = 0
    stats = collections.defaultdict(list)
    for kind, arg in cases:
        d = os.path.join(top, "c")
        shutil.rmtree(d, ignore_errors=True)
        copy(base, d)
        p = ckpt_of(d)
        b = bytearray(raw)
        if kind == "flip":
            b[arg] ^= 0xFF if rnd.random() < 0.5 else (1 << rnd.randrange(8))
            region = region_of(arg, size, bounds)
        elif kind == "trunc":
            b = b[:arg]
            region = "trunc:" + region_of(arg, size, bounds) if arg else "trunc:0"
        elif kind == "append":
            b += b"\0" * arg
            region = "append"
        else:
            for o in arg:
                b[o] ^= 0x5A
            region = "two:" + region_of(min(arg), size, bounds)
        open(p, "wb").write(b)
        probs, sout = judge((kind, arg), d, model, covered, region, stats)
        if probs:
            failed += 1
            print(f"FAIL {kind} {arg} [{region}]: " + "; ".join(probs) + f"  (salvage said: {sout})", flush=True)
        else:
            passed += 1
    print("keys lost by salvage per damaged region (min/median/max over cases):")
    for r in sorted(stats):
        v = sorted(stats[r])
        print(f"  {r:20s} cases {len(v):5d}  lost min {v[0]} median {v[len(v) // 2]} max {v[-1]}")
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
