#!/usr/bin/env python3
"""A power cut during the full-disk cleaner (DESIGN.md 6), on a real disk.

Template (made once): a loop-mounted ext4 image of SIZE (default 24 MiB, `commit=600` so the
journal commits only when something syncs); kv_cli fills it with PUTs of VAL-byte values (FLUSH
every 4) until a PUT is refused, then closes cleanly.
Each case N: a copy of the template is mounted; kv_cli (life 1) DELs every other key (so every
segment is half live), FLUSHes, then PUTs new keys (FLUSH every 4) until a PUT is refused or 40
are in: those PUTs find the disk full and run checkpoint + cleaner passes. Life 1 runs under
`strace -e inject=CALL:signal=SIGKILL:when=N`; at its death (or its end) the power is cut
(tests/powercut: the image sits on a disk that keeps only what the loop device flushed; dirty
pages of the ext4 page cache and unflushed writes are lost; PC_KEEP=P keeps each unflushed 4 KiB
sector with probability P). The copy is mounted and checked:
  - it opens strictly (kv_cli GET of every key);
  - every key holds its last FLUSH-acknowledged state or a later written one (ledger);
  - deleting keys frees space: after DEL of half the live keys and a FLUSH, 8 new PUTs of VAL
    bytes go in.
usage: cleaner_powercut.py KV_CLI CALL N_FROM N_TO [STEP]     (root: loop devices)
       cleaner_powercut.py KV_CLI count        (how many calls of each kind life 1 makes)
env: SIZE (24M), VAL (16384), OPTS (sync=batch,segment_bytes=1m), SEED (printed)
Prints one line per failing case and 'N passed, M failed'."""
import os, random, shutil, subprocess, sys, tempfile
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)

