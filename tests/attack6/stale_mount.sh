#!/bin/sh
# What the open lead's kept image was (attack6 FINDINGS, "Open lead"): an ext4 still mounted on a
# case's image while the harness rewrote that image in place from the template. A template holds
# an old checkpoint file (fsync'd); a case mounts a copy, deletes it, writes a new one (fdatasync,
# rename, fsync of the directory: ext4 reuses the old file's blocks); the template is copied over
# the image in place (the next case's start) while that mount is still there; then the mount
# goes. Its unmount writes its inode tables, bitmaps and a clean superblock over the template's
# data: the new checkpoint's inode maps blocks holding the OLD checkpoint's bytes, the superblock
# says "clean", mount count 2, no needs_recovery — the kept image's signature, without any engine.
# usage: stale_mount.sh    (root: loop devices). No randomness: no seed. Exits 0 when it shows it.
set -eu
d=$(mktemp -d /var/tmp/a6stale.XXXXXX)
trap 'umount "$d/m" 2>/dev/null || true; rm -rf "$d"' EXIT
mkdir "$d/m"
truncate -s 48M "$d/t.img"
mkfs.ext4 -q -F "$d/t.img"
l=$(losetup -f --show "$d/t.img")
mount "$l" "$d/m"
python3 -c "
import os
with open('$d/m/ckpt-41', 'wb') as f:
    f.write(b'OLDCKPT0' * 566); f.flush(); os.fsync(f.fileno())"
umount "$d/m"; losetup -d "$l"
cp "$d/t.img" "$d/case.img"
l=$(losetup -f --show "$d/case.img")
mount -o commit=600 "$l" "$d/m"
python3 -c "
import os
os.unlink('$d/m/ckpt-41'); fd = os.open('$d/m', os.O_RDONLY); os.fsync(fd)
with open('$d/m/ckpt-148', 'wb') as f:
    f.write(b'NEWCKPT1' * 566); f.flush(); os.fdatasync(f.fileno())
os.rename('$d/m/ckpt-148', '$d/m/ckpt-148.kvc'); os.fsync(fd)"
python3 -c "import shutil; shutil.copyfile('$d/t.img', '$d/case.img')"  # in place: the same inode
umount "$d/m"; losetup -d "$l"
dumpe2fs -h "$d/case.img" 2>/dev/null | grep -E "^Filesystem (features|state)|^Mount count"
debugfs -R "stat ckpt-148.kvc" "$d/case.img" 2>/dev/null | grep -A1 EXTENTS
head=$(debugfs -R "cat ckpt-148.kvc" "$d/case.img" 2>/dev/null | head -c 8)
echo "ckpt-148.kvc begins: $head"
if [ "$head" = OLDCKPT0 ]; then echo "shown: the new checkpoint's blocks hold the old one's bytes"; else echo "not shown"; exit 1; fi
