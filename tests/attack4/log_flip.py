#!/usr/bin/env python3
"""Media damage (one flipped byte) in the log written after the checkpoint: every byte that is
not value filler (record heads, payload framing, keys, chunk checksums, the segment header) and
a sample of value bytes, each on a copy of the store. The store: a checkpoint, then values of
several sizes (one spanning many 4 KiB chunks) and small keys, all flushed, the process killed
(no close mark, no close checkpoint). DURABILITY 1.3, 4.2-4.5, 4.8 and FORMAT.md 7-8:
  - a strict open refuses, or opens with every key whole except ones whose reads fail with EIO;
    a read never returns wrong bytes;
  - --check exits 1 when the strict open refused;
  - --salvage, then a strict open succeeds; every key holds its value or is absent or reads
    EIO (never wrong bytes); every key whose record is intact is kept (the damage costs at most
    the keys of the damaged record);
  - --check is clean after the salvage.

usage: log_flip.py KV_CLI [SAMPLE]   (SAMPLE value bytes, default 150)"""
import os, random, shutil, subprocess, sys, tempfile

KV = sys.argv[1]
SAMPLE = int(sys.argv[2]) if len(sys.argv) > 2 else 150
SEED = int(os.environ.get("SEED", "5"))
print(f"seed {SEED}", flush=True)
rnd = random.Random(SEED)
FILL = "Q"
LAST = "v9"  # the key of the last record
VALS = {f"v{i}": f"<v{i}>" + FILL * n for i, n in enumerate([0, 3, 100, 4090, 4100, 20000, 9000, 50, 1, 7000])}


def run(args, inp=None):
    return subprocess.run([KV] + args, input=inp, capture_output=True, text=True, timeout=120)


def build(d):
    lines = [f"PUT old{i} old-{i}" for i in range(5)] + ["SNAP"]
    lines += [f"PUT {k} {v}" for k, v in VALS.items()] + ["FLUSH"]
    p = subprocess.Popen([KV, "-o", "segment_bytes=1M,sync=batch", d], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    for l in lines:
        p.stdin.write(l + "\n")
        p.stdin.flush()
        assert p.stdout.readline() == "OK\n"
    p.kill()
    p.wait()


def read_all(d):
    keys = list(VALS) + [f"old{i}" for i in range(5)]
    p = run(["--raw", d], "".join(f"GET {k}\n" for k in keys))
    if p.returncode not in (0, 1) or not p.stdout:
        return None, p.stderr.strip()
    return dict(zip(keys, p.stdout.split("\n"))), p.stderr.strip()


def want(k):
    return VALS[k] if k in VALS else f"old-{k[3:]}"


def main():
    top = tempfile.mkdtemp(prefix="logflip.", dir="/dev/shm")
    base = f"{top}/base"
    build(base)
    segs = sorted(n for n in os.listdir(base) if n.startswith("wal-"))
    seg = segs[-1]
    raw = open(f"{base}/{seg}", "rb").read()
    end = len(raw.rstrip(b"\0"))
    first = raw.find(b"<v0>") - 64  # around the first record after the checkpoint
    first = max(first, 0)
    framing = [i for i in range(first, end) if raw[i] != ord(FILL)]
    filler = [i for i in range(first, end) if raw[i] == ord(FILL)]
    offs = sorted(set(framing) | set(rnd.sample(filler, min(SAMPLE, len(filler)))))
    print(f"{seg}: {end} bytes, {len(framing)} non-filler bytes from {first}, {len(offs)} cases", flush=True)
    passed = failed = 0
    outcomes = {}
    for off in offs:
        d = f"{top}/c"
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d, ignore=shutil.ignore_patterns("space.reserve"))
        b = bytearray(raw)
        b[off] ^= 1 << rnd.randrange(8)
        open(f"{d}/{seg}", "r+b").write(b)
        probs = []
        got, err = read_all(d)
        if got is None:
            strict = "refused"
            chk = run(["--check", d])
            if chk.returncode != 1:
                probs.append(f"strict open refused but --check exits {chk.returncode}")
        else:
            bad = [k for k, v in got.items() if v != want(k) and not v.startswith("ERR")]
            if bad == [LAST] and "torn tail" in err:
                bad = []  # the last record, damaged, is a torn tail: cut and reported (4.1)
            eio = [k for k, v in got.items() if v.startswith("ERR")]
            if bad:
                probs.append(f"strict open serves wrong/missing values: {bad[:4]} ({err[-150:]})")
            strict = f"opened, {len(eio)} EIO"
        sal = run(["--salvage", d])
        got2, err2 = read_all(d)
        if got2 is None:
            probs.append(f"after salvage the store does not open: {err2[-200:]}")
            outcome = strict + "; salvage: no open"
        else:
            wrong = [k for k, v in got2.items() if v not in (want(k), "(nil)") and not v.startswith("ERR")]
            lost = [k for k, v in got2.items() if v != want(k)]
            if wrong:
                probs.append(f"WRONG bytes after salvage: {wrong[:4]}")
            if len(lost) > 2:
                probs.append(f"salvage lost {len(lost)} keys ({lost[:6]}) for one flipped byte: "
                             f"{sal.stdout.strip().splitlines()[-2:] if sal.stdout.strip() else sal.stderr.strip()[-200:]}")
            chk2 = run(["--check", d])
            if chk2.returncode != 0:
                probs.append(f"--check after salvage exits {chk2.returncode}")
            outcome = f"{strict}; salvage lost {len(lost)}"
        outcome = ("value byte: " if raw[off] == ord(FILL) else "framing:    ") + outcome
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if probs:
            failed += 1
            print(f"FAIL flip at {off} (byte {raw[off]:#04x}): " + "; ".join(probs), flush=True)
        else:
            passed += 1
    print("outcomes (cases):")
    for k, v in sorted(outcomes.items()):
        print(f"  {k}: {v}")
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
