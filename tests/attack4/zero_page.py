#!/usr/bin/env python3
"""Media damage that zeroes one aligned block (4 KiB, or 512 bytes with BLOCK=512) of a log
segment after the store acknowledged every record in it, for every block of the segment that
holds records. Each case on a copy of the store; three ways the first life ends:
  close  - a clean close (EXIT: a close mark vouches for everything);
  kill   - kill -9 after the FLUSH was answered (sync=batch, FLUSH every 20 writes);
  always - sync=always, kill -9 after the last reply (every record acknowledged by itself).
Every record was acknowledged, so a zeroed block is media damage, never a torn tail
(DURABILITY 4.1, 4.1b, 4.2, and Known limits: since segment version 3 each flush round starts on
a new 4 KiB block, so only the records of the last flush round before a crash can be cut).
Checked: a strict open either refuses, or gives every acknowledged write (it may cut only what
the known limit allows: records of the last flush round); --check agrees with the strict open;
--salvage then keeps every record before the damage and never a wrong value.

usage: zero_page.py KV_CLI [MODE ...]  (default: close kill always)"""
import os, shutil, signal, subprocess, sys, tempfile, time

KV = sys.argv[1]
MODES = sys.argv[2:] or ["close", "kill", "always"]
BLOCK = int(os.environ.get("BLOCK", "4096"))
N = int(os.environ.get("NPUT", "120"))
VMIN = int(os.environ.get("VMIN", "150"))      # value sizes: VMIN + (i * 37) % VSPREAD
VSPREAD = int(os.environ.get("VSPREAD", "900"))


def val(i):
    return f"v{i}:" + "x" * (VMIN + (i * 37) % VSPREAD)


def run(args, inp=""):
    return subprocess.run([KV] + args, input=inp, capture_output=True, text=True, timeout=120)


def build(d, mode):
    opts = "segment_bytes=4M,checkpoint_bytes=1G,"  # 4M: since format 3 a sync=always write takes a block
    opts = opts + ("sync=always" if mode == "always" else "sync=batch")
    p = subprocess.Popen([KV, "-o", opts, d], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pending, last_round = [], []  # records not yet flushed; those of the last flush round
    for i in range(N):
        p.stdin.write(f"PUT k{i:04d} {val(i)}\n")
        p.stdin.flush()
        assert p.stdout.readline() == "OK\n"
        pending.append(i)
        if mode == "always":  # every write is its own flush round
            last_round, pending = [i], []
        elif i % 20 == 19:
            p.stdin.write("FLUSH\n")
            p.stdin.flush()
            assert p.stdout.readline() == "OK\n"
            last_round, pending = pending, []
    if mode == "close":
        p.stdin.write("EXIT\n")
        p.stdin.flush()
        p.stdout.readline()
        p.wait()
        last_round = []  # the close mark vouches for every record (DURABILITY, Known limits)
    else:
        if mode == "kill":
            p.stdin.write("FLUSH\n")
            p.stdin.flush()
            assert p.stdout.readline() == "OK\n"
            if pending:
                last_round = pending
        p.kill()
        p.wait()
    return set(last_round)


def read_all(d):
    p = run(["--raw", d], "".join(f"GET k{i:04d}\n" for i in range(N)))
    if p.returncode != 0:
        return None, p.stderr.strip()
    return p.stdout.split("\n")[:N], ""


def main():
    top = tempfile.mkdtemp(prefix="zpage.", dir="/dev/shm")
    passed = failed = 0
    for mode in MODES:
        base = os.path.join(top, "base-" + mode)
        last_round = build(base, mode)
        seg = sorted(n for n in os.listdir(base) if n.startswith("wal-"))
        assert len(seg) == 1, seg
        seg = seg[0]
        raw = open(os.path.join(base, seg), "rb").read()
        end = len(raw.rstrip(b"\0"))
        outcomes = {}
        for off in range(0, end, BLOCK):
            d = os.path.join(top, "c")
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(base, d)
            b = bytearray(raw)
            b[off:off + BLOCK] = bytes(len(b[off:off + BLOCK]))
            if b == bytearray(raw):
                continue
            open(os.path.join(d, seg), "r+b").write(b)
            probs = []
            got, err = read_all(d)
            chk = run(["--check", d])
            if got is None:
                outcome = "refused"
                if chk.returncode != 1:
                    probs.append(f"strict open refused but --check exits {chk.returncode}")
                sal = run(["--salvage", d])
                got2, err2 = read_all(d)
                if got2 is None:
                    probs.append(f"after salvage still refused: {err2[-200:]}")
                else:
                    for i, v in enumerate(got2):
                        if v not in ("(nil)", val(i)):
                            probs.append(f"salvage serves a wrong value for k{i:04d}")
                            break
                    kept = sum(1 for v in got2 if v != "(nil)")
                    outcome = f"refused; salvage kept {kept}/{N}"
            else:
                missing = [i for i, v in enumerate(got) if v != val(i)]
                wrong = [i for i in missing if got[i] != "(nil)"]
                if wrong:
                    probs.append(f"WRONG value served for k{wrong[0]:04d}")
                lost = [i for i in missing if i not in last_round]
                if lost:
                    probs.append(f"strict open succeeded without {len(lost)} acknowledged writes "
                                 f"(k{lost[0]:04d}..k{lost[-1]:04d}); stderr {err[-200:]!r}; "
                                 f"--check exit {chk.returncode}: {chk.stdout.strip().splitlines()[-1] if chk.stdout.strip() else ''}")
                outcome = "opened whole" if not missing else f"opened without {len(missing)}"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if probs:
                failed += 1
                print(f"FAIL {mode} zeroed [{off}, {off + BLOCK}) of {end} bytes: " + "; ".join(probs), flush=True)
            else:
                passed += 1
        print(f"{mode}: {end} bytes of records; outcomes: " +
              ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())), flush=True)
    print(f"{passed} passed, {failed} failed")
    shutil.rmtree(top)


main()
