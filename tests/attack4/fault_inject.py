#!/usr/bin/env python3
"""System-call failures injected into kv_cli (strace -e inject=CALL:error=ERR:when=N), one case
per N: a sync=always workload of PUTs, DELs, SNAPs and FLUSHes with small segments and
checkpoints, so the log rotates, checkpoints are written and segments deleted.

Checked for every case (DURABILITY 5.1, 5.2, 5.3, 3.1):
  - once an fdatasync/pwrite/fallocate/ftruncate of a log segment (wal-*.log) failed, no later
    PUT, DEL or FLUSH is answered OK in that process (a failed fdatasync is sticky; strace -y
    names the file of the failed call);
  - kv_cli does not crash (exit status 0 or 1, never a signal);
  - a later process (no fault) opens the store and holds exactly the writes answered OK, plus at
    most the one write whose own flush failed (it is in the log, just not acknowledged);
  - the store then takes a write and a FLUSH.

usage: fault_inject.py KV_CLI CALL ERRNO N_FROM N_TO [STEP]
  e.g. fault_inject.py build/kv_cli fdatasync EIO 1 60
Prints one line per failing case, 'calls: N' (how many such calls the workload made) and
'N passed, M failed'."""
import os, random, re, shutil, subprocess, sys, tempfile

KV, CALL, ERR, NF, NT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
STEP = int(sys.argv[6]) if len(sys.argv) > 6 else 1
SEED = int(os.environ.get("SEED", "7"))
OPTS = os.environ.get("OPTS", "sync=always,segment_bytes=65536,checkpoint_bytes=131072")
print(f"seed {SEED} opts {OPTS}", file=sys.stderr, flush=True)
LOGCALLS = {"fdatasync", "fsync", "pwrite64", "write", "fallocate", "ftruncate"}


def workload(seed, n=300):
    rnd = random.Random(seed)
    ops, live = [], []
    for i in range(n):
        r = rnd.random()
        if r < 0.6:
            k = f"k{rnd.randrange(25)}"
            ops.append(("PUT", k, f"{k}@{i}:" + "v" * rnd.choice([0, 10, 900, 7000, 30000])))
        elif r < 0.8:
            k = f"k{rnd.randrange(25)}"
            ops.append(("DEL", k, None))
        elif r < 0.9:
            ops.append(("SNAP", None, None))
        else:
            ops.append(("FLUSH", None, None))
    return ops


def script(ops):
    out = []
    for o, k, v in ops:
        out.append(f"PUT {k} {v}" if o == "PUT" else f"DEL {k}" if o == "DEL" else o)
    return "\n".join(out) + "\n"


def apply(state, op):
    o, k, v = op
    if o == "PUT":
        state[k] = v
    elif o == "DEL":
        state.pop(k, None)


