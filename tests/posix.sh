#!/usr/bin/env bash
# POSIX conformance of a kvfs mount, by two outside suites:
#   pjdfstest (github pjd/pjdfstest at 85a8aea), run as root with prove from a directory in a
#     fresh mount with allow_other,default_permissions (8,798 of its tests run on a FUSE mount);
#   fsx (xfstests ltp/fsx.c at 63a2972): -N 100000 operations, mmap reads and writes on, on a
#     file in the same mount, seeded.
# Their sources and offline build script are in the shared peers directory beside the clone
# (../shared/peers, or ../../shared/peers for a worktree; KV_PEERS overrides); they are built
# once into BUILD/peers. Then the mount must unmount cleanly (daemon exit 0) and the store pass
# kv_cli --check.
#
# Usage: tests/posix.sh [BUILD]         (BUILD: the meson build directory, default build)
#   KV_SEED=N       fsx's seed (printed; default from the clock)
#   KV_POSIX_ONLY=pjdfstest|fsx         one suite
#   KV_PJD_TESTS="chmod link/00.t"      some of pjdfstest's tests (paths under its tests/)
#   KV_PJD_JOBS=N   test files run at once (default 2: each file works on names of its own;
#                   most of the time goes to the processes every case starts, not the mount)
# Output: prove's and fsx's summaries, every failing pjdfstest case, and last one line
# "N passed, N failed": each pjdfstest case and fsx count one. A case passes as TAP says: "ok",
# or "not ok # TODO" (pjdfstest's own expected failures on Linux, listed, as prove counts them);
# a planned case that never ran fails. Then the unmount and kv_cli --check count one each.
# Exit 0 when nothing failed, 77 (skipped) when it cannot run here (not root, no /dev/fuse, no
# peers), 1 otherwise.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd) || exit 1
kvfs=${KVFS:-$build/kvfs}
kv_cli=${KV_CLI:-$build/kv_cli}

skip() { echo "posix: skipped: $*"; echo "0 passed, 0 failed"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (pjdfstest checks ownership and permissions as root)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
peers=${KV_PEERS:-}
for p in "$root/../shared/peers" "$root/../../shared/peers"; do
	[ -z "$peers" ] && [ -x "$p/build.sh" ] && peers=$(cd "$p" && pwd)
done
[ -n "$peers" ] || skip "no shared peers directory beside the clone (../shared/peers)"
command -v prove >/dev/null || skip "prove (perl) is not installed"

"$peers/build.sh" "$build/peers" >/dev/null || { echo "posix: building the peers failed"; echo "0 passed, 1 failed"; exit 1; }
pjd=$build/peers/pjdfstest
fsx=$build/peers/fsx

work=$(mktemp -d /tmp/kvfs-posix.XXXXXX)
chmod 755 "$work"
mnt=$work/mnt
mkdir "$mnt"
passed=0
failed=0
cleanup() {
	if grep -qs " $mnt " /proc/mounts; then fusermount3 -uz "$mnt"; fi
	[ -n "${daemon:-}" ] && kill "$daemon" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

"$kvfs" -o allow_other,default_permissions "$work/data" "$mnt" || { echo "posix: kvfs did not mount"; echo "0 passed, 1 failed"; exit 1; }
daemon=$(cat "$work/data/LOCK" 2>/dev/null)
mkdir "$mnt/t"
chmod 777 "$mnt/t"

if [ "${KV_POSIX_ONLY:-pjdfstest}" = pjdfstest ]; then
	tests=()
	for t in ${KV_PJD_TESTS:-.}; do tests+=("$pjd/tests/$t"); done
	start=$(date +%s)
	( cd "$mnt/t" && prove -r -v --merge -j "${KV_PJD_JOBS:-2}" "${tests[@]}" ) \
		>"$work/prove.log" 2>&1
	ok=$(grep -c '^ok ' "$work/prove.log")
	todo=$(grep -cE '^not ok .*# TODO' "$work/prove.log")
	notok=$(grep -E '^not ok ' "$work/prove.log" | grep -vc '# TODO')
	# planned cases that never ran (a test script that stopped early)
	missing=$(grep -oE 'You planned [0-9]+ tests but ran [0-9]+' "$work/prove.log" |
		awk '{ m += $3 - $7 } END { print m + 0 }')
	grep -E '^Files=|^Result:' "$work/prove.log"
	echo "pjdfstest: $ok ok, $todo not ok # TODO (expected on Linux), $notok not ok," \
		"$missing planned but not run ($(( $(date +%s) - start )) s)"
	# every failing case with the test file it belongs to (with -j, prove prints a file's
	# lines together, after its name)
	awk '/^\/.*\.t \.\./ { file = $1 } /^not ok / && !/# TODO/ { print "  " file ": " $0 }' \
		"$work/prove.log"
	grep -E 'You planned' "$work/prove.log" | sed 's/^/  /'
	passed=$((passed + ok + todo))
	failed=$((failed + notok + missing))
fi

if [ "${KV_POSIX_ONLY:-fsx}" = fsx ]; then
	seed=${KV_SEED:-$(( $(date +%s%N) % 1000000 + 1 ))}
	echo "fsx seed: $seed (rerun: KV_SEED=$seed KV_POSIX_ONLY=fsx tests/posix.sh)"
	start=$(date +%s)
	if "$fsx" -q -N 100000 -S "$seed" "$mnt/t/fsx.file" >"$work/fsx.log" 2>&1; then
		echo "fsx: 100000 operations, mmap on: passed ($(( $(date +%s) - start )) s)"
		passed=$((passed + 1))
	else
		echo "fsx: FAILED ($(( $(date +%s) - start )) s); its last lines:"
		tail -n 40 "$work/fsx.log" | sed 's/^/  /'
		failed=$((failed + 1))
	fi
fi

# a clean end: the daemon exits 0 after the unmount, and the store is whole
if fusermount3 -u "$mnt"; then
	for _ in $(seq 600); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$daemon" 2>/dev/null; then
		echo "posix: the daemon did not exit after the unmount"
		failed=$((failed + 1))
	else
		passed=$((passed + 1))
	fi
	daemon=
	if "$kv_cli" --check "$work/data" >"$work/check.log" 2>&1; then
		passed=$((passed + 1))
	else
		echo "posix: kv_cli --check after the run:"; sed 's/^/  /' "$work/check.log"
		failed=$((failed + 1))
	fi
else
	echo "posix: the mount could not be unmounted"
	failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
