#!/usr/bin/env python3
"""Damage in what the cleaner wrote: its RELOCATE records and the checkpoint written after them
(the sixth attack's item 2). tmpfs; one byte flipped per case, on a copy.

The store (kv_cli, `segment_bytes=65536,sync=batch`): 64 keys of ~4 KB (distinct bytes), FLUSH,
3 of every 4 deleted, FLUSH; the background cleaner then relocates the live quarter of every
segment (RELOCATE records) and checkpoints; the script waits for `cleaner_moved_bytes` in STATS.
STORE (argument 2):
  covered  then 10 small PUTs, FLUSH, EXIT: the RELOCATE records lie below the checkpoint the
           cleaner wrote (their victims deleted); the close wrote another.
  pending  kv_cli runs under strace, killed at its first rename (the cleaner's checkpoint being
           put in place): the RELOCATE records lie after the newest checkpoint and their victims
           are still there. A second kv_cli (`cleaner=off`) PUTs 10 small keys, FLUSHes and is
           killed (no close checkpoint).
Cases (argument 3, default all): for every RELOCATE record, one flipped byte in each of: its
record head, its key, a piece descriptor (length, source segment, source position), a chunk
checksum, its value bytes (first, middle, last chunk); `sector`: the 512-byte sector holding the
middle of its data zeroed (at most 2 keys may hold bytes there); `ckpt`: every 7th byte of the newest
checkpoint.
Checked per case: a strict open either refuses (`--check` exits 1) or serves every key its
right value; `--salvage` then serves every key its right value or none — never wrong bytes, and
a strict open and `--check` succeed after it; a flipped value byte or chunk checksum costs at
most the one key whose chunk fails (DURABILITY 4.2, 4.5), a flipped framing byte of a covered
record no key (every chunk still checks against its own checksum). Lost keys are counted; a key lost to damage in a
RELOCATE record whose source segment (the victim, still on disk in `pending`) holds the same
bytes intact is reported as "lost, though its bytes are intact in the victim".
usage: reloc_damage.py KV_CLI covered|pending [head key piece crc value ckpt]
No randomness: no seed. Prints one line per failing case and 'N passed, M failed'."""
import os, shutil, subprocess, sys, tempfile, time, random

KV = os.path.realpath(sys.argv[1])
STORE = sys.argv[2]
KINDS = sys.argv[3:] or ["head", "key", "piece", "crc", "value", "sector", "ckpt"]
OPTS = "segment_bytes=65536,sync=batch"
KEYS = [f"k{i:03d}" for i in range(64)]
SMALL = [f"a{i:03d}" for i in range(10)]
print(f"no seed; store {STORE}; kinds {KINDS}", flush=True)


def val(k):
    r = random.Random(k)
    return "".join(chr(97 + r.randrange(26)) for _ in range(4000 + r.randrange(200)))


def want():
    w = {k: val(k) for k in KEYS[::4]}
    w.update({k: f"small-{k}" for k in SMALL})
    return w


def run(args, inp=None, pre=()):
    return subprocess.run(list(pre) + [KV] + args, input=inp, capture_output=True, text=True, timeout=300)


class Cli:
    def __init__(self, d, opts, pre=()):
        self.p = subprocess.Popen(list(pre) + [KV, "-o", opts, "--raw", d], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def cmd(self, line):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except OSError:
            return None
        r = self.p.stdout.readline()
        return r[:-1] if r else None

    def stats(self):
        n = self.cmd("STATS")
        if n is None:
            return None
        d = {}
        for _ in range(int(n)):
            k, v = self.p.stdout.readline()[:-1].split(": ", 1)
            d[k] = v
        return d


def build(d):
    pre = []
    if STORE == "pending":
        pre = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename",
               "-e", "inject=rename:signal=SIGKILL:when=1"]
    c = Cli(d, OPTS, pre)
    for k in KEYS:
        assert c.cmd(f"PUT {k} {val(k)}") == "OK"
    assert c.cmd("FLUSH") == "OK"
    for i, k in enumerate(KEYS):
        if i % 4:
            assert c.cmd(f"DEL {k}") == "OK"
    assert c.cmd("FLUSH") == "OK"
    t0 = time.time()
    while time.time() - t0 < 60:
        st = c.stats()
        if st is None or int(st.get("cleaner_moved_bytes", 0)) > 0 and STORE == "covered":
            break
        time.sleep(0.2)
    if STORE == "covered":
        time.sleep(1)
        for k in SMALL:
            assert c.cmd(f"PUT {k} small-{k}") == "OK"
        assert c.cmd("FLUSH") == "OK"
        assert c.cmd("EXIT") == "OK"
        c.p.wait()
    else:
        c.p.wait()
        assert c.p.returncode in (-9, 137), f"kv_cli was not killed at the cleaner's checkpoint ({c.p.returncode})"
        c = Cli(d, OPTS + ",cleaner=off")
        for k in SMALL:
            assert c.cmd(f"PUT {k} small-{k}") == "OK"
        assert c.cmd("FLUSH") == "OK"
        c.p.kill()
        c.p.wait()


