#!/bin/bash
# Finding 2 through a kvfs mount: 120,000 empty files and a snapshot (a 13.2 MB checkpoint,
# space.reserve 4 MiB), then 1 MiB files until ENOSPC: `rm` of any of them fails with ENOSPC.
# usage: reserve_wedge_mount.sh BUILD_DIR   (root; loop device; a few minutes)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/wedgem.XXXX); cd "$W"
truncate -s 96M disk.img && mkfs.ext4 -q -F disk.img && mkdir lo mnt && mount -o loop disk.img lo
"$B/kvfs" -o segment_bytes=8M lo/s mnt || exit 1
python3 - "$W" <<'PY'
import os, sys
W = sys.argv[1]; M = f"{W}/mnt"
os.mkdir(f"{M}/d")
for i in range(120000):
    open(f"{M}/d/f{i:06d}", "wb").close()
with open(f"{M}/.kvfs", "w") as f: f.write("snapshot\n")
print(os.popen(f"ls -l {W}/lo/s | grep -E 'ckpt|reserve'").read().rstrip())
n = 0
try:
    while True:
        with open(f"{M}/big{n}", "wb") as f: f.write(os.urandom(1 << 20)); f.flush(); os.fsync(f.fileno())
        n += 1
except OSError as e:
    print(f"{n} files of 1 MiB, then {e.strerror}")
bad = 0
for i in range(3):
    try:
        os.unlink(f"{M}/big{i}"); print(f"rm big{i}: ok")
    except OSError as e:
        bad += 1; print(f"FAIL rm big{i}: {e.strerror}")
print("FAIL: rm cannot make room" if bad else "PASS")
PY
"$B/kvfs" --unmount mnt; umount lo; cd /; rm -rf "$W"
