#!/bin/bash
# Media damage in a file's bytes written since the last checkpoint, through a kvfs mount:
# "victim" (20,000 bytes) fsync'd, one byte of its value flipped in the segment, "after" fsync'd.
# Promised: EIO to that reader, read_errors counted, the daemon serves on, `kv_cli --check`
# names the key. Found: all of that until the unmount; then the store refuses to mount, --check
# names no key, and --salvage cuts the log at the damaged record: "after" (fsync'd, intact) is lost.
# usage: flip_value.sh BUILD_DIR   (root: drop_caches)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/flip.XXXX); cd "$W"; mkdir mnt
"$B/kvfs" s mnt || exit 1
python3 - "$W" <<'PY'
import os, glob, sys
W = sys.argv[1]; M = f"{W}/mnt"
pat = b"UNIQUE-" + os.urandom(8).hex().encode()
data = (pat * 2000)[:20000]
with open(f"{M}/victim", "wb") as f: f.write(data); f.flush(); os.fsync(f.fileno())
seg = sorted(glob.glob(f"{W}/s/wal-*.log"))[-1]
i = open(seg, "rb").read().find(pat)
fd = os.open(seg, os.O_RDWR); c = os.pread(fd, 1, i + 5000); os.pwrite(fd, bytes([c[0] ^ 0x40]), i + 5000); os.close(fd)
open("/proc/sys/vm/drop_caches", "w").write("3\n")
try:
    open(f"{M}/victim", "rb").read(); print("FAIL: the damaged file read without an error")
except OSError as e:
    print("reading victim:", e)
with open(f"{M}/after", "wb") as f: f.write(b"after-data"); f.flush(); os.fsync(f.fileno())
print("after written and fsync'd")
PY
grep read_errors mnt/.kvfs
"$B/kvfs" --unmount mnt
echo "== kv_cli --check"; "$B/kv_cli" --check s; echo "exit $?"
echo "== mount"; "$B/kvfs" s mnt && { ls mnt; "$B/kvfs" --unmount mnt; }
echo "== kv_cli --salvage"; "$B/kv_cli" --salvage s; echo "exit $?"
echo "== after salvage: GET after"; "$B/kv_cli" s GET after
cd /; rm -rf "$W"
