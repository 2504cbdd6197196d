#!/bin/bash
# posix_fallocate through a kvfs mount must reserve the space: it succeeds, other writers fill the
# disk, and the first writes into the preallocated range still go through. posix_fallocate(3)
# promises "subsequent writes into the range will not fail because of lack of disk space";
# programs that preallocate a log or a download before writing it count on that (a kvfs store
# inside a kvfs mount would too: its segments are preallocated with fallocate for this reason).
# Found as finding 4 (FINDINGS.md): the write failed with ENOSPC. Now also: df counts the
# reservation and rm gives it back; half the range is written on the full disk, the other half
# after a remount and more filling; fallocate beyond the free space is ENOSPC.
# usage: fallocate_enospc.sh BUILD_DIR   (root; loop device)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/falloc.XXXX); cd "$W"
truncate -s 48M disk.img && mkfs.ext4 -q -F disk.img && mkdir lo mnt && mount -o loop disk.img lo
"$B/kvfs" lo/s mnt || exit 1
py() {
python3 - "$W/mnt" "$@" <<'PY'
import os, ctypes, sys
M, step = sys.argv[1], sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
def falloc(name, mib):
    fd = os.open(f"{M}/{name}", os.O_CREAT | os.O_RDWR, 0o644)
    r = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(mib << 20))
    print(f"posix_fallocate of {mib} MiB ({name}):", "ok" if r == 0 else os.strerror(r))
    os.fsync(fd); os.close(fd)
def free():
    s = os.statvfs(M); return s.f_bavail * s.f_frsize
def fill(prefix):
    n = 0
    while True:
        try:
            with open(f"{M}/{prefix}{n}", "wb") as f:
                f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
            n += 1
        except OSError as e:
            print(f"another writer filled {n} MiB, then: {e.strerror}"); return
def write_mib(name, first, last):
    fd = os.open(f"{M}/{name}", os.O_RDWR)
    try:
        for i in range(first, last):
            os.pwrite(fd, os.urandom(1 << 20), i << 20)
        os.fsync(fd)
        print(f"PASS: MiB {first}..{last - 1} written into the preallocated range of {name}")
    except OSError as e:
        print(f"FAIL: a write into the preallocated range of {name} at MiB {i}:", e.strerror)
    os.close(fd)
if step == "before":
    f0 = free(); falloc("probe", 2); f1 = free(); os.unlink(f"{M}/probe")
    print(f"df: {f0 >> 10} KiB free; {(f0 - f1) >> 10} KiB fewer with 2 MiB preallocated,"
          f" {(free() - f1) >> 10} KiB given back by its rm")
    falloc("prealloc", 8)
    fill("other"); write_mib("prealloc", 0, 4)
elif step == "after":
    fill("more"); write_mib("prealloc", 4, 8)
    fd = os.open(f"{M}/huge", os.O_CREAT | os.O_RDWR, 0o644)
    r = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(1 << 30))
    print("posix_fallocate of 1 GiB on a 48 MiB disk:", "ok (FAIL)" if r == 0 else os.strerror(r),
          f"; size after: {os.fstat(fd).st_size}"); os.close(fd); os.unlink(f"{M}/huge")
PY
}
py before
"$B/kvfs" --unmount mnt && "$B/kvfs" lo/s mnt && echo "remounted" || exit 1
py after
"$B/kvfs" --unmount mnt; umount lo; cd /; rm -rf "$W"
