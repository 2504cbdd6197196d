#!/usr/bin/env python3
"""A crash sequence on a real disk (a loop-mounted ext4 image): life 1 (kv_cli, sync=batch, a FLUSH
every 15 writes, a SNAP every 60, small segments) is killed with SIGKILL after its K-th reply (the
page cache survives); life 2 recovers it and is killed (strace inject=CALL:signal=SIGKILL:when=N)
at the N-th CALL of its recovery; life 3 recovers, writes 20 more and FLUSHes; then the power
goes (tests/powercut: only what the loop device flushed is kept; PC_KEEP=P keeps each unflushed
4 KiB sector with probability P). The cut image, opened by life 4,
must hold a prefix of life 1's writes containing every one a FLUSH acknowledged, and every write
of life 3 (DURABILITY 3.5, 3.6, 3.7).

usage: recovery_crash.py KV_CLI CALL N_FROM N_TO [K]   (root: loop devices)
Prints one line per failing case and 'N passed, M failed'."""
import os, random, shutil, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KV, CALL, NF, NT = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
K = int(sys.argv[5]) if len(sys.argv) > 5 else 170
OPTS = "sync=batch,commit_ms=1000,segment_bytes=64k,checkpoint_bytes=128k"
N1 = 200


def ops1():
    rnd = random.Random(3)
    out = []
    for i in range(N1):
        k = f"k{rnd.randrange(30)}"
        out.append(("PUT", k, f"{k}@{i}:" + "p" * rnd.choice([5, 700, 6000])))
        if i % 15 == 14:
            out.append(("FLUSH", None, None))
        if i % 60 == 59:
            out.append(("SNAP", None, None))
    return out


def line(o):
    return f"PUT {o[1]} {o[2]}\n" if o[0] == "PUT" else o[0] + "\n"


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def read_all(d, keys):
    p = sh(KV, "--raw", d, input="".join(f"GET {k}\n" for k in keys), timeout=120)
    if p.returncode != 0:
        return None, p.stderr.strip()
    return dict(zip(keys, p.stdout.split("\n"))), ""


def prefixes(ops, upto):
    """the states after each prefix of ops (PUTs only matter), from 0 to upto ops"""
    st, out = {}, [{}]
    for o in ops[:upto]:
        if o[0] == "PUT":
            st = dict(st)
            st[o[1]] = o[2]
        out.append(st)
    return out


def one(n, top, ops):
    img, mnt = f"{top}/disk.img", f"{top}/disk"
    os.makedirs(mnt, exist_ok=True)
    if os.path.exists(img):
        os.unlink(img)  # a fresh file each case
    sh("truncate", "-s", "48M", img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    disk = powercut.Disk(img, top)
    loop = sh("losetup", "-f", "--show", disk.path, check=True).stdout.strip()
    probs = []
    try:
        sh("mount", loop, mnt, check=True)
        d = f"{mnt}/s"
        # life 1: killed after its K-th reply
        p = subprocess.Popen([KV, "-o", OPTS, d], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        acked = -1  # index in ops of the last op a FLUSH (or SNAP) made durable
        for i, o in enumerate(ops):
            if i >= K:
                break
            p.stdin.write(line(o))
            p.stdin.flush()
            r = p.stdout.readline()
            if o[0] in ("FLUSH", "SNAP") and r == "OK\n":
                acked = i
        p.kill()
        p.wait()
        # life 2: recovery killed at the n-th CALL
        r2 = sh("strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={CALL}",
                "-e", f"inject={CALL}:signal=SIGKILL:when={n}", KV, "-o", OPTS, d, "SIZE", timeout=120)
        killed = r2.returncode in (137, -9)
        # life 3: recovers, writes 20 more, FLUSH
        more = [f"PUT z{j} life3-{j}\n" for j in range(20)] + ["FLUSH\n"]
        r3 = sh(KV, "-o", OPTS, d, input="".join(more), timeout=120)
        if r3.stdout != "OK\n" * 21:
            probs.append(f"life 3 failed: {r3.stdout[-80:]!r} {r3.stderr.strip()[-200:]}")
        # power cut: nothing runs; what the disk holds
        disk.cut(img + ".cut", seed=f"{n}")
    finally:
        sh("umount", mnt)
        sh("losetup", "-d", loop)
        disk.close()
    loop = sh("losetup", "-f", "--show", img + ".cut", check=True).stdout.strip()
    try:
        sh("mount", loop, mnt, check=True)
        keys = sorted({o[1] for o in ops if o[0] == "PUT"}) + [f"z{j}" for j in range(20)]
        got, err = read_all(f"{mnt}/s", keys)
        if got is None:
            probs.append(f"after the power cut the store does not open: {err[-300:]}")
        else:
            life3 = all(got[f"z{j}"] == f"life3-{j}" for j in range(20))
            if not life3 and not probs:
                probs.append("life 3's flushed writes are lost in the power cut")
            base = {k: v for k, v in got.items() if not k.startswith("z")}
            base = {k: v for k, v in base.items() if v != "(nil)"}
            ok = [i for i, st in enumerate(prefixes(ops, K)) if st == base]
            if not ok:
                probs.append("life 1's writes are not a prefix of what it wrote")
            elif max(ok) < acked:
                probs.append(f"only a prefix of {max(ok)} ops of life 1 survived; a flush acknowledged {acked + 1}")
    finally:
        sh("umount", mnt)
        sh("losetup", "-d", loop)
        os.unlink(img + ".cut")
    return probs, killed


def main():
    ops = ops1()
    top = tempfile.mkdtemp(prefix="reccr.", dir="/var/tmp")
    passed = failed = 0
    for n in range(NF, NT + 1):
        probs, killed = one(n, top, ops)
        if not killed:
            print(f"{CALL} #{n}: recovery made fewer such calls; stop", flush=True)
            if not probs:
                passed += 1
            break
        if probs:
            failed += 1
            print(f"FAIL kill at {CALL} #{n} of recovery: " + "; ".join(probs), flush=True)
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
