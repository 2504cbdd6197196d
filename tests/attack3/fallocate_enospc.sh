#!/bin/bash
# posix_fallocate through a kvfs mount reserves nothing: it succeeds, other writers fill the disk,
# and a later write into the preallocated range fails with ENOSPC. posix_fallocate(3) promises
# "subsequent writes into the range will not fail because of lack of disk space"; programs that
# preallocate a log or a download before writing it count on that (a kvfs store inside a kvfs
# mount would too: its segments are preallocated with fallocate for exactly this reason).
# usage: fallocate_enospc.sh BUILD_DIR   (root; loop device)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/falloc.XXXX); cd "$W"
truncate -s 48M disk.img && mkfs.ext4 -q -F disk.img && mkdir lo mnt && mount -o loop disk.img lo
"$B/kvfs" lo/s mnt || exit 1
python3 - "$W/mnt" <<'PY'
import os, ctypes, sys
M = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(f"{M}/prealloc", os.O_CREAT | os.O_RDWR, 0o644)
r = libc.posix_fallocate(fd, ctypes.c_long(0), ctypes.c_long(8 << 20))
print("posix_fallocate of 8 MiB:", "ok" if r == 0 else os.strerror(r))
n = 0
while True:
    try:
        with open(f"{M}/other{n}", "wb") as f:
            f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
        n += 1
    except OSError as e:
        print(f"another writer filled {n} MiB, then: {e.strerror}"); break
try:
    os.pwrite(fd, os.urandom(1 << 20), 0); os.fsync(fd)
    print("PASS: a write into the preallocated range went through")
except OSError as e:
    print("FAIL: a write into the preallocated range:", e.strerror)
PY
"$B/kvfs" --unmount mnt; umount lo; cd /; rm -rf "$W"
