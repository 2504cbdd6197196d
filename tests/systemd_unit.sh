#!/usr/bin/env bash
# The unit template kvfs@.service under a real systemd (issue 14): systemd-analyze verify of the
# unit as configured for this build, then a systemd of its own, PID 1 of a new PID and mount
# namespace (unshare), that starts the unit for a scratch mount point, sees it active with
# kvfs's READY=1 status, writes through the mount, stops it (ExecStop: kvfs --unmount) and
# checks it stopped cleanly with the store closed and holding the file.
#
# The machine is left alone: in the namespace /run is a fresh tmpfs, /etc an overlay whose
# writes land in the scratch directory, and /etc/systemd/system and /lib/systemd/system are
# replaced by directories holding only the unit under test and stub targets (sysinit, basic,
# local-fs, multi-user, shutdown: empty, so nothing else of the system starts). systemd is told
# to start an empty target; the test talks to it with systemctl through nsenter and kills it at
# the end.
#
# Usage: tests/systemd_unit.sh [BUILD]   (BUILD: the meson build directory, default build)
# Exit 0 passed, 77 skipped (it says why: not root, no /dev/fuse, no systemd, unshare or
# overlay, or systemd does not come up here), 1 failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || exit 1
kvfs=$build/kvfs
kv_cli=$build/kv_cli
unit_in=$root/systemd/kvfs@.service.in

skip() { echo "systemd_unit: skipped: $*"; exit 77; }
fail() { echo "systemd_unit: FAILED: $*"; exit 1; }

# ---- 1. systemd-analyze verify ---------------------------------------------------------------
command -v systemd-analyze >/dev/null || skip "no systemd-analyze (Debian package systemd)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-systemd.XXXXXX") || exit 1
sd_pid=
cleanup() {
	[ -n "$sd_pid" ] && kill -KILL "$sd_pid" 2>/dev/null
	# the namespace's mounts went with it; the scratch directory is ours
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/lib" "$tmp/etc" "$tmp/ovl/u" "$tmp/ovl/w" "$tmp/mnt"
sed "s|@BINDIR@|$build|" "$unit_in" > "$tmp/lib/kvfs@.service"
out=$(systemd-analyze verify --man=no "$tmp/lib/kvfs@.service" 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify said: $out"
echo "systemd_unit: systemd-analyze verify: clean"

# ---- 2. under systemd as PID 1 of a namespace -------------------------------------------------
[ "$(id -u)" = 0 ] || skip "not root (a systemd of its own needs it)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
systemd=/lib/systemd/systemd
[ -x "$systemd" ] || skip "no $systemd (Debian package systemd)"
command -v unshare >/dev/null && command -v nsenter >/dev/null || skip "no unshare/nsenter"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || skip "no overlay filesystem (for a private /etc)"

for t in sysinit basic local-fs multi-user shutdown kvfs-test; do
	printf '[Unit]\nDescription=stub %s (tests/systemd_unit.sh)\nDefaultDependencies=no\n' "$t" \
		> "$tmp/lib/$t.target"
done
mnt=$tmp/mnt
data=$tmp/data
unit=kvfs@$(systemd-escape --path "$mnt").service
conf=$(systemd-escape --path "$mnt").conf
cat > "$tmp/boot.sh" <<BOOT
#!/bin/sh
set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mount -t overlay overlay -o lowerdir=/etc,upperdir=$tmp/ovl/u,workdir=$tmp/ovl/w /etc
mount --bind $tmp/etc /etc/systemd/system
mount --bind $tmp/lib /lib/systemd/system
mkdir -p /etc/kvfs
printf 'KVFS_DATADIR=%s\nKVFS_OPTIONS=sync=always\n' '$data' > /etc/kvfs/$conf
exec $systemd --system --unit=kvfs-test.target
BOOT
chmod +x "$tmp/boot.sh"
unshare --pid --fork --mount --mount-proc "$tmp/boot.sh" > "$tmp/boot.log" 2>&1 &
ns_parent=$!
# systemd is the child of unshare; wait until it answers (a hang guard of a minute)
sc() { nsenter -t "$sd_pid" -m -p systemctl "$@"; }
for _ in $(seq 600); do
	sd_pid=$(pgrep -P "$ns_parent" 2>/dev/null | head -1)
	if [ -n "$sd_pid" ] && [ "$(sc is-system-running 2>/dev/null)" = running ]; then
		break
	fi
	kill -0 "$ns_parent" 2>/dev/null || break
	sleep 0.1
done
[ -n "$sd_pid" ] && [ "$(sc is-system-running 2>/dev/null)" = running ] ||
	skip "systemd does not come up as PID 1 of a namespace here: $(tail -3 "$tmp/boot.log")"
echo "systemd_unit: systemd $(sc --version | head -1 | cut -d' ' -f2) is PID 1 of a namespace (pid $sd_pid outside)"

# start: returns once kvfs said READY=1 (Type=notify), so the mount is there at once
sc start "$unit" || fail "systemctl start $unit: $(sc status --no-pager "$unit" 2>&1 | tail -5)"
[ "$(sc show -P ActiveState "$unit")" = active ] || fail "$unit is not active after start"
status=$(sc show -P StatusText "$unit")
[ "$status" = "mounted at $mnt" ] || fail "status is '$status', not 'mounted at $mnt'"
main=$(sc show -P MainPID "$unit")
nsenter -t "$sd_pid" -m sh -c "printf 'through systemd' > '$mnt/f'" || fail "writing through the mount"
nsenter -t "$sd_pid" -m grep -qx "pid: $main" "$mnt/.kvfs" ||
	fail "the mount's daemon is not the unit's main process $main"
nsenter -t "$sd_pid" -m grep -qx "sync: always" "$mnt/.kvfs" ||
	fail "KVFS_OPTIONS from /etc/kvfs/$conf did not reach kvfs"
echo "systemd_unit: $unit active, '$status', main pid $main"

# stop: ExecStop=kvfs --unmount returns once the store is closed; the daemon exits 0
sc stop "$unit" || fail "systemctl stop $unit"
[ "$(sc show -P Result "$unit")" = success ] || fail "$unit ended with $(sc show -P Result "$unit")"
[ "$(sc show -P ExecMainStatus "$unit")" = 0 ] || fail "kvfs exited $(sc show -P ExecMainStatus "$unit")"
nsenter -t "$sd_pid" -m -p grep -q " $mnt " /proc/self/mountinfo && fail "$mnt is still mounted"
got=$(nsenter -t "$sd_pid" -m -p "$kv_cli" "$data" GET f) || fail "kv_cli could not open the store after the stop"
[ "$got" = "through systemd" ] || fail "kv_cli GET f gave '$got'"
echo "systemd_unit: stopped cleanly (Result=success, exit 0); the store is closed and holds f"
echo "systemd_unit: passed"
