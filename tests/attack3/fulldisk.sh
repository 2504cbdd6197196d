#!/bin/bash
# A full disk under a kvfs mount while the cleaner runs: fill a 48 MiB ext4 with fsync'd files
# until ENOSPC, delete half, fill again (deletes must make room), overwrite in place, then
# kill -9 the daemon and remount: every file whose last fsync returned 0 must read back whole.
# usage: [SIZE=48M] fulldisk.sh BUILD_DIR   (root; loop device)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/fulldisk.XXXX); cd "$W"
truncate -s "${SIZE:-48M}" disk.img && mkfs.ext4 -q -F disk.img && mkdir lo mnt && mount -o loop disk.img lo
"$B/kvfs" lo/s mnt || exit 1
python3 - "$W" <<'PY'
import os, sys, hashlib, json, errno
W = sys.argv[1]; M = f"{W}/mnt"
good = {}     # name -> sha of the content whose fsync returned 0
def put(name, data):
    try:
        fd = os.open(f"{M}/{name}", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
    except OSError as e:
        print("  open of", name, "failed:", e); return e.errno
    try:
        os.write(fd, data)
        try:
            os.fsync(fd)
        except OSError as e:
            print("  fsync of", name, "failed:", e); raise
        good[name] = hashlib.sha256(data).hexdigest()
        return 0
    except OSError as e:
        good.pop(name, None)   # O_TRUNC happened: what it holds now is not promised
        return e.errno
    finally:
        os.close(fd)
def fill(prefix, size):
    n = 0
    while True:
        e = put(f"{prefix}{n}", os.urandom(size))
        if e:
            return n, errno.errorcode.get(e, e)
        n += 1
n1, e1 = fill("a", 1 << 20); print("first fill:", n1, "MiB, then", e1)
for i in range(0, n1, 2):
    os.unlink(f"{M}/a{i}"); good.pop(f"a{i}", None)
print(open(f"{M}/.kvfs").read().replace(chr(10), " ")[:0])
n2, e2 = fill("b", 1 << 20); print("after deleting", (n1 + 1) // 2, "MiB: second fill:", n2, "MiB, then", e2)
# overwrite in place, many times: the cleaner must keep up on a full disk
ok = fails = 0
for r in range(6):
    for i in range(1, n1, 2):
        e = put(f"a{i}", os.urandom(1 << 20))
        ok += not e; fails += bool(e)
print("overwrites:", ok, "ok,", fails, "failed")
st = os.statvfs(M); print("df free:", st.f_bavail * st.f_frsize // 1024, "KiB")
json.dump(good, open(f"{W}/good.json", "w"))
PY
grep -E "disk_bytes|live_bytes|cleaner_passes|segments_deleted|read_only|error" mnt/.kvfs
kill -9 "$(sed -n 's/^pid: //p' mnt/.kvfs)"; sleep 1; fusermount3 -uz mnt
"$B/kvfs" lo/s mnt || { echo "FAIL: remount after kill -9 refused"; exit 1; }
python3 - "$W" <<'PY'
import os, sys, hashlib, json
W = sys.argv[1]; good = json.load(open(f"{W}/good.json")); bad = 0
for n, h in good.items():
    try:
        d = open(f"{W}/mnt/{n}", "rb").read()
    except OSError as e:
        print("FAIL lost", n, e); bad += 1; continue
    if hashlib.sha256(d).hexdigest() != h:
        print("FAIL changed", n, len(d)); bad += 1
print(f"{len(good) - bad} passed, {bad} failed")
PY
"$B/kvfs" --unmount mnt; umount lo; cd /; rm -rf "$W"
