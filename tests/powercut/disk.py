#!/usr/bin/python3
"""A disk that can lose power: a FUSE file system (python3-llfuse, one thread, so requests are
handled one at a time in the order the kernel sends them) holding one file, `disk.img`, for a
loop device to sit on, and a control file, `ctl`.

Without FUSE's writeback cache every write the loop device makes reaches this daemon as a WRITE
when the loop device makes it, and every flush of the loop device (ext4's barriers: a cache
flush before a journal commit block, FUA turned into write + flush) as an FSYNC of `disk.img`.
A real disk with a volatile write cache works the same way: a write is in the cache until a
flush, and what a power cut leaves of the cache is anyone's guess. So:
  - WRITE goes into an overlay of 4 KiB sectors (reads see it); the base file is untouched;
  - FSYNC applies the overlay to the base file (the host never crashes, so no host fsync);
  - writing `cut DST KEEP SEED` to `ctl` cuts the power: from then on nothing is applied (writes
    are acknowledged and dropped, as a dead disk's are never seen), and DST is made a fresh file
    holding the base (the last flushed state) plus, when KEEP > 0, a seeded random subset (each
    sector with probability KEEP) of the unflushed sectors, as a disk's cache may have kept them.
    A note on what was dropped goes to DST.note. The write to `ctl` returns once DST is whole.
The cut falls between two requests (one thread), so it is atomic by construction.
usage: disk.py BASE MOUNTPOINT   (BASE: a regular file this daemon owns from now on)"""
import errno, os, random, stat, sys
try:
    import llfuse
except ImportError:
    sys.exit("disk.py: needs python3-llfuse (apt-get install -y python3-llfuse) for /usr/bin/python3")

SECTOR = 4096
ROOT, DISK, CTL = llfuse.ROOT_INODE, 2, 3


class Disk(llfuse.Operations):
    def __init__(self, base):
        super().__init__()
        self.fd = os.open(base, os.O_RDWR)
        self.size = os.fstat(self.fd).st_size
        self.over = {}  # sector index -> bytearray(SECTOR): written since the last flush
        self.cut = False
        self.writes = self.flushes = self.dropped = 0

    def _sector(self, i):
        s = self.over.get(i)
        if s is None:
            s = bytearray(os.pread(self.fd, SECTOR, i * SECTOR).ljust(SECTOR, b"\0"))
        return s

    def _attr(self, ino):
        a = llfuse.EntryAttributes()
        a.st_ino = ino
        a.generation = 0
        a.entry_timeout = a.attr_timeout = 3600
        if ino == ROOT:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFDIR | 0o755, 2, 0
        else:
            a.st_mode, a.st_nlink = stat.S_IFREG | 0o600, 1
            a.st_size = self.size if ino == DISK else 0
        a.st_uid = a.st_gid = 0
        a.st_blksize, a.st_blocks = SECTOR, (a.st_size + 511) // 512
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = 0
        return a

    def getattr(self, inode, ctx=None):
        return self._attr(inode)

    def lookup(self, parent, name, ctx=None):
        ino = {b"disk.img": DISK, b"ctl": CTL}.get(name) if parent == ROOT else None
        if ino is None:
            raise llfuse.FUSEError(errno.ENOENT)
        return self._attr(ino)

    def opendir(self, inode, ctx):
        return inode

    def readdir(self, fh, off):
        for i, (name, ino) in enumerate([(b"disk.img", DISK), (b"ctl", CTL)]):
            if i >= off:
                yield name, self._attr(ino), i + 1

    def open(self, inode, flags, ctx):
        return inode

    def read(self, fh, off, size):
        if fh != DISK:
            return b""
        size = max(0, min(size, self.size - off))
        buf = bytearray(os.pread(self.fd, size, off))
        for i in range(off // SECTOR, (off + size + SECTOR - 1) // SECTOR):
            s = self.over.get(i)
            if s is not None:
                lo, hi = max(off, i * SECTOR), min(off + size, (i + 1) * SECTOR)
                buf[lo - off:hi - off] = s[lo - i * SECTOR:hi - i * SECTOR]
        return bytes(buf)

    def write(self, fh, off, buf):
        if fh == CTL:
            return self._control(bytes(buf).decode())
        if self.cut:
            self.dropped += 1
            return len(buf)
        if off + len(buf) > self.size:
            raise llfuse.FUSEError(errno.ENOSPC)
        self.writes += 1
        pos = 0
        while pos < len(buf):
            i, o = divmod(off + pos, SECTOR)
            n = min(SECTOR - o, len(buf) - pos)
            s = self._sector(i)
            s[o:o + n] = buf[pos:pos + n]
            self.over[i] = s
            pos += n
        return len(buf)

    def fsync(self, fh, datasync):
        if fh == DISK and not self.cut:
            self.flushes += 1
            for i in sorted(self.over):
                os.pwrite(self.fd, self.over[i][:max(0, min(SECTOR, self.size - i * SECTOR))], i * SECTOR)
            self.over.clear()

    def flush(self, fh):
        pass  # a close, not a barrier

    def release(self, fh):
        pass

    def setattr(self, inode, attr, fields, fh, ctx):
        return self._attr(inode)  # a truncate of ctl (O_TRUNC) and the like: nothing to do

    def _control(self, line):
        words = line.split()
        if len(words) != 4 or words[0] != "cut":
            raise llfuse.FUSEError(errno.EINVAL)
        dst, keep, seed = words[1], float(words[2]), words[3]
        first = not self.cut
        self.cut = True
        if os.path.exists(dst):
            os.unlink(dst)  # a fresh inode: nothing bound to an old one can write into it
        out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            off = 0
            while off < self.size:
                piece = os.pread(self.fd, 1 << 20, off)
                os.write(out, piece)
                off += len(piece)
            r = random.Random(seed)
            kept = [i for i in sorted(self.over) if keep > 0 and r.random() < keep]
            for i in kept:
                os.pwrite(out, self.over[i][:max(0, min(SECTOR, self.size - i * SECTOR))], i * SECTOR)
        finally:
            os.close(out)
        with open(dst + ".note", "w") as f:
            f.write(f"{'cut' if first else 'cut again (same instant)'}: {self.writes} writes and "
                    f"{self.flushes} flushes before it; {len(self.over)} sectors unflushed, {len(kept)} of "
                    f"them kept (keep {keep}, seed {seed})\n")
        return len(line)


def main():
    base, mnt = sys.argv[1], sys.argv[2]
    ops = Disk(base)
    opts = set(llfuse.default_options)
    opts.discard("default_permissions")
    opts.add("fsname=powercut")
    llfuse.init(ops, mnt, opts)
    try:
        llfuse.main(workers=1)
    finally:
        llfuse.close()


if __name__ == "__main__":
    main()
