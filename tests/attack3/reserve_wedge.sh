#!/bin/bash
# A checkpoint larger than the space reserve wedges a full store: 150,000 small keys and a SNAP
# make an 11.4 MB checkpoint while space.reserve stays 4 MiB; 1 MiB values go in until ENOSPC;
# then every DEL, every SNAP and every PUT fails with ENOSPC, in that process and every later
# one (56 MiB of deletable values, and nothing can be deleted). DESIGN.md 6 promises a reserve of
# "at least a checkpoint's size plus 64 KiB, so that the next steps always have room" and that
# deletes go through on it.
# usage: reserve_wedge.sh BUILD_DIR   (root; loop device)
set -u
B=$(realpath "$1"); W=$(mktemp -d /tmp/wedge.XXXX); cd "$W"
truncate -s 96M disk.img && mkfs.ext4 -q -F disk.img && mkdir lo && mount -o loop disk.img lo
python3 - "$B/kv_cli" "$W/lo/s" <<'PY'
import subprocess, sys, os
KV, D = sys.argv[1], sys.argv[2]
def run(lines):
    p = subprocess.run([KV, "-o", "segment_bytes=8M", D], input="".join(lines).encode(), capture_output=True)
    return p.stdout.decode().splitlines(), p.stderr.decode().strip()
out, _ = run([f"PUT smallkey{i:08d} v{i:06d}\n" for i in range(150000)] + ["SNAP\n"])
print("150,000 keys and a SNAP:", "ok" if out[-1] == "OK" else out[-1])
print(os.popen(f"ls -l {D} | grep -E 'ckpt|reserve'").read().rstrip())
big = "B" * (1 << 20)
out, _ = run([f"PUT big{i} {big}\n" for i in range(120)])
n = sum(1 for l in out if l == "OK")
print(f"1 MiB values until the disk is full: {n} stored, then {next(l for l in out if l.startswith('ERR'))}")
out, err = run([f"DEL big{i}\n" for i in range(n)] + ["SNAP\n", "PUT tiny 1\n"])
ok = sum(1 for l in out[:n] if l == "OK")
print(f"deleting them in a new process: {ok} of {n} DELs ok; SNAP: {out[n]}; PUT: {out[n + 1]}")
print("stderr:", err)
print("FAIL: deletes cannot make room" if ok == 0 else "PASS")
PY
umount lo; cd /; rm -rf "$W"
