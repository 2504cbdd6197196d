#!/usr/bin/env python3
"""Crash sequences around the cleaner (issue 11): a kv_cli workload whose overwrites keep the
cleaner, checkpoints and segment deletion busy, killed (strace inject=SYSCALL:signal=SIGKILL:when=N)
or failed (inject=SYSCALL:error=EIO:when=N) at the N-th call of one system call; then a second
process recovers (the page cache survives), checks the state is a prefix holding every acknowledged
write, writes more and flushes; then a power cut (tests/powercut: only what the loop device
flushed is kept; PC_KEEP=P keeps each unflushed 4 KiB sector with probability P); the cut image
must hold a prefix with every acknowledged write of both lives.

usage: clean_crash.py KV_CLI SYSCALL MODE N_FROM N_TO [SEED [STEP]]   (MODE: kill | eio)
Needs root (loop mounts). Prints one line per case and 'N passed, M failed'."""
import os, random, subprocess, sys, tempfile, shutil
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KV, CALL, MODE, NF, NT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
SEED = int(sys.argv[6]) if len(sys.argv) > 6 else 1
STEP = int(sys.argv[7]) if len(sys.argv) > 7 else 1
OPTS = "sync=always,segment_bytes=65536,checkpoint_bytes=131072"
print(f"seed {SEED}", flush=True)

def workload(seed, tag, n):
    rnd = random.Random(seed)
    ops = []
    cold = []
    for i in range(n):
        r = rnd.random()
        if r < 0.55:
            k = f"{tag}hot{rnd.randrange(3)}"
            ops.append(("PUT", k, f"{k}@{i}:" + "h" * rnd.choice([3000, 9000, 20000])))
        elif r < 0.85:
            k = f"{tag}cold{i}"
            cold.append(k)
            ops.append(("PUT", k, f"{k}@{i}:" + "c" * rnd.choice([500, 6000])))
        elif cold:
            k = cold.pop(rnd.randrange(len(cold)))
            ops.append(("DEL", k, None))
    return ops

def script(ops, flush_end=False):
    s = "".join(f"PUT {k} {v}\n" if o == "PUT" else f"DEL {k}\n" for o, k, v in ops)
    return s + ("FLUSH\n" if flush_end else "")

def failed_ops(out, ops):
    lines = out.split("\n")
    return [i for i in range(min(len(ops), len(lines) - 1)) if lines[i].startswith("ERR")]

def acked(out, ops):
    """index of the last op whose reply came back (sync=always: it is durable), -1 if none"""
    lines = out.split("\n")
    last = -1
    for i, _ in enumerate(ops):
        if i < len(lines) - 1 and lines[i] in ("OK", "(nil)"):
            last = i
        elif i < len(lines) - 1 and lines[i].startswith("ERR"):
            continue  # a failed write; the ones after it may still be acknowledged
        else:
            break
    return last

def states(ops, base=None, skip=()):
    st = dict(base or {})
    yield -1, dict(st)
    for i, (o, k, v) in enumerate(ops):
        if i in skip:
            pass
        elif o == "PUT":
            st[k] = v
        else:
            st.pop(k, None)
        yield i, dict(st)

def read_state(d, keys):
    inp = "".join(f"GET {k}\n" for k in keys)
    p = subprocess.run([KV, "-o", OPTS, d], input=inp.encode(), capture_output=True, timeout=600)
    if p.returncode:
        return None, p.stderr.decode(errors="replace")
    vals = p.stdout.decode().split("\n")[:len(keys)]
    return {k: v for k, v in zip(keys, vals) if v != "(nil)"}, p.stderr.decode(errors="replace")

def prefix_of(state, ops, base, need, failed=()):
    """the prefix lengths (op index) whose state equals state, at least need; each failed op
    (an ERR reply) may be in it or not"""
    import itertools
    failed = list(failed)[:10]
    for r in range(len(failed) + 1):
        for skip in itertools.combinations(failed, r):
            got = [i for i, st in states(ops, base, set(skip)) if st == state and i >= need]
            if got:
                return got
    return []

def sh(*a):
    subprocess.run(a, check=True, capture_output=True)

