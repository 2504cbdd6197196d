#!/usr/bin/env python3
"""kill -9 at the N-th CALL of the kvfs daemon's background thread during a clean cycle
(relocations, the checkpoint, the victims' deletion: DESIGN.md 5), then a power cut; through the
mount, on ext4 (the sixth attack's item 2; attack5's cleaner_powercut.py drove the engine through
kv_cli on a full disk).

Template (made once): a loop-mounted ext4 image of 48 MiB (`commit=600`), kvfs with
`segment_bytes=1m,cleaner=off` holding NFILES files of ~256 KiB of seeded random bytes, each
fsync'd; a clean unmount.
Each case: a copy of the template is mounted with `segment_bytes=1m` and the cleaner on. strace attaches
to the daemon's background thread (the third thread: main, then the log's flusher, then the
store's background thread, which runs automatic checkpoints and the cleaner; THREADS=2 attaches
to the flusher too — strace's `when=N` then counts per thread) with
`inject=CALL:signal=SIGKILL:when=N`. Then 3 of every 4 files are deleted and the directory
fsync'd, so every segment is a quarter live and the cleaner's policy (segments over twice the
live bytes plus one) starts a pass within a second; two new files are written and fsync'd while
it runs. The script waits until the daemon dies or the stats show a pass and deleted segments
(at most 60 s), then cuts the power (tests/powercut: the image sits on a FUSE 'disk' that holds
writes until the loop device flushes; the cut keeps the last flushed state, atomically — with
PC_KEEP=P each unflushed 4 KiB sector is kept with probability P, seeded by SEED and N). Every
case's disk is a fresh file; a loop device still bound to an earlier one stops the run.
The cut image is mounted (kvfs, default options) and checked:
  - the mount succeeds;
  - every kept and new file reads back byte for byte; every deleted file is absent (its
    deletion was fsync'd);
  - after the unmount `kv_cli --check` of the data directory exits 0.
usage: cleaner_mount.py BUILD CALL N_FROM N_TO [STEP]     (root: loop devices, FUSE, strace)
       cleaner_mount.py BUILD count   (what the background thread calls in an uninterrupted case)
env: SEED (printed), NFILES (32), THREADS (1), RACE (2: as 1 with punched holes and truncations up and down as well; 1: from the deletions until 4 s after, while the cleaner runs, parts of the kept
     files are overwritten, each pwrite fsync'd: after the cut each holds its last fsync'd bytes or
     those of the write in flight — a relocation that lost a race must not bring old bytes back),
     RACE_SECS (4: how long the overwrites go on at least; more gives the cleaner more passes),
     RECOVER (CALL:M: the mount of the cut image runs under strace and is killed at its M-th CALL,
     the power cut again — a second power cut — before the checks; a sequence of crashes),
     PC_KEEP (0: a power cut drops every write not flushed; 0 < P <= 1: keeps each unflushed
     sector with probability P — what a disk's cache may have written),
     GOON (1: go on to the next N after a case that was not killed — how many calls a clean
     cycle makes varies run to run — instead of stopping),
     FAULT (an errno name, e.g. EIO: strace injects that
     error instead of the kill; the daemon should live, every kept file read back right through
     the live mount — each outcome printed — then the power cut and the same checks)
Prints one line per failing case and 'N passed, M failed'."""
import ctypes, os, random, shutil, subprocess, sys, tempfile, time
LIBC = ctypes.CDLL(None, use_errno=True)

