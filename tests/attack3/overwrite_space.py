#!/usr/bin/env python3
"""Disk use under overwrite patterns through a kvfs mount (issue 11: at most 2x live + one
segment at the default policy, plus the space reserve). Patterns: random 4 KiB overwrites of a
big file, sequential rewrite of many small files, and append+truncate churn. Prints
disk_bytes / live_bytes after each phase and the largest ratio seen while writing.
usage: overwrite_space.py MNT [SEED]"""
import os, random, sys
M = sys.argv[1]; SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
print("seed", SEED)
rnd = random.Random(SEED)
def stats():
    d = dict(l.split(": ", 1) for l in open(f"{M}/.kvfs").read().splitlines())
    return int(d["disk_bytes"]), int(d["live_bytes"]), int(d["cleaner_passes"]), int(d["cleaner_moved_bytes"]), int(d["written_bytes"])
SEG = 64 << 20
worst = [0, ""]
def check(tag):
    disk, live, cp, moved, written = stats()
    bound = 2 * live + SEG
    over = disk - bound
    if over > worst[0]:
        worst[0] = over; worst[1] = f"{tag}: disk {disk >> 20} MiB, live {live >> 20} MiB, bound {bound >> 20} MiB"
    return disk, live, cp, moved, written
# 1: a 256 MiB file, then 1 GiB of random 4 KiB overwrites
F = 256 << 20
with open(f"{M}/big", "wb") as f:
    for i in range(F >> 20): f.write(os.urandom(1 << 20))
fd = os.open(f"{M}/big", os.O_WRONLY)
blk = os.urandom(4096)
for i in range((1 << 30) >> 12):
    os.pwrite(fd, blk, rnd.randrange(F >> 12) << 12)
    if i % 16384 == 0: check(f"random 4k #{i}")
os.fsync(fd); os.close(fd)
print("random 4k overwrites:", check("random end"))
# 2: 2,000 files of 64 KiB rewritten 8 times
for r in range(8):
    for i in range(2000):
        with open(f"{M}/s{i}", "wb") as f: f.write(os.urandom(65536))
    check(f"small round {r}")
print("small rewrites:", check("small end"))
# 3: delete the big file: space must come back
os.unlink(f"{M}/big")
for i in range(64):
    with open(f"{M}/pad", "wb") as f: f.write(os.urandom(1 << 20))
print("after deleting big:", check("after delete"))
print("worst excess over 2*live+segment:", worst[0] >> 20, "MiB at", worst[1])
