#!/usr/bin/env python3
"""EIO injected into the N-th fdatasync (or pwrite64) of the kvfs daemon (strace -f -e
inject=CALL:error=EIO:when=N), one case per N, while a writer saves files through the mount with
write + fsync. Checked (DURABILITY 5.1, 5.2; FILESYSTEM.md): once a log write or sync failed, no
later fsync returns 0 and later writes fail (EROFS) until a remount; the daemon neither crashes nor
hangs; after SIGKILL of the daemon and a fresh mount every file whose fsync returned 0 holds what
was written.

usage: mount_fsync_eio.py KVFS CALL N_FROM N_TO [STEP]   (root: FUSE)"""
import os, re, signal, subprocess, sys, tempfile, time

KVFS, CALL, NF, NT = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
STEP = int(sys.argv[5]) if len(sys.argv) > 5 else 1
OPTS = "segment_bytes=256k,checkpoint_bytes=1M"
NFILES = 80


def content(i):
    return (f"file{i}:" + "z" * (100 + (i * 977) % 40000)).encode()


def one(n, top):
    d, m, tr = f"{top}/s{n}", f"{top}/m{n}", f"{top}/trace{n}"
    os.mkdir(m)
    sp = subprocess.Popen(["strace", "-f", "-y", "-qq", "-o", tr, "-e", f"trace={CALL}",
                           "-e", f"inject={CALL}:error=EIO:when={n}", KVFS, "-f", "-o", OPTS, d, m],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    for _ in range(200):
        if os.path.ismount(m):
            break
        time.sleep(0.05)
    else:
        sp.kill()
        return [f"no mount: {sp.stderr.read().decode()[-200:]}"], None
    acked, first_fail, probs = [], None, []
    for i in range(NFILES):
        try:
            fd = os.open(f"{m}/f{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, content(i))
                os.fsync(fd)
            finally:
                os.close(fd)
            if first_fail is not None:
                probs.append(f"f{i}: fsync returned 0 after an earlier failure ({first_fail})")
            acked.append(i)
        except OSError as e:
            if first_fail is None:
                first_fail = f"f{i}: {e.strerror}"
    inj = [l for l in open(tr).read().splitlines() if "(INJECTED)" in l]
    where = re.search(r"<([^>]*)>", inj[0]).group(1).rsplit("/", 1)[-1] if inj else None
    if inj and first_fail is None and where.startswith("wal-"):
        probs.append(f"the {CALL} of {where} failed and every fsync returned 0")
    # the daemon: kill -9 (strace passes it on), then a fresh mount
    pid = None
    try:
        pid = int(open(f"{d}/LOCK").read().strip() or 0)
    except (OSError, ValueError):
        pass
    if sp.poll() is not None:
        probs.append(f"the daemon ended by itself: {sp.returncode} {sp.stderr.read().decode()[-200:]}")
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    sp.wait(timeout=60)
    subprocess.run(["fusermount3", "-u", "-z", m], capture_output=True)
    r = subprocess.run([KVFS, d, m], capture_output=True, text=True)
    if r.returncode != 0:
        probs.append(f"remount failed: {r.stderr.strip()[-300:]}")
        return probs, where
    for i in acked:
        try:
            if open(f"{m}/f{i}", "rb").read() != content(i):
                probs.append(f"f{i} (fsync returned 0) differs after the remount")
        except OSError as e:
            probs.append(f"f{i} (fsync returned 0): {e.strerror} after the remount")
    subprocess.run([KVFS, "--unmount", m], capture_output=True)
    print(f"  #{n}: failed {CALL} of {where}; first failure {first_fail}; {len(acked)}/{NFILES} fsyncs returned 0",
          flush=True)
    return probs, where


def main():
    top = tempfile.mkdtemp(prefix="mfeio.", dir="/dev/shm")
    passed = failed = 0
    for n in range(NF, NT + 1, STEP):
        probs, where = one(n, top)
        if probs:
            failed += 1
            print(f"FAIL {CALL} #{n} [{where}]: " + "; ".join(probs[:4]), flush=True)
        else:
            passed += 1
    print(f"{passed} passed, {failed} failed")
    subprocess.run(["rm", "-rf", top])


main()
