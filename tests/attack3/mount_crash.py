#!/usr/bin/env python3
"""Crash sequences through the mount while the cleaner and checkpoints work (small segments):
the kvfs daemon runs under strace and is killed at the N-th call of SYSCALL (or gets EIO there);
atomic saves (tmp, fsync, rename, fsync dir) and in-place overwrites with fsync go on until the
mount dies; a second daemon recovers (page cache kept), every acknowledged save must be there;
more saves; then a power cut (tests/powercut: only what the loop device flushed is kept, the
daemon still running; PC_KEEP=P keeps each unflushed 4 KiB sector with probability P): every
save acknowledged in either life must be there, whole.
usage: mount_crash.py BUILD SYSCALL kill|eio N_FROM N_TO [STEP [SEED]]"""
import os, random, shutil, signal, subprocess, sys, tempfile, time, hashlib, json
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402  the power cut (tests/powercut: a disk that loses what was not flushed)
B, CALL, MODE, NF, NT = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
STEP = int(sys.argv[6]) if len(sys.argv) > 6 else 1
SEED = int(sys.argv[7]) if len(sys.argv) > 7 else 1
OPTS = "segment_bytes=262144,checkpoint_bytes=1048576"
print("seed", SEED, flush=True)

def sh(*a, check=True):
    return subprocess.run(a, check=check, capture_output=True)

def content(name, seq, rnd):
    body = f"{name}#{seq}#".encode() * (rnd.choice([100, 2000, 9000]))
    return body + hashlib.sha256(body).hexdigest().encode()

def parse(data):
    """(name, seq) of a whole version, or None"""
    if len(data) < 64: return None
    body, h = data[:-64], data[-64:]
    if hashlib.sha256(body).hexdigest().encode() != h: return None
    n, s, _ = body.split(b"#", 2)
    return n.decode(), int(s)

def saves(M, tag, seed, acked, deadline, nops=10**9):
    rnd = random.Random(seed)
    seq = 0
    try:
        for _ in range(nops):
            if time.time() > deadline: break
            seq += 1
            name = f"{tag}{rnd.randrange(12)}"
            data = content(name, seq, rnd)
            acked["cur"] = name
            if rnd.random() < 0.5:
                tmp = f"{M}/.tmp-{name}"
                with open(tmp, "wb") as f:
                    f.write(data); f.flush(); os.fsync(f.fileno())
                os.rename(tmp, f"{M}/{name}")
                d = os.open(M, os.O_RDONLY); os.fsync(d); os.close(d)
            else:
                # in place: a version of another length is a new whole version only once fsync'd;
                # a crash before may leave a mix, so this name's promise is only the last fsync'd
                with open(f"{M}/{name}", "r+b" if os.path.exists(f"{M}/{name}") else "wb") as f:
                    f.truncate(0); f.write(data); f.flush(); os.fsync(f.fileno())
                acked.setdefault("inplace", {})[name] = seq
            acked.setdefault("atomic", {})[name] = seq
            acked.setdefault("last", {})[name] = seq
            acked.pop("cur", None)
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    return None

def verify(M, acked, tag):
    bad = []
    for name, seq in acked.get("last", {}).items():
        try:
            data = open(f"{M}/{name}", "rb").read()
        except OSError as e:
            bad.append(f"{name}: {e} (save #{seq} was acknowledged)"); continue
        v = parse(data)
        if v is None:
            # an in-place rewrite after the last acknowledged one may have been cut short
            if acked.get("inflight", {}).get(name):
                continue
            bad.append(f"{name}: {len(data)} bytes, no whole version (save #{seq} was acknowledged)")
        elif v[0] != name or v[1] < seq:
            bad.append(f"{name}: holds {v} but save #{seq} was acknowledged")
    return bad

