#!/usr/bin/env bash
# Quick start on a fresh Debian machine (as root, or with sudo for the packages):
# installs the build dependencies, builds kvfs, and starts kv_cli on the default store
# ($KVFS_DATADIR, else ${XDG_DATA_HOME:-~/.local/share}/kvfs). Type commands (PUT k v, GET k,
# FLUSH, ...); end with EXIT or Ctrl-D.
set -eu
cd "$(dirname "$0")"
if ! command -v meson >/dev/null || ! pkg-config --exists check fuse3 2>/dev/null; then
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq \
		meson ninja-build pkg-config gcc check libfuse3-dev fuse3 python3 >/dev/null
fi
[ -d build/meson-private ] || meson setup build >/dev/null
ninja -C build >/dev/null
exec ./build/mount/kv_cli "$@"