B = os.path.realpath(sys.argv[1])
KVFS, KV = f"{B}/kvfs", f"{B}/kv_cli"
SEED = int(os.environ.get("SEED", random.randrange(1 << 30)))
NFILES = int(os.environ.get("NFILES", "32"))
THREADS = int(os.environ.get("THREADS", "1"))  # 1 the background thread, 2 and the flusher, 3 the flusher, 0 every thread (-f)
FAULT = os.environ.get("FAULT", "")  # an errno name: inject that error instead of the kill
RACE = int(os.environ.get("RACE", "0"))
RACE_SECS = float(os.environ.get("RACE_SECS", "4"))  # the overwrites go on at least this long
RECOVER = os.environ.get("RECOVER", "")  # CALL:M — the next mount's recovery killed at its M-th CALL
RECOVER_MISSED = False
GOON = os.environ.get("GOON", "")  # 1: go on past a case where the call was not reached (its count varies run to run)
KEEP = os.environ.get("KEEP", "")  # a directory: each failing case's cut image (before the checks) and ledger go there  # 1: overwrite parts of the kept files while the cleaner runs
print(f"seed {SEED} nfiles {NFILES} threads {THREADS} fault {FAULT or 'SIGKILL'} race {RACE}", flush=True)
# per kept file: the bytes its last fsync made durable, and the bytes of a write in flight (None)
STATE = {}


def sh(*a, **kw):
    return subprocess.run(list(a), capture_output=True, text=True, **kw)


def content(name):
    r = random.Random(f"{SEED}-{name}")
    n = 256 * 1024 + r.randrange(4096)
    return r.randbytes(n)


class Img:
    def __init__(self, path, lo):
        self.lo = lo
        os.makedirs(lo, exist_ok=True)
        self.loop = sh("losetup", "-f", "--show", path, check=True).stdout.strip()
        sh("mount", "-o", "commit=600", self.loop, lo, check=True)

    def close(self):
        sh("umount", self.lo, check=True)
        sh("losetup", "-d", self.loop)


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "powercut"))
import powercut  # noqa: E402
CUTS = [0]  # power cuts made


def daemon_pid(datadir):
    return int(open(f"{datadir}/LOCK").read().split()[0])


