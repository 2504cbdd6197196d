#!/usr/bin/env python3
"""A kill, then a power cut, at every I/O call of a clean close that writes a checkpoint
(DESIGN.md 4, DURABILITY 5.4), on a real disk (loop-mounted ext4, `commit=600`).

Life 1 (kv_cli, sync=batch, SEGMENT segments) writes NPUT PUTs of ~VAL bytes over NKEY keys with
DELs mixed in and a FLUSH every 10 ops (the ledger), enough log for the close to checkpoint
(4 MiB with the default checkpoint_bytes), then EXIT. strace attaches to it just before EXIT (so
N counts the close's calls only), and case N kills life 1 (SIGKILL) at the N-th CALL of the close,
then the power is cut (tests/powercut: the image sits on a disk that keeps only what the loop
device flushed; PC_KEEP=P keeps each unflushed 4 KiB sector with probability P). Optionally (RECOVER_KILL=M) life 2
opens the cut image and is killed at its M-th CALL, then the power is cut again.
The last copy must open strictly and hold every key's acknowledged state (everything before EXIT
was FLUSHed, so exactly the ledger), and a second open must say the same.
usage: close_powercut.py KV_CLI CALL [N_FROM N_TO [STEP]]     (root: loop devices)
env: SIZE (64M), NPUT (700), VAL (8000), NKEY (150), SEGMENT (1m), SEED (printed), RECOVER_KILL
Prints one line per failing case and 'N passed, M failed'."""
import os, random, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KV = os.path.realpath(sys.argv[1])
CALL = sys.argv[2]
SIZE = os.environ.get("SIZE", "64M")
NPUT = int(os.environ.get("NPUT", "700"))
VAL = int(os.environ.get("VAL", "8000"))
NKEY = int(os.environ.get("NKEY", "150"))
OPTS = "sync=batch,segment_bytes=" + os.environ.get("SEGMENT", "1m")
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
RK = int(os.environ.get("RECOVER_KILL", "0"))
print(f"seed {SEED} call {CALL} size {SIZE} nput {NPUT} val {VAL} opts {OPTS} recover_kill {RK}",
      flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def ops():
    r = random.Random(SEED)
    out, st = [], {}
    for i in range(NPUT):
        k = f"k{r.randrange(NKEY)}"
        if r.random() < 0.1:
            out.append(f"DEL {k}")
            st.pop(k, None)
        else:
            v = f"{k}@{i}:" + chr(97 + r.randrange(26)) * r.randrange(VAL // 4, VAL * 7 // 4)
            out.append(f"PUT {k} {v}")
            st[k] = v
        if i % 10 == 9:
            out.append("FLUSH")
    out.append("FLUSH")
    return out, st


class Img:
    def __init__(self, path, mnt):
        self.mnt = mnt
        os.makedirs(mnt, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", path, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, mnt, check=True)

    def close(self):
        sh("umount", self.mnt)
        sh("losetup", "-d", self.loop)


def life1(d, cmds, trace, n):
    """runs life 1; strace attaches just before EXIT, so N counts the close's own calls.
    Returns (CALLs in the close, killed, problem)"""
    p = subprocess.Popen([KV, "-o", OPTS, "--raw", d], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for c in cmds:
        p.stdin.write(c + "\n")
        p.stdin.flush()
        r = p.stdout.readline()
        if r not in ("OK\n", "(nil)\n"):
            p.kill()
            p.wait()
            return 0, True, f"life 1 before EXIT: {c[:20]} -> {r!r}"
    pre = ["strace", "-f", "-o", trace, "-e", f"trace={CALL}"]
    if n:
        pre += ["-e", f"inject={CALL}:signal=SIGKILL:when={n}"]
    s = subprocess.Popen(pre + ["-p", str(p.pid)], stderr=subprocess.PIPE, text=True)
    while "attached" not in s.stderr.readline():   # "attached with N threads": EXIT after it
        pass
    p.stdin.write("EXIT\n")
    p.stdin.flush()
    p.stdout.readline()
    p.stdin.close()
    p.wait()
    s.wait()
    killed = p.returncode in (137, -9)
    calls = sum(1 for ln in open(trace) if ln.split("(")[0].split()[-1] == CALL and "resumed" not in ln)
    return calls, killed, None


def check(d, st, keys, what):
    p = sh(KV, "--raw", d, input="".join(f"GET {k}\n" for k in keys), timeout=300)
    if p.returncode != 0:
        return [f"{what}: the store does not open: {p.stderr.strip()[-300:]}"]
    got = dict(zip(keys, p.stdout.split("\n")))
    bad = [k for k in keys if got[k] != st.get(k, "(nil)")]
    if bad:
        return [f"{what}: {len(bad)} keys differ from the ledger, first {bad[0]}: holds "
                f"{got[bad[0]][:16]!r}, acknowledged {st.get(bad[0], '(nil)')[:16]!r}"]
    return []


def one(top, cmds, st, n):
    img = f"{top}/case.img"
    if os.path.exists(img):
        os.unlink(img)
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    keys = [f"k{i}" for i in range(NKEY)]
    disk = powercut.Disk(img, top)
    m = Img(disk.path, f"{top}/mnt")
    try:
        before, killed, prob = life1(f"{m.mnt}/s", cmds, f"{top}/trace", n)
        ckpts = sorted(f for f in os.listdir(f"{m.mnt}/s") if f.startswith("ckpt"))
        disk.cut(img + ".cut")  # the power cut
    finally:
        m.close()
        disk.close()
    if prob:
        return before, killed, [prob], ckpts
    if RK:
        disk = powercut.Disk(img + ".cut", top)
        m = Img(disk.path, f"{top}/mnt")
        try:
            sh("strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={CALL}",
               "-e", f"inject={CALL}:signal=SIGKILL:when={RK}", KV, "-o", OPTS, f"{m.mnt}/s", "SIZE")
            disk.cut(img + ".cut2")  # the second power cut
        finally:
            m.close()
            disk.close()
        os.replace(img + ".cut2", img + ".cut")
    m = Img(img + ".cut", f"{top}/mnt")
    try:
        probs = check(f"{m.mnt}/s", st, keys, "after the power cut")
        if not probs:
            probs = check(f"{m.mnt}/s", st, keys, "second open")
    finally:
        m.close()
        os.unlink(img + ".cut")
    return before, killed, probs, ckpts


def main():
    cmds, st = ops()
    top = tempfile.mkdtemp(prefix="a5close.", dir="/var/tmp")
    try:
        before, killed, probs, ckpts = one(top, cmds, st, 0)
        print(f"clean run: {before} {CALL} calls in the close; "
              f"checkpoints before the close: {ckpts}; {probs or 'ledger holds'}", flush=True)
        if len(sys.argv) < 4:
            return
        nf, nt = int(sys.argv[3]), int(sys.argv[4])
        step = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        passed = failed = 0
        for i in range(nf, nt + 1, step):
            n = i
            b, killed, probs, _ = one(top, cmds, st, n)
            if probs:
                failed += 1
                print(f"FAIL kill at {CALL} #{i} of the close: " + "; ".join(probs),
                      flush=True)
            else:
                passed += 1
            if not killed:
                print(f"{CALL} #{i}: the close made fewer such calls; stop", flush=True)
                break
        print(f"{passed} passed, {failed} failed")
    finally:
        shutil.rmtree(top)


main()