KV = os.path.realpath(sys.argv[1])
SIZE = os.environ.get("SIZE", "24M")
VAL = int(os.environ.get("VAL", "16384"))
OPTS = os.environ.get("OPTS", "sync=batch,segment_bytes=1m")
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
print(f"seed {SEED} size {SIZE} val {VAL} opts {OPTS}", flush=True)


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def val(tag, i):
    r = random.Random(f"{SEED}-{tag}-{i}")
    head = f"{tag}{i}:"
    return head + "".join(chr(97 + r.randrange(26)) for _ in range(16)) * ((VAL - len(head)) // 16)


class Img:
    """a loop-mounted ext4 image"""
    def __init__(self, path, mnt):
        self.path, self.mnt = path, mnt
        os.makedirs(mnt, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", path, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, mnt, check=True)

    def close(self):
        sh("umount", self.mnt)
        sh("losetup", "-d", self.loop)


class Cli:
    def __init__(self, d, strace=None):
        pre = strace or []
        self.p = subprocess.Popen(pre + [KV, "-o", OPTS, "--raw", d], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def cmd(self, line):
        try:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        r = self.p.stdout.readline()
        return r[:-1] if r else None

    def end(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        err = self.p.stderr.read()
        self.p.wait()
        return self.p.returncode, err


def make_template(top):
    img = f"{top}/template.img"
    sh("truncate", "-s", SIZE, img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    m = Img(img, f"{top}/mnt")
    try:
        c = Cli(f"{m.mnt}/s")
        n = 0
        while True:
            r = c.cmd(f"PUT a{n} {val('a', n)}")
            if r != "OK":
                break
            n += 1
            if n % 4 == 0 and c.cmd("FLUSH") != "OK":
                break
        c.cmd("FLUSH")
        rc, err = c.end()
        print(f"template: {n} PUTs of {VAL} bytes went in, then {r!r}; close exit {rc}", flush=True)
    finally:
        m.close()
    return img, n


class Ledger:
    """per key: the state a FLUSH acknowledged, and every state written after it"""
    def __init__(self, n):
        self.acked = {f"a{i}": val("a", i) for i in range(n)}
        self.later = {k: [] for k in self.acked}
        self.pending = []

    def write(self, k, v):
        self.acked.setdefault(k, None)
        self.later.setdefault(k, []).append(v)
        self.pending.append(k)

    def flushed(self):
        for k in self.pending:
            self.acked[k] = self.later[k][-1]
            self.later[k] = []
        self.pending = []

    def check(self, got):
        bad = []
        for k, a in self.acked.items():
            g = got.get(k)
            if g != a and g not in self.later[k]:
                bad.append(f"{k}: holds {short(g)}, acknowledged {short(a)}")
        return bad


def short(v):
    return "(absent)" if v is None else v[:12] + "..."


def life1(d, strace, led, n_a):
    c = Cli(d, strace)
    log = []
    died = False
    for i in range(0, n_a, 2):
        r = c.cmd(f"DEL a{i}")
        if r is None:
            died = True
            break
        if r == "OK":
            led.write(f"a{i}", None)
        else:
            log.append(f"DEL a{i}: {r}")
    if not died:
        r = c.cmd("FLUSH")
        if r == "OK":
            led.flushed()
        elif r is None:
            died = True
        else:
            log.append(f"FLUSH after the DELs: {r}")
    put = 0
    while not died and put < 40:
        r = c.cmd(f"PUT b{put} {val('b', put)}")
        if r is None:
            died = True
            break
        if r != "OK":
            log.append(f"PUT b{put}: {r}")
            break
        led.write(f"b{put}", val("b", put))
        put += 1
        if put % 4 == 0:
            r = c.cmd("FLUSH")
            if r == "OK":
                led.flushed()
            elif r is None:
                died = True
            else:
                log.append(f"FLUSH: {r}")
                break
    if not died and c.cmd("FLUSH") == "OK":
        led.flushed()
    rc, err = c.end()
    return died or rc in (137, -9), put, log, err


def read_all(d, keys):
    p = sh(KV, "--raw", d, input="".join(f"GET {k}\n" for k in keys), timeout=300)
    if p.returncode != 0:
        return None, p.stderr.strip()
    vals = p.stdout.split("\n")
    return {k: (None if v == "(nil)" else v) for k, v in zip(keys, vals)}, ""


def after_check(d, got):
    """deleting half the live keys must make room for 8 new values"""
    live = sorted(k for k, v in got.items() if v is not None)
    cmds = [f"DEL {k}" for k in live[::2]] + ["FLUSH"]
    cmds += [f"PUT c{j} {val('c', j)}" for j in range(8)] + ["FLUSH"]
    p = sh(KV, "-o", OPTS, "--raw", d, input="\n".join(cmds) + "\n", timeout=300)
    out = p.stdout.split("\n")
    bad = [f"{c.split(' ')[0]} {c.split(' ')[1] if ' ' in c else ''}: {r}"
           for c, r in zip(cmds, out) if r not in ("OK",)]
    if bad or p.returncode != 0:
        return [f"after deleting {len(live[::2])} of {len(live)} live keys: " + "; ".join(bad[:3])
                + f" (exit {p.returncode}) {p.stderr.strip()[-200:]}"]
    return []


def one(top, tmpl, n_a, call, n):
    img = f"{top}/case.img"
    disk = powercut.Disk(tmpl, top)
    led = Ledger(n_a)
    m = Img(disk.path, f"{top}/mnt")
    try:
        st = None
        if call != "none":
            st = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}",
                  "-e", f"inject={call}:signal=SIGKILL:when={n}"]
        killed, put, log, err = life1(f"{m.mnt}/s", st, led, n_a)
        disk.cut(img + ".cut")       # the power cut
    finally:
        m.close()
        disk.close()
    probs = []
    m = Img(img + ".cut", f"{top}/mnt")
    try:
        keys = sorted(led.acked)
        got, e = read_all(f"{m.mnt}/s", keys)
        if got is None:
            probs.append(f"after the power cut the store does not open: {e[-300:]}")
        else:
            probs += led.check(got)[:5]
            if not probs:
                probs += after_check(f"{m.mnt}/s", got)
    finally:
        m.close()
        os.unlink(img + ".cut")
    return probs, killed, put, log, err


def main():
    top = tempfile.mkdtemp(prefix="a5clean.", dir="/var/tmp")
    try:
        tmpl, n_a = make_template(top)
        if sys.argv[2] == "count":
            disk = powercut.Disk(tmpl, top)
            m = Img(disk.path, f"{top}/mnt")
            try:
                led = Ledger(n_a)
                st = ["strace", "-f", "-c", "-o", f"{top}/count",
                      "-e", "trace=pwrite64,write,fdatasync,fsync,rename,renameat,unlink,ftruncate,fallocate,openat"]
                killed, put, log, err = life1(f"{m.mnt}/s", st, led, n_a)
                print(f"life 1: {put} PUTs after the DELs; {log}; {err.strip()[-300:]}")
                print(open(f"{top}/count").read())
            finally:
                m.close()
                disk.close()
            return
        call, nf, nt = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        step = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        passed = failed = 0
        for n in range(nf, nt + 1, step):
            probs, killed, put, log, err = one(top, tmpl, n_a, call, n)
            if probs:
                failed += 1
                print(f"FAIL {call} #{n} (killed={killed}, {put} new PUTs, {log[:2]}): "
                      + "; ".join(probs), flush=True)
            else:
                passed += 1
            if not killed and call != "none":
                print(f"{call} #{n}: life 1 made fewer such calls; stop", flush=True)
                break
        print(f"{passed} passed, {failed} failed")
    finally:
        shutil.rmtree(top)


main()
