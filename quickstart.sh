#!/usr/bin/env bash
# Quick start on a fresh Debian machine (as root, or with sudo for the packages): installs the
# build dependencies, builds kvfs, and mounts the default store:
#   data:        $KVFS_DATADIR, else ${XDG_DATA_HOME:-~/.local/share}/kvfs
#   mount point: $KVFS_MOUNT, else ~/kvfs
# Unmount with: ./build/kvfs --unmount ~/kvfs   (returns once everything is flushed and closed)
set -eu
cd "$(dirname "$0")"
if ! command -v meson >/dev/null || ! pkg-config --exists check fuse3 libsystemd raft libuv 2>/dev/null ||
	! command -v fusermount3 >/dev/null; then
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
		meson ninja-build pkg-config gcc check libfuse3-dev libsystemd-dev fuse3 python3 libraft-dev \
		libuv1-dev >/dev/null
fi
[ -d build/meson-private ] || meson setup build >/dev/null
ninja -C build >/dev/null
data=${KVFS_DATADIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kvfs}
mnt=${KVFS_MOUNT:-$HOME/kvfs}
mkdir -p "$(dirname "$data")" "$mnt"
./build/kvfs "$data" "$mnt"
echo "kvfs: store $data mounted at $mnt"
echo "kvfs: try: echo hello > $mnt/greeting; cat $mnt/.kvfs"
echo "kvfs: kv_cli works on it while mounted: ./build/kv_cli $data LIST"
echo "kvfs: unmount with: ./build/kvfs --unmount $mnt"
