#!/usr/bin/env python3
"""Media damage that zeroes one aligned block (4 KiB, or 512 bytes with BLOCK=512) of a log
segment after the store acknowledged every record in it, for every block of the segment that
holds records. Each case on a copy of the store; three ways the first life ends:
  close  - a clean close (EXIT: a close mark vouches for everything);
  kill   - kill -9 after the FLUSH was answered (sync=batch, FLUSH every 20 writes);
  always - sync=always, kill -9 after the last reply (every record acknowledged by itself).
Every record was acknowledged, so a zeroed block is media damage. What kvfs promises
(DURABILITY 4.1b and Known limits, segment version 3): after a clean close (the close mark in a
block of its own) a strict open refuses, or gives every write (the mark's block: it loses only
the mark); after a crash the same, except that a zeroed block near the end may be cut as a torn
tail — then a prefix of the writes is kept, the lost ones being those whose records the block
reaches (synced in any number of rounds) and, after it, only records of the last flush round
(nothing vouches for them) — and --check, run first, names the file and the offset of the cut and
does not say a plain "clean".
Checked as well: --check agrees with the strict open; --salvage keeps every record before the
damage and never a wrong value.

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
    opts = "segment_bytes=1M,checkpoint_bytes=1G," + ("sync=always" if mode == "always" else "sync=batch")
    p = subprocess.Popen([KV, "-o", opts, d], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    for i in range(N):
        p.stdin.write(f"PUT k{i:04d} {val(i)}\n")
        p.stdin.flush()
        assert p.stdout.readline() == "OK\n"
        if mode == "kill" and i % 20 == 19:
            p.stdin.write("FLUSH\n")
            p.stdin.flush()
            assert p.stdout.readline() == "OK\n"
    if mode == "close":
        p.stdin.write("EXIT\n")
        p.stdin.flush()
        p.stdout.readline()
        p.wait()
    else:
        if mode == "kill":
            p.stdin.write("FLUSH\n")
            p.stdin.flush()
            assert p.stdout.readline() == "OK\n"
        p.kill()
        p.wait()


def last_round(mode):
    """The writes of the last flush round before the crash (none after a clean close)."""
    if mode == "always":
        return {N - 1}
    if mode == "kill":
        return set(range(N - (N % 20 or 20), N))
    return set()


def records(raw):
    """(start, end) of each data record of a segment (the close mark and its padding left out)."""
    out, off = [], 32
    while off + 32 <= len(raw):
        ln = int.from_bytes(raw[off + 4:off + 8], "little")
        if ln == 0 and raw[off:off + 4] == bytes(4):
            break  # the end, or the padding before the close mark
        if raw[off + 24] == 2:
            break  # the close mark
        out.append((off, off + 32 + ln))
        off += 32 + ln
    return out


def tail_cut(out):
    """(file, offset, torn) of the --check report's cut tail, or None."""
    for line in out.splitlines():
        if line.startswith("torn tail: ") and line != "torn tail: none":
            w = line.split()
            if w[2] == "none":  # "torn tail: none (N zero bytes of unused preallocation at F offset O)"
                return w[10], int(w[12].rstrip(")")), False
            return w[5], int(w[7]), True  # "torn tail: N bytes at F offset O (then ...): ..."
    return None


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
        build(base, mode)
        seg = sorted(n for n in os.listdir(base) if n.startswith("wal-"))
        assert len(seg) == 1, seg
        seg = seg[0]
        raw = open(os.path.join(base, seg), "rb").read()
        end = len(raw.rstrip(b"\0"))
        recs = records(raw)
        assert len(recs) == N, (len(recs), N)
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
            chk = run(["--check", d])  # first: the open that follows cuts a torn tail away
            got, err = read_all(d)
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
                # the limit: after a crash, a zeroed block may cut the records it reaches (those
                # ending after its start), synced in any round, and the records after it of the
                # last flush round (nothing written after that round's fdatasync vouches)
                last = last_round(mode)
                limit = missing == list(range(N - len(missing), N)) and \
                    all(recs[i][1] > off for i in missing) and \
                    all(i in last for i in missing if recs[i][0] >= off + BLOCK)
                cut = tail_cut(chk.stdout)
                if missing and (mode == "close" or not limit):
                    probs.append(f"strict open succeeded without {len(missing)} acknowledged writes "
                                 f"(k{missing[0]:04d}..k{missing[-1]:04d}); stderr {err[-200:]!r}; "
                                 f"--check exit {chk.returncode}: {chk.stdout.strip().splitlines()[-1] if chk.stdout.strip() else ''}")
                elif missing and (cut is None or cut[0] != seg or cut[1] > off):
                    probs.append(f"the cut of {len(missing)} writes is not reported with {seg} and an "
                                 f"offset up to {off}: {chk.stdout!r}")
                elif missing and cut[2] and "status: clean\n" in chk.stdout:
                    probs.append("--check says a plain 'status: clean' after cutting a torn tail")
                outcome = "opened whole" if not missing else (
                    f"opened without the last {len(missing)} (torn tail reported)" if cut and cut[2] else
                    f"opened without the last {len(missing)} (zeros from a record's start: "
                    "reported as unused preallocation)")
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
