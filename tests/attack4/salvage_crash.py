#!/usr/bin/env python3
"""kill -9 at every call of a salvage (strace -e inject=CALL:signal=SIGKILL:when=N, one case per
CALL and N), then what the next steps give (DURABILITY 3.5, 4.4; FORMAT.md 8):
  - a strict open refuses, or gives exactly what an uninterrupted salvage gives;
  - a second salvage gives exactly that, --check is then clean;
  - no file the first salvage would keep is gone: every wal-/ckpt- file of the store before the
    salvage is still there under its name or a .damaged name, byte for byte (what salvage copies
    aside is the whole original).
The store: as ckpt_damage.py (keys overwritten, a SNAP, writes after it, FLUSH); the damage:
DAMAGE=entry (default: one byte of the 6th checkpoint entry's key), DAMAGE=log (one byte of a
record after the checkpoint, with valid records after it), DAMAGE=header (the checkpoint's header).

usage: salvage_crash.py KV_CLI [CALL ...]   (default: every call salvage makes that changes files)"""
import hashlib, os, shutil, subprocess, sys, tempfile

KV = sys.argv[1]
CALLS = sys.argv[2:] or ["openat", "pwrite64", "write", "fdatasync", "fsync", "rename", "unlink",
                         "ftruncate", "fallocate", "close"]
DAMAGE = os.environ.get("DAMAGE", "entry")
OPTS = "segment_bytes=65536,checkpoint_bytes=1G,sync=none"
KEYS = [f"k{i:03d}" for i in range(16)] + [f"a{i:03d}" for i in range(5)]


def run(args, inp=None, pre=()):
    return subprocess.run(list(pre) + [KV] + args, input=inp, capture_output=True, text=True, timeout=300)


def build(base):
    lines = []
    for gen in range(4):
        for k in KEYS[:16]:
            n = [0, 7, 300, 5000, 21000][(int(k[1:]) + gen) % 5]
            lines.append(f"PUT {k} " + (f"{k}.{gen}." * (n // 6 + 1))[:n])
    for k in KEYS[12:16]:
        lines.append(f"DEL {k}")
    lines.append("SNAP")
    for k in KEYS[16:]:
        lines.append(f"PUT {k} after-{k}")
    lines += ["PUT k001 rewritten", "DEL k002", "FLUSH"]
    p = run(["-o", OPTS, base], "\n".join(lines) + "\n")
    assert p.returncode == 0, p.stderr
    ck = [n for n in os.listdir(base) if n.startswith("ckpt-")][0]
    path = os.path.join(base, ck)
    b = bytearray(open(path, "rb").read())
    if DAMAGE == "entry":
        off = 48
        for _ in range(5):
            klen = int.from_bytes(b[off + 4:off + 6], "little")
            mlen = int.from_bytes(b[off + 6:off + 8], "little")
            ne = int.from_bytes(b[off + 8:off + 12], "little")
            off += 20 + klen + mlen + 40 * ne
        b[off + 21] ^= 0x10
        open(path, "wb").write(b)
    elif DAMAGE == "header":
        b[20] ^= 0x01
        open(path, "wb").write(b)
    else:
        seg = sorted(n for n in os.listdir(base) if n.startswith("wal-"))[-1]
        sp = os.path.join(base, seg)
        s = bytearray(open(sp, "rb").read())
        i = s.find(b"after-a001")
        s[i + 3] ^= 0x01
        open(sp, "wb").write(s)
    os.unlink(os.path.join(base, "space.reserve"))


def state(d):
    p = run(["--raw", d], "".join(f"GET {k}\n" for k in KEYS))
    if p.returncode != 0:
        return None
    return tuple(p.stdout.split("\n")[:len(KEYS)])


def files(d):
    out = {}
    for n in os.listdir(d):
        if n.startswith(("wal-", "ckpt-")) and not n.endswith(".tmp"):
            out[n] = hashlib.sha1(open(os.path.join(d, n), "rb").read()).hexdigest()
    return out


def main():
    top = tempfile.mkdtemp(prefix="salcr.", dir="/dev/shm")
    base = os.path.join(top, "base")
    build(base)
    orig = files(base)
    ref = os.path.join(top, "ref")
    shutil.copytree(base, ref)
    sal = run(["--salvage", ref])
    want = state(ref)
    assert want is not None, "an uninterrupted salvage does not leave an openable store"
    print(f"damage {DAMAGE}: an uninterrupted salvage keeps {sum(1 for v in want if v != '(nil)')}"
          f"/{len(KEYS)} keys; it said: {sal.stdout.strip().splitlines()[-2:]}", flush=True)
    passed = failed = 0
    for call in CALLS:
        n = 1
        while True:
            d = os.path.join(top, "c")
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(base, d)
            p = run(["--salvage", d], pre=["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}",
                                            "-e", f"inject={call}:signal=SIGKILL:when={n}"])
            if p.returncode != -9 and p.returncode != 137:
                break  # fewer than n such calls: the salvage ran through
            probs = []
            st = state(d)
            if st is not None and st != want:
                probs.append("a strict open after the kill gives another state than the salvage would")
            p2 = run(["--salvage", d])
            st2 = state(d)
            if st2 != want:
                diff = [KEYS[i] for i in range(len(KEYS)) if st2 is None or st2[i] != want[i]]
                probs.append(f"a second salvage gives another state (keys {diff[:6]}): "
                             f"{p2.stdout.strip().splitlines()[-3:] if p2.stdout.strip() else p2.stderr.strip()[-200:]}")
            chk = run(["--check", d])
            if chk.returncode != 0:
                probs.append(f"--check after the second salvage exits {chk.returncode}")
            have = {}
            for nm in os.listdir(d):
                if nm.startswith(("wal-", "ckpt-")) and ".tmp" not in nm:
                    have.setdefault(hashlib.sha1(open(os.path.join(d, nm), "rb").read()).hexdigest(), nm)
            gone = [nm for nm, h in orig.items() if h not in have and nm.startswith("ckpt-")]
            if gone:
                probs.append(f"no whole copy of {gone} is left")
            if probs:
                failed += 1
                print(f"FAIL kill at {call} #{n}: " + "; ".join(probs), flush=True)
            else:
                passed += 1
            n += 1
        print(f"{call}: {n - 1} calls", flush=True)
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