def one(n, tmpl, work):
    cimg = f"{work}/crash.img"
    m1, m2 = f"{work}/m1", f"{work}/m2"
    os.makedirs(m1, exist_ok=True); os.makedirs(m2, exist_ok=True)
    disk = powercut.Disk(tmpl, work)
    loop = subprocess.run(["losetup", "-f", "--show", disk.path], check=True, capture_output=True,
                          text=True).stdout.strip()
    sh("mount", loop, m1)
    d = f"{m1}/s"
    if sorted(os.listdir(m1)) != ["lost+found"]:
        # loop devices are shared with everyone on this machine: not the fresh image we made
        sh("umount", m1)
        subprocess.run(["losetup", "-d", loop])
        disk.close()
        return f"HARNESS: {m1} is not the fresh image just made: {sorted(os.listdir(m1))}"
    try:
        ops1 = workload(SEED, "a", 400)
        inj = f"inject={CALL}:" + ("signal=SIGKILL" if MODE == "kill" else "error=EIO") + f":when={n}"
        p = subprocess.run(["strace", "-f", "-o", "/dev/null", "-e", inj, KV, "-o", OPTS, d],
                           input=script(ops1).encode(), capture_output=True, timeout=600)
        a1 = acked(p.stdout.decode(errors="replace"), ops1)
        keys1 = sorted({k for _, k, _ in ops1})
        st, err = read_state(d, keys1)
        if st is None:
            keep = f"/tmp/clean_crash-fail-{CALL}-{MODE}-{n}"
            shutil.copytree(d, keep + ".store", dirs_exist_ok=True)
            open(keep + ".out", "w").write(p.stdout.decode(errors="replace") + "\n--stderr--\n" + p.stderr.decode(errors="replace"))
            return f"life 2 cannot open after {CALL} {MODE} #{n} (acked {a1}): {err.strip()}; kept in {keep}.store"
        f1 = failed_ops(p.stdout.decode(errors="replace"), ops1)
        pre = prefix_of(st, ops1, None, a1, f1)
        if not pre:
            keep = f"/tmp/clean_crash-fail-{CALL}-{MODE}-{n}"
            shutil.copytree(d, keep + ".store", dirs_exist_ok=True)
            open(keep + ".out", "w").write(p.stdout.decode(errors="replace") + "\n--stderr--\n" + p.stderr.decode(errors="replace"))
            near = min((sum(1 for k in set(s) | set(st) if s.get(k) != st.get(k)), i) for i, s in states(ops1))
            ns = [s for i, s in states(ops1) if i == near[1]][0]
            diff = [f"{k}: has {(st.get(k) or 'none')[:16]} want {(ns.get(k) or 'none')[:16]}"
                    for k in sorted(set(ns) | set(st)) if ns.get(k) != st.get(k)]
            return (f"after {CALL} {MODE} #{n}: recovered state is no prefix holding op {a1}; nearest "
                    f"prefix {near[1]} differs in {diff[:6]}; store kept in {keep}.store")
        base = st  # what life 2 starts from
        ops2 = workload(SEED + 1, "b", 120)
        p2 = subprocess.run([KV, "-o", OPTS, d], input=script(ops2, True).encode(),
                            capture_output=True, timeout=600)
        out2 = p2.stdout.decode(errors="replace")
        a2 = len(ops2) - 1 if out2.split("\n")[len(ops2)] == "OK" else acked(out2, ops2)
        f2 = failed_ops(out2, ops2)
        # the power cut: what the disk holds, the page cache of m1 and unflushed writes lost
        disk.cut(cimg, seed=f"{SEED}-{n}")
    finally:
        sh("umount", m1)
        subprocess.run(["losetup", "-d", loop])
        disk.close()
    sh("mount", "-o", "loop", cimg, m2)
    try:
        keys = keys1 + sorted({k for _, k, _ in ops2})
        st2, err2 = read_state(f"{m2}/s", keys)
        if st2 is None:
            return f"after {CALL} {MODE} #{n}, recovery, FLUSH, power cut: cannot open: {err2.strip()}"
        ok = prefix_of(st2, ops2, base, a2, f2)
        if not ok:
            return (f"after {CALL} {MODE} #{n} (life 1 acked {a1}), life 2 acked {a2}, power cut: "
                    f"no prefix; keys lost: {sorted(set(base) - set(st2))[:5]}")
        return None
    finally:
        sh("umount", m2)

work = tempfile.mkdtemp(prefix="cc-", dir="/tmp")
tmpl = f"{work}/tmpl.img"
sh("truncate", "-s", "96M", tmpl); sh("mkfs.ext4", "-q", "-F", tmpl)
passed = failed = 0
for n in range(NF, NT + 1, STEP):
    r = one(n, tmpl, work)
    if r:
        failed += 1
        print("FAIL", r, flush=True)
    else:
        passed += 1
        print(f"ok {CALL} {MODE} #{n}", flush=True)
shutil.rmtree(work)
print(f"{passed} passed, {failed} failed")