def put(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        off = 0
        while off < len(data):
            off += os.write(fd, data[off:])
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stats(mnt):
    try:
        out = open(f"{mnt}/.kvfs").read()
    except OSError:
        return None
    d = {}
    for line in out.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            d[k] = v
    return d


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    st = open(f"/proc/{pid}/stat").read().split(") ")[1].split()[0]
    return st != "Z"


def make_template(top):
    img = f"{top}/template.img"
    sh("truncate", "-s", "48M", img, check=True)
    sh("mkfs.ext4", "-q", "-F", img, check=True)
    im = Img(img, f"{top}/lo")
    mnt = f"{top}/m"
    os.makedirs(mnt, exist_ok=True)
    try:
        sh(KVFS, "-o", "segment_bytes=1m,cleaner=off", f"{top}/lo/s", mnt, check=True)
        for i in range(NFILES):
            put(f"{mnt}/f{i}", content(f"f{i}"))
        fsync_dir(mnt)
        st = stats(mnt)
        print(f"template: {NFILES} files; disk_bytes {st.get('disk_bytes')} live_bytes {st.get('live_bytes')}",
              flush=True)
        sh(KVFS, "--unmount", mnt, check=True)
    finally:
        im.close()
    return img


def life(top, tmpl, call, n, count=False):
    """mount, attach strace to the background thread, delete, wait for the clean cycle, power cut.
    Returns (killed, deleted names, new names with content, note); the cut image is
    top/case.img.cut."""
    disk = powercut.Disk(tmpl, top)
    img = f"{top}/case.img"
    try:
        im = Img(disk.path, f"{top}/lo")
    except subprocess.CalledProcessError:
        disk.close()
        raise
    mnt = f"{top}/m"
    deleted, new, note = [], {}, ""
    sp = None
    pid = None
    try:
        r = sh(KVFS, "-o", "segment_bytes=1m", f"{top}/lo/s", mnt)
        if r.returncode != 0:
            raise RuntimeError(f"mount fails: {r.stderr}")
        pid = daemon_pid(f"{top}/lo/s")
        tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
        targets = {0: [pid], 1: tids[2:3], 2: tids[1:3], 3: tids[1:2]}[THREADS]
        args = ["strace", "-qq"] + (["-f"] if THREADS == 0 else [])
        for t in targets:
            args += ["-p", str(t)]
        if count:
            args += ["-c", "-o", f"{top}/count", "-e",
                     "trace=pwrite64,write,fdatasync,fsync,rename,unlink,ftruncate,fallocate,openat,pread64"]
        else:
            how = f"error={FAULT}" if FAULT else "signal=SIGKILL"
            args += ["-o", f"{top}/tr", "-e", f"trace={call}", "-e", f"inject={call}:{how}:when={n}"]
        sp = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # strace attaches (-qq prints nothing to wait for)
        deleted_before = int((stats(mnt) or {}).get("segments_deleted", 0))
        try:
            unlinked = []
            for i in range(NFILES):
                if i % 4:
                    os.unlink(f"{mnt}/f{i}")
                    unlinked.append(f"f{i}")
            fsync_dir(mnt)
            deleted += unlinked  # durable only now
            for j in range(2):
                put(f"{mnt}/n{j}", content(f"n{j}"))
                new[f"n{j}"] = content(f"n{j}")
                time.sleep(0.3)
        except OSError as e:
            note = f"workload: {e}"
        t0 = time.time()
        rr = random.Random(f"{SEED}-race-{call}-{n}")
        races = 0
        while time.time() - t0 < 30 and alive(pid):
            if RACE and not note.startswith("workload"):
                name = f"f{rr.randrange(0, NFILES, 4)}"
                cur = STATE[name][0]
                off = rr.randrange(len(cur))
                kind = rr.choice(["write", "write", "punch", "truncate"]) if RACE == 2 else "write"
                ln = rr.choice([1, 4096, 65536, 200000])
                if kind == "write":
                    patch = rr.randbytes(ln)
                elif kind == "punch":
                    patch = bytes(min(ln, len(cur) - off))
                else:  # truncate: shorter or longer (a hole)
                    size = rr.randrange(len(cur) // 2, len(cur) + 300000)
                    nxt = cur[:size] + bytes(max(0, size - len(cur)))
                if kind != "truncate":
                    nxt = cur[:off] + patch + cur[off + len(patch):]
                STATE[name] = (cur, nxt)
                try:
                    fd = os.open(f"{mnt}/{name}", os.O_WRONLY)
                    try:
                        if kind == "write":
                            if os.pwrite(fd, patch, off) != len(patch):
                                raise OSError(28, "short write")
                        elif kind == "punch":
                            if LIBC.fallocate(fd, 3, ctypes.c_long(off), ctypes.c_long(len(patch))):  # PUNCH|KEEP_SIZE
                                raise OSError(ctypes.get_errno(), "punch failed")
                        else:
                            os.ftruncate(fd, len(nxt))
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    STATE[name] = (nxt, None)
                    races += 1
                except OSError as e:
                    note = f"workload: overwrite {name}: {e.strerror}"
            st = stats(mnt)
            if st and int(st.get("cleaner_moved_bytes", 0)) > 0 and \
                    int(st.get("segments_deleted", 0)) > deleted_before + 1 and \
                    (not RACE or time.time() - t0 > RACE_SECS):
                break
            if not RACE:
                time.sleep(0.3)
        st = stats(mnt) if alive(pid) else None
        if RACE:
            note += f" {races} overwrites fsync'd"
        if st:
            note += f" cleaner_passes {st.get('cleaner_passes')} moved {st.get('cleaner_moved_bytes')}" \
                    f" segments_deleted {st.get('segments_deleted')}"
        killed = not alive(pid)
        if FAULT:
            note += f" daemon {'dead' if killed else 'alive'}"
            try:
                tr = open(f"{top}/tr").read()
            except OSError:
                tr = ""
            killed = "INJECTED" in tr  # for the caller: the fault landed
            try:
                for i in range(NFILES):
                    if f"f{i}" not in deleted and i % 4 == 0:
                        if open(f"{mnt}/f{i}", "rb").read() not in STATE[f"f{i}"]:
                            note += f" WRONG-BYTES f{i}"
            except OSError as e:
                note += f" (a read after the fault: {e.strerror})"
        note += disk.cut(img + ".cut", seed=f"{SEED}-{call}-{n}")  # the power cut
        CUTS[0] += 1
    finally:
        if sp:
            if sp.poll() is None and pid and alive(pid):
                sp.terminate()  # our own strace: detach
            sp.wait()
        if pid and alive(pid):
            os.kill(pid, 9)
            for _ in range(100):
                if not alive(pid):
                    break
                time.sleep(0.1)
        sh("fusermount3", "-uz", mnt)
        for _ in range(50):
            if sh("umount", im.lo).returncode == 0:
                break
            time.sleep(0.2)
        sh("losetup", "-d", im.loop)
        disk.close()
    return killed, deleted, new, note


def recover_kill(top, img):
    """RECOVER=CALL:M: the mount of the cut image is killed at its M-th CALL (its recovery; per
    thread), then a second power cut. Returns a note."""
    call, m = RECOVER.split(":")
    disk = powercut.Disk(img, top)
    im = Img(disk.path, f"{top}/lo")
    mnt = f"{top}/m"
    note = ""
    try:
        p = subprocess.Popen(["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={call}", "-e",
                              f"inject={call}:signal=SIGKILL:when={m}", KVFS, "-f", "-o", "segment_bytes=1m",
                              f"{top}/lo/s", mnt], stderr=subprocess.PIPE, text=True)
        t0 = time.time()
        while p.poll() is None and time.time() - t0 < 60:
            if stats(mnt):
                break
            time.sleep(0.1)
        if p.poll() is None:
            note = "recovery not killed"
            sh(KVFS, "--unmount", mnt)
            p.wait()
        else:
            note = f"recovery killed ({p.returncode})"
            sh("fusermount3", "-uz", mnt)
        note += disk.cut(img + ".cut2", seed=f"{SEED}-recover-{m}")  # the second power cut
        CUTS[0] += 1
    finally:
        im.close()
        disk.close()
    shutil.move(img + ".cut2", img)
    return note


def partial(got, cur, nxt):
    """an unacknowledged write partly applied: a pwrite through FUSE is several requests (128 KiB
    each), and those before a crash may be durable. got is cur with some of nxt's bytes, all in
    the range where they differ and of cur's length (or nxt's, when it grew)."""
    if nxt is None or len(got) not in (len(cur), len(nxt)):
        return False
    diff = [i for i in range(min(len(cur), len(nxt))) if cur[i] != nxt[i]]
    if not diff:
        return False
    lo, hi = diff[0], diff[-1] + 1
    return got[:lo] == cur[:lo] and got[hi:] == (cur if len(got) == len(cur) else nxt)[hi:] and \
        all(got[i] in (cur[i], nxt[i]) for i in range(lo, hi))


def check(top, img, deleted, new):
    probs = []
    if RECOVER:
        probs_note = recover_kill(top, img)
        if "not killed" in probs_note:
            global RECOVER_MISSED
            RECOVER_MISSED = True
    im = Img(img, f"{top}/lo")
    mnt = f"{top}/m"
    try:
        r = sh(KVFS, f"{top}/lo/s", mnt)
        if r.returncode != 0:
            return [f"the mount after the power cut fails: {r.stderr.strip()[:500]}"]
        try:
            # a file whose unlink was not yet made durable by the directory's fsync may be back
            # (whole) or gone; a deleted one is gone; the others are whole
            maybe = {f"f{i}" for i in range(NFILES) if i % 4 and f"f{i}" not in deleted}
            want = {f"f{i}": content(f"f{i}") for i in range(NFILES)
                    if f"f{i}" not in deleted and f"f{i}" not in maybe}
            want.update({k: v for k, v in STATE.items()})
            for name in maybe:
                if os.path.exists(f"{mnt}/{name}") and open(f"{mnt}/{name}", "rb").read() != content(name):
                    probs.append(f"{name}: unlinked before the crash (not fsync'd), back with other bytes")
            want.update(new)
            for name, data in want.items():
                try:
                    got = open(f"{mnt}/{name}", "rb").read()
                except OSError as e:
                    probs.append(f"{name}: {e}")
                    continue
                if isinstance(data, tuple):
                    if got not in data and not partial(got, *data):
                        probs.append(f"{name}: {len(got)} bytes, neither its last fsync'd state nor the write "
                                     f"in flight")
                elif got != data:
                    probs.append(f"{name}: {len(got)} bytes differ from the {len(data)} fsync'd")
            for name in deleted:
                if os.path.exists(f"{mnt}/{name}"):
                    probs.append(f"{name}: deleted and fsync'd, present again")
        finally:
            r = sh(KVFS, "--unmount", mnt)
            if r.returncode != 0:
                probs.append(f"unmount: {r.stderr.strip()[-200:]}")
        c = sh(KV, "--check", f"{top}/lo/s")
        if c.returncode != 0:
            probs.append(f"--check exits {c.returncode}: {c.stdout.strip()[-200:]}")
    finally:
        im.close()
    return probs


def main():
    top = tempfile.mkdtemp(prefix="a6clm.", dir="/var/tmp")
    try:
        tmpl = make_template(top)
        img = f"{top}/case.img"
        if sys.argv[2] == "count":
            STATE.update({f"f{i}": (content(f"f{i}"), None) for i in range(0, NFILES, 4)})
            killed, deleted, new, note = life(top, tmpl, None, 0, count=True)
            print(f"uninterrupted: {note}")
            print(open(f"{top}/count").read())
            probs = check(top, img + ".cut", deleted, new)
            print("power cut of an uninterrupted run: " + ("; ".join(probs) if probs else "holds"))
            return
        call, nf, nt = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        step = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        passed = failed = 0
        for n in range(nf, nt + 1, step):
            STATE.clear()
            STATE.update({f"f{i}": (content(f"f{i}"), None) for i in range(0, NFILES, 4)})
            killed, deleted, new, note = life(top, tmpl, call, n)
            global RECOVER_MISSED
            RECOVER_MISSED = False
            if KEEP:
                shutil.copyfile(img + ".cut", f"{top}/keep.img")
            probs = check(top, img + ".cut", deleted, new)
            if probs and KEEP:
                os.makedirs(KEEP, exist_ok=True)
                shutil.move(f"{top}/keep.img", f"{KEEP}/{call}-{n}.img")
                with open(f"{KEEP}/{call}-{n}.state", "wb") as fh:
                    import pickle
                    pickle.dump({"STATE": dict(STATE), "deleted": deleted, "note": note}, fh)
            os.unlink(img + ".cut")
            if RECOVER:
                note += f" recovery {'not killed' if RECOVER_MISSED else 'killed'} at {RECOVER}"
            if "WRONG-BYTES" in note:
                probs.append("a read through the mount after the fault returned wrong bytes")
            if probs:
                failed += 1
                print(f"FAIL {call} #{n} (killed={killed};{note}): " + "; ".join(probs[:4]), flush=True)
            else:
                passed += 1
                if FAULT or RECOVER:
                    print(f"ok   {call} #{n} {FAULT} ({note.strip()})", flush=True)
            if not killed:
                print(f"{call} #{n}: not killed ({note.strip()}){'' if GOON else '; stop'}", flush=True)
                if not GOON:
                    break
        print(f"power cuts: {CUTS[0]} (tests/powercut, keep {powercut.KEEP})")
        print(f"{passed} passed, {failed} failed")
    finally:
        shutil.rmtree(top, ignore_errors=True)


main()
