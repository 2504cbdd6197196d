#!/usr/bin/env python3
"""Self-test of the power cut (powercut.py, disk.py): is it a real one?
On an ext4 (`commit=600`) on a loop device on a Disk:
  1. file a (1 MiB) is written and fsync'd; file b (1 MiB) is written, not fsync'd; 64 KiB of a
     are overwritten in place with O_DIRECT (so they reach the disk, unflushed), not fsync'd.
  2. cut, drop-all (PC_KEEP 0): the cut image mounts; a is whole with its fsync'd bytes, the
     O_DIRECT bytes are absent, b is absent (its creation was never committed).
  3. after the cut more is written and synced: a second cut equals the first byte for byte
     (nothing reaches the disk after a cut: atomic).
  4. the same life, cut keeping every unflushed sector (keep 1): a's O_DIRECT bytes are there
     (the disk's cache kept them), b still absent.
  5. a loop device left bound to a Disk's file makes the next Disk refuse to start.
usage: selftest.py   (root). Prints each check and 'N passed, M failed'."""
import mmap, os, random, subprocess, sys, tempfile, shutil
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import powercut

R = random.Random(1)
A, A2, B = R.randbytes(1 << 20), R.randbytes(65536), R.randbytes(1 << 20)
OK = [0, 0]


def sh(*a, check=True):
    return subprocess.run(list(a), capture_output=True, text=True, check=check)


def expect(what, cond):
    OK[0 if cond else 1] += 1
    print(f"{'ok  ' if cond else 'FAIL'} {what}", flush=True)


def life(top, tmpl, keep, extra_cut=False):
    d = powercut.Disk(tmpl)
    loop = sh("losetup", "-f", "--show", d.path).stdout.strip()
    mnt = f"{top}/m"
    sh("mount", "-o", "commit=600", loop, mnt)
    try:
        with open(f"{mnt}/a", "wb") as f:
            f.write(A)
            f.flush()
            os.fsync(f.fileno())
        with open(f"{mnt}/b", "wb") as f:
            f.write(B)
        fd = os.open(f"{mnt}/a", os.O_WRONLY | os.O_DIRECT)
        buf = mmap.mmap(-1, len(A2))
        buf.write(A2)
        os.pwrite(fd, buf, 65536)
        os.close(fd)
        note = d.cut(f"{top}/cut.img", keep=keep)
        print(f"     keep {keep}:{note}", flush=True)
        if extra_cut:
            with open(f"{mnt}/c", "wb") as f:
                f.write(B)
            os.sync()
            d.cut(f"{top}/cut2.img", keep=keep)
    finally:
        sh("umount", mnt)
        sh("losetup", "-d", loop)
        d.close()


def look(top, img):
    mnt = f"{top}/m"
    loop = sh("losetup", "-f", "--show", img).stdout.strip()
    try:
        sh("mount", loop, mnt)
        a = open(f"{mnt}/a", "rb").read() if os.path.exists(f"{mnt}/a") else None
        b = os.path.exists(f"{mnt}/b") and os.path.getsize(f"{mnt}/b") > 0
        sh("umount", mnt)
        fsck = sh("e2fsck", "-fn", img, check=False).returncode
        return a, b, fsck
    finally:
        sh("losetup", "-d", loop)


def main():
    top = tempfile.mkdtemp(prefix="pcself.", dir="/var/tmp")
    try:
        os.mkdir(f"{top}/m")
        tmpl = f"{top}/t.img"
        sh("truncate", "-s", "32M", tmpl)
        sh("mkfs.ext4", "-q", "-F", tmpl)
        life(top, tmpl, 0.0, extra_cut=True)
        expect("a second cut after more writes and a sync equals the first (nothing lands after a cut)",
               open(f"{top}/cut.img", "rb").read() == open(f"{top}/cut2.img", "rb").read())
        a, b, fsck = look(top, f"{top}/cut.img")
        expect("drop-all: the fsync'd file is whole", a is not None and len(a) == len(A) and a[:65536] == A[:65536]
               and a[131072:] == A[131072:])
        expect("drop-all: the unflushed O_DIRECT overwrite is absent", a is not None and a[65536:131072] == A[65536:131072])
        expect("drop-all: the file never fsync'd is absent", not b)
        expect(f"drop-all: e2fsck -fn is clean after the mount's journal replay ({fsck})", fsck == 0)
        life(top, tmpl, 1.0)
        a, b, fsck = look(top, f"{top}/cut.img")
        expect("keep-all: the unflushed O_DIRECT overwrite is there", a is not None and a[65536:131072] == A2)
        expect("keep-all: the file never fsync'd is still absent", not b)
        d = powercut.Disk(tmpl)
        loop = sh("losetup", "-f", "--show", d.path).stdout.strip()
        try:
            try:
                powercut.Disk(tmpl).close()
                refused = False
            except RuntimeError as e:
                refused = "still bound" in str(e)
            expect("a new Disk refuses while a loop device is bound to an earlier one", refused)
        finally:
            sh("losetup", "-d", loop)
            d.close()
        try:
            powercut.Disk(tmpl).close()
            expect("and starts once it is detached", True)
        except RuntimeError as e:
            expect(f"and starts once it is detached ({e})", False)
    finally:
        shutil.rmtree(top, ignore_errors=True)
    print(f"{OK[0]} passed, {OK[1]} failed")


main()