def records(d):
    """(segment name, offset, lsn, payload bytes) of every record"""
    out = []
    for seg in sorted(n for n in os.listdir(d) if n.startswith("wal-") and n.endswith(".log")):
        b = open(os.path.join(d, seg), "rb").read()
        off = 32
        while off + 32 <= len(b):
            ln = int.from_bytes(b[off + 4:off + 8], "little")
            lsn = int.from_bytes(b[off + 8:off + 16], "little")
            if lsn == 0:
                break
            out.append((seg, off, lsn, b[off + 32:off + 32 + ln]))
            off += 32 + ln
    return out


def relocations(d):
    """per RELOCATE op: dict(seg, rec, keyat, key, pieces=[(at, off, len, src_seg, src_pos)], crcat, dataat, dlen)"""
    res = []
    for seg, roff, lsn, p in records(d):
        cnt = int.from_bytes(p[0:4], "little")
        at = 4
        for _ in range(cnt):
            op = p[at]
            klen = int.from_bytes(p[at + 1:at + 3], "little")
            key = p[at + 3:at + 3 + klen].decode("latin1")
            keyat = at + 3
            at += 3 + klen
            if op == 1:
                mlen = int.from_bytes(p[at:at + 2], "little")
                at += 2 + mlen
                vlen = int.from_bytes(p[at:at + 8], "little")
                at += 8 + 4 * ((vlen + 4095) // 4096) + vlen
            elif op == 2:
                pass
            elif op == 3:  # WRITE
                dlen = int.from_bytes(p[at + 8:at + 16], "little")
                at += 16 + 4 * ((dlen + 4095) // 4096) + dlen
            elif op == 4:  # TRUNCATE
                at += 8
            elif op == 5:  # SETMETA
                mlen = int.from_bytes(p[at:at + 2], "little")
                at += 2 + mlen
            elif op in (6, 7):  # RENAME, RENAME_PREFIX
                tlen = int.from_bytes(p[at:at + 2], "little")
                at += 2 + tlen
            elif op == 8:  # PUNCH
                at += 16
            elif op == 9:
                n = int.from_bytes(p[at:at + 4], "little")
                pcs = []
                for j in range(n):
                    q = at + 4 + 32 * j
                    pcs.append((q, *(int.from_bytes(p[q + 8 * f:q + 8 * f + 8], "little") for f in range(4))))
                at += 4 + 32 * n
                dlen = sum(x[2] for x in pcs)
                crcat = at
                at += 4 * ((dlen + 4095) // 4096)
                res.append(dict(seg=seg, rec=roff, lsn=lsn, keyat=keyat, key=key, pieces=pcs, crcat=crcat,
                                dataat=at, dlen=dlen))
                at += dlen
            else:
                raise SystemExit(f"op {op} in {seg}@{roff}: not an op of FORMAT 4")
    return res


def flip(path, at):
    b = bytearray(open(path, "rb").read())
    if at < 0:  # -(sector offset) - 1: zero that sector
        at = -at - 1
        b[at:at + 512] = bytes(min(512, len(b) - at))
        open(path, "wb").write(b)
        return
    b[at] ^= 0x20
    open(path, "wb").write(b)


def state(d):
    keys = KEYS + SMALL
    p = run(["--raw", d], "".join(f"GET {k}\n" for k in keys))
    if p.returncode != 0:
        return None, p.stderr.strip()
    return dict(zip(keys, p.stdout.split("\n"))), ""


def judge(d, w):
    """problems, lost keys"""
    probs = []
    chk = run(["--check", d])
    if chk.returncode == 0:
        st, e = state(d)
        if st is None:
            probs.append(f"--check clean but a strict open fails: {e[-200:]}")
        else:
            wrong = [k for k in st if st[k] != w.get(k, "(nil)")]
            if wrong:
                probs.append(f"--check clean but a strict open serves other values for {wrong[:5]}")
        return probs, []
    sal = run(["--salvage", d])
    st, e = state(d)
    if st is None:
        return [f"after salvage (exit {sal.returncode}) a strict open fails: {e[-200:]}"], []
    wrong = [k for k in st if st[k] not in (w.get(k, "(nil)"), "(nil)")]
    if wrong:
        probs.append(f"after salvage wrong values for {wrong[:5]}")
    lost = [k for k in st if st[k] == "(nil)" and k in w]
    if run(["--check", d]).returncode != 0:
        probs.append("--check after salvage is not clean")
    return probs, lost


def main():
    top = tempfile.mkdtemp(prefix="a6rd.", dir="/dev/shm")
    base = f"{top}/base"
    build(base)
    w = want()
    rel = relocations(base)
    probs, lost = judge_copy(top, base, None, w)
    assert not probs and not lost, f"the undamaged store: {probs} {lost}"
    cks = sorted(n for n in os.listdir(base) if n.startswith("ckpt-"))
    ck = cks[-1] if cks else None
    segs = sorted(n for n in os.listdir(base) if n.startswith("wal-"))
    print(f"store {STORE}: {len(rel)} RELOCATE operations in {sorted(set(r['seg'] for r in rel))}; newest "
          f"checkpoint {ck}; segments {segs[0]}..{segs[-1]} ({len(segs)})", flush=True)
    passed = failed = 0
    lossy = {}
    cases = []
    for r in rel:
        path = f"{top}/c/{r['seg']}"
        q = r["pieces"][0]
        kinds = {"head": [r["rec"] + 5], "key": [r["rec"] + 32 + r["keyat"]],
                 "piece": [r["rec"] + 32 + q[0] + 8, r["rec"] + 32 + q[0] + 16, r["rec"] + 32 + q[0] + 24],
                 "crc": [r["rec"] + 32 + r["crcat"]],
                 "value": [r["rec"] + 32 + r["dataat"] + x for x in (0, r["dlen"] // 2, r["dlen"] - 1)],
                 # a zeroed 512-byte sector in the middle of its data (negative: a sector, not a byte)
                 "sector": [-((r["rec"] + 32 + r["dataat"] + r["dlen"] // 2) // 512 * 512) - 1]}
        for kind in KINDS:
            for at in kinds.get(kind, []):
                cases.append((kind, r["seg"], at, r))
    if "ckpt" in KINDS and ck:
        size = os.path.getsize(f"{base}/{ck}")
        for at in range(0, size, 7):
            cases.append(("ckpt", ck, at, None))
    for kind, fname, at, r in cases:
        probs, lost = judge_copy(top, base, (fname, at), w)
        tag = f"{kind} {fname}@{at}" + (f" (RELOCATE of {r['key']}, lsn {r['lsn']})" if r else "")
        victim_ok = []
        if r and lost and STORE == "pending":
            for k in lost:
                if k == r["key"]:
                    src = [f"wal-{p[3]:016x}.log" for p in r["pieces"]]
                    if all(os.path.exists(f"{base}/{s}") for s in src):
                        victim_ok.append(k)
        # What one byte may cost: a value byte or a chunk checksum, the key whose chunk fails
        # (DURABILITY 4.2, 4.5); a byte of a covered record's framing, no key: every chunk of every
        # value in it still checks against its own checksum (FORMAT 4: DATA), and the checkpoint
        # says where each extent lies without the record's framing.
        # (after the checkpoint a chunk checksum is framing: DURABILITY 4.2, every later record lost)
        allowed = {"value": 1, "sector": 2, "crc": 1 if STORE == "covered" else None,
                   "ckpt": None}.get(kind, 0 if STORE == "covered" else None)
        if allowed is not None and len(lost) > allowed:
            probs.append(f"one {'zeroed sector' if kind == 'sector' else 'flipped byte'} cost {len(lost)} keys {lost[:6]} (at most {allowed} hold bytes "
                         f"that fail a checksum)")
        if probs:
            failed += 1
            print(f"FAIL {tag}: " + "; ".join(probs), flush=True)
        else:
            passed += 1
            if victim_ok:
                print(f"LOSS {tag}: salvage lost {lost[:6]}, of which {victim_ok} whose bytes are intact in the "
                      f"victim segment still on disk", flush=True)
        lossy.setdefault(kind, []).append(len(lost))
    for kind, ls in lossy.items():
        print(f"{kind}: {len(ls)} cases, keys lost per case: min {min(ls)} max {max(ls)}, "
              f"cases losing any {sum(1 for x in ls if x)}", flush=True)
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


def judge_copy(top, base, dmg, w):
    d = f"{top}/c"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(base, d)
    if dmg:
        flip(f"{d}/{dmg[0]}", dmg[1])
    return judge(d, w)


main()