def one(n, tmpl, work):
    cimg = f"{work}/crash.img"
    lo, lo2, M = f"{work}/lo", f"{work}/lo2", f"{work}/mnt{n}"  # a fresh mount point each case
    for d in (lo, lo2, M): os.makedirs(d, exist_ok=True)
    disk = powercut.Disk(tmpl, work)
    loop = sh("losetup", "-f", "--show", disk.path).stdout.decode().strip()
    sh("mount", loop, lo)
    if sorted(os.listdir(lo)) != ["lost+found"]:
        sh("umount", lo)
        sh("losetup", "-d", loop, check=False)
        disk.close()
        return f"HARNESS: {lo} is not the fresh image just made"
    try:
        inj = f"inject={CALL}:" + ("signal=SIGKILL" if MODE == "kill" else "error=EIO") + f":when={n}"
        d = subprocess.Popen(["strace", "-f", "-o", "/dev/null", "-e", inj, f"{B}/kvfs", "-f", "-o", OPTS,
                              f"{lo}/s", M], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(300):
            if os.path.exists(f"{M}/.kvfs"): break
            time.sleep(0.1)
        acked = {}
        if not os.path.exists(f"{M}/.kvfs"):
            # killed before it mounted: nothing was acknowledged; the store must still open
            d.kill(); d.wait()
            time.sleep(0.5)
            r = sh(f"{B}/kvfs", f"{lo}/s", M, check=False)
            if r.returncode:
                return f"#{n}: killed before mounting; the next mount fails: {r.stderr.decode().strip()}"
            sh(f"{B}/kvfs", "--unmount", M, check=False)
            return None
        err1 = saves(M, "f", SEED * 100 + n, acked, time.time() + 20, nops=250)
        # in-place names whose rewrite was in flight when the mount died are not promised whole
        acked["inflight"] = {acked["cur"]: 1} if "cur" in acked else {}
        if d.poll() is None:
            d.kill()   # the strace; kvfs under it dies with it
        d.wait()
        time.sleep(0.3)
        sh("fusermount3", "-uz", M, check=False)
        for _ in range(50):
            if sh("pgrep", "-f", f"kvfs -f -o {OPTS} {lo}/s", check=False).returncode: break
            time.sleep(0.1)
        r = sh(f"{B}/kvfs", f"{lo}/s", M, check=False)
        if r.returncode:
            return f"#{n}: life 2 cannot mount: {r.stderr.decode().strip()}"
        bad = verify(M, acked, "life 1")
        if bad:
            sh(f"{B}/kvfs", "--unmount", M, check=False)
            return f"#{n} ({err1}): after recovery: {bad[:4]}"
        acked2 = {"last": dict(acked.get("last", {})), "inflight": acked["inflight"]}
        e2 = saves(M, "f", SEED * 100 + n + 7, acked2, time.time() + 20, nops=60)
        if e2:
            sh(f"{B}/kvfs", "--unmount", M, check=False)
            return f"#{n}: life 2 save failed: {e2}"
        # the power cut: what the disk holds, atomic (tests/powercut), the daemon running on
        disk.cut(cimg, seed=f"{SEED}-{n}")
        sh(f"{B}/kvfs", "--unmount", M, check=False)
    finally:
        sh("umount", lo, check=False)
        sh("losetup", "-d", loop, check=False)
        disk.close()
    sh("mount", "-o", "loop", cimg, lo2)
    try:
        r = sh(f"{B}/kvfs", f"{lo2}/s", M, check=False)
        if r.returncode:
            keep = f"/tmp/mount_crash-fail-{CALL}-{MODE}-{n}-{os.getpid()}"
            shutil.copytree(f"{lo2}/s", keep + ".store", dirs_exist_ok=True)
            return f"#{n}: after the power cut cannot mount: {r.stderr.decode().strip()}; kept in {keep}.store"
        bad = verify(M, acked2, "power cut")
        sh(f"{B}/kvfs", "--unmount", M, check=False)
        return f"#{n}: after the power cut: {bad[:4]}" if bad else None
    finally:
        sh("umount", lo2, check=False)

work = tempfile.mkdtemp(prefix="mc-", dir="/tmp")
tmpl = f"{work}/tmpl.img"
sh("truncate", "-s", "128M", tmpl); sh("mkfs.ext4", "-q", "-F", tmpl)
p = f = 0
for n in range(NF, NT + 1, STEP):
    r = one(n, tmpl, work)
    if r: f += 1; print("FAIL", CALL, MODE, r, flush=True)
    else: p += 1; print(f"ok {CALL} {MODE} #{n}", flush=True)
shutil.rmtree(work, ignore_errors=True)
print(f"{p} passed, {f} failed")