def read_all(d):
    keys = [f"k{i}" for i in range(25)]
    p = subprocess.run([KV, "--raw", d], input="".join(f"GET {k}\n" for k in keys),
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        return None, p.stderr.strip()
    lines = p.stdout.split("\n")
    return {k: l for k, l in zip(keys, lines) if l != "(nil)"}, ""


def main():
    ops = workload(SEED)
    if os.environ.get("PRINT_SCRIPT"):  # the workload's input, to rerun one case by hand
        sys.stdout.write(script(ops))
        return
    top = tempfile.mkdtemp(prefix="finj.", dir="/dev/shm")
    passed = failed = 0
    maxcalls = 0
    for n in range(NF, NT + 1, STEP):
        d = os.path.join(top, "s")
        shutil.rmtree(d, ignore_errors=True)
        tr = os.path.join(top, "trace")
        p = subprocess.run(["strace", "-f", "-y", "-qq", "-o", tr, "-e", f"trace={CALL},pwrite64",
                            "-e", f"inject={CALL}:error={ERR}:when={n}", KV, "-o", OPTS, d],
                           input=script(ops), capture_output=True, text=True, timeout=600)
        trace = open(tr).read().splitlines()
        maxcalls = max(maxcalls, sum(1 for l in trace if f" {CALL}(" in l))
        inj = [l for l in trace if "(INJECTED)" in l]
        probs = []
        if p.returncode not in (0, 1):
            probs.append(f"kv_cli exit {p.returncode}: {p.stderr.strip()[-300:]}")
        replies = p.stdout.split("\n")
        if not inj:
            passed += 1
            continue
        m = re.search(r"<([^>]*)>", inj[0])
        path = m.group(1) if m else "?"
        # which op got the first ERR
        first_err = next((i for i in range(len(ops)) if i < len(replies) and replies[i].startswith("ERR")), None)
        sticky = os.path.basename(path).startswith("wal-") and CALL in LOGCALLS
        # a new segment's header (32 bytes at 0) that fails to be written or synced fails the
        # write that needed the segment and the store stays writable (DURABILITY 5.3)
        at = trace.index(inj[0])
        before = [l for l in trace[:at] if "pwrite64(" in l and f"<{path}>" in l]
        if CALL == "pwrite64":
            rotation = inj[0].rsplit(" = ", 1)[0].rstrip().endswith(", 32, 0)")
        else:
            rotation = bool(before) and before[-1].rsplit(" = ", 1)[0].rstrip().endswith(", 32, 0)")
        if rotation:
            sticky = False
        if not any(r for r in replies if r):  # the open itself failed: nothing was answered
            if p.returncode != 1 or not p.stderr.strip():
                probs.append(f"nothing answered, exit {p.returncode}, stderr {p.stderr.strip()[-200:]!r}")
            sticky = False
        if sticky and first_err is not None:
            late_ok = [i for i in range(first_err + 1, len(ops))
                       if i < len(replies) and replies[i] == "OK" and ops[i][0] in ("PUT", "DEL", "FLUSH")]
            if late_ok:
                probs.append(f"after the failed {CALL} of {os.path.basename(path)} (op {first_err}: "
                             f"{replies[first_err][:60]}) op {late_ok[0]} {ops[late_ok[0]][0]} was answered OK "
                             f"({len(late_ok)} in all)")
        closing = len(replies) > len(ops) - 1 and p.returncode == 1 and "clos" in p.stderr
        if sticky and first_err is None and not closing:  # (a failure at the close is reported)
            probs.append(f"the {CALL} of {os.path.basename(path)} failed and no command was answered ERR")
        # what a later process must find
        errs = [i for i in range(len(ops)) if i >= len(replies) - 1 or not (replies[i] in ("OK", "(nil)"))]
        cands = []
        base = {}
        for i, op in enumerate(ops):
            if i not in errs:
                apply(base, op)
        cands.append(dict(base))
        for e in errs:
            if ops[e][0] not in ("PUT", "DEL"):
                continue
            st = {}
            for i, op in enumerate(ops):
                if i not in errs or i == e:
                    apply(st, op)
            cands.append(st)
        got, err = read_all(d)
        if got is None:
            probs.append(f"the next open failed: {err[-300:]}")
        elif got not in cands:
            diff = [k for k in set(got) | set(base) if got.get(k) != base.get(k)]
            probs.append(f"the next open holds another state than the writes answered OK "
                         f"(keys differing from it: {sorted(diff)[:5]}; {len(errs)} ops answered ERR)")
        if got is not None:
            q = subprocess.run([KV, d], input="PUT after x\nFLUSH\nGET after\n", capture_output=True,
                               text=True, timeout=120)
            if q.stdout != "OK\nOK\nx\n":
                probs.append(f"the reopened store does not take a write: {q.stdout!r} {q.stderr.strip()[-200:]}")
        if probs:
            failed += 1
            print(f"FAIL {CALL}={ERR} when={n} [{os.path.basename(path)}]: " + "; ".join(probs), flush=True)
        else:
            passed += 1
    print(f"calls: {maxcalls}")
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
