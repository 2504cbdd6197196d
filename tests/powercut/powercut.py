"""The power cut of the attack scripts (tests/attack3..6): a disk that can lose power.

    disk = Disk(template)          # a fresh copy of template behind a FUSE 'disk' (disk.py)
    loop = losetup -f --show disk.path; mount -o commit=600 loop MNT; ... kill the daemon ...
    note = disk.cut(dst)           # the power cut: dst is a fresh file holding what the disk has
    umount; losetup -d loop; disk.close()

disk.cut is atomic (disk.py handles one request at a time and stops applying writes at the cut)
and it is a real power cut: dst holds what the loop device had flushed (ext4's barriers), none of
what it wrote since unless PC_KEEP (env, 0..1: each unflushed 4 KiB sector kept with that
probability, seeded) says a disk cache kept some. Before, the scripts copied a loop image while
ext4 was still mounted, which is not atomic (the kernel wrote during the copy in about one case
in five: attack6 FINDINGS, the open lead).

Every Disk is a fresh file (a new inode) in a fresh directory, and a Disk refuses to start while a
loop device is still bound to any earlier Disk's file or to the template (check_unbound): a
stale loop device writing into a case's image behind its back is ruled out. The scripts' own
images (the cut copies they mount to check) should be fresh files too: fresh() gives one.
Needs root, /dev/fuse, python3-llfuse (Debian) for /usr/bin/python3."""
import os, shutil, subprocess, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
KEEP = float(os.environ.get("PC_KEEP", "0"))
_EARLIER = []  # every Disk's directory so far: no loop device may stay bound to one
_COUNT = [0]


def _sh(*a):
    return subprocess.run(list(a), capture_output=True, text=True)


def bound(path):
    """the loop devices bound to path ('' when none)"""
    return _sh("losetup", "-j", os.path.realpath(path)).stdout.strip()


def check_unbound(*paths, allow=None):
    """refuse (RuntimeError) while a loop device is bound to any of paths or to a file of an
    earlier Disk (even one unlinked or lazily unmounted since: losetup names its old path)"""
    lines = _sh("losetup", "-l", "-n", "-O", "NAME,BACK-FILE").stdout.splitlines()
    for p in [os.path.realpath(p) for p in paths] + _EARLIER:
        hits = [ln.strip() for ln in lines if p in ln and not (allow and allow in ln)]
        if hits:
            raise RuntimeError(f"powercut: a loop device is still bound to {p}: {'; '.join(hits)}")


def fresh(src, dst):
    """copy src to dst as a new file (a new inode: a loop device left bound to an old dst cannot
    write into it); refuses if one is bound to dst"""
    check_unbound(dst)
    if os.path.exists(dst):
        os.unlink(dst)
    shutil.copyfile(src, dst)
    return dst


class Disk:
    def __init__(self, template, parent="/var/tmp"):
        check_unbound(template)
        self.dir = tempfile.mkdtemp(prefix="pcdisk.", dir=parent)
        self.base, self.fs = f"{self.dir}/base.img", f"{self.dir}/fs"
        self.path = f"{self.fs}/disk.img"
        shutil.copyfile(template, self.base)
        os.mkdir(self.fs)
        self.p = subprocess.Popen(["/usr/bin/python3", f"{HERE}/disk.py", self.base, self.fs],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if os.path.exists(self.path) or self.p.poll() is not None:
                break
            time.sleep(0.05)
        if not os.path.exists(self.path):
            err = self.p.stderr.read() if self.p.poll() is not None else "no disk.img after 10 s"
            self.close()
            raise RuntimeError(f"powercut: the disk did not start: {err.strip()[-300:]}")
        _EARLIER.append(self.dir + "/")
        _COUNT[0] += 1
        self.n = _COUNT[0]

    def cut(self, dst, keep=None, seed=None):
        """the power cut: dst becomes a fresh file holding what the disk holds now (the last
        flushed state; with keep > 0 a seeded subset of the unflushed sectors too). From now on
        the disk drops every write. Returns a note (' powercut(...)')."""
        keep = KEEP if keep is None else keep
        seed = f"{self.n}" if seed is None else seed
        check_unbound(dst, allow=self.dir + "/")
        with open(f"{self.fs}/ctl", "w") as f:
            f.write(f"cut {os.path.abspath(dst)} {keep} {seed}")
        with open(dst + ".note") as f:
            note = f.read().strip()
        os.unlink(dst + ".note")
        return f" powercut({note})"

    def close(self):
        """after the loop device on it is detached: stop the daemon, remove its files"""
        if bound(self.path) if os.path.exists(self.path) else "":
            for _ in range(50):  # losetup -d of a device still in use only marks it
                if not bound(self.path):
                    break
                time.sleep(0.2)
        _sh("fusermount", "-u", self.fs)
        if self.p.poll() is None:
            _sh("fusermount", "-uz", self.fs)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
