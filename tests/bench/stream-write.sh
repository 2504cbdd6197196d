#!/bin/bash
# stream-write.sh — issue 11's streaming-write row alone: a plain directory, the plain FUSE
# passthrough (tests/bench/passthrough.c) and a kvfs mount on the same disk, the directories
# alternating round by round (fsbench --stream-rounds), then each FUSE daemon's CPU time and its
# threads' time waiting for a CPU, per MiB written, and the load average before and after.
#
#   tests/bench/stream-write.sh BUILD_DIR [ROUNDS [MB [WORK_DIR [LABEL BUILD2 [KVFS_OPTION...]]]]]
#
# Defaults: 5 rounds of 512 MiB under /var/tmp/kvfs-stream (put WORK_DIR on the disk you mean to
# measure). LABEL BUILD2 KVFS_OPTION...: a fourth directory, BUILD2's kvfs mounted with those
# options (e.g. `kvfs-wb BUILD -o writeback_cache`), to compare a change in the same run. Root
# (FUSE mounts). The analysis of a run: tests/bench/perf-notes.md.
set -eu -o pipefail
if [ $# -lt 1 ]; then
	sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 2
fi
B=$(cd "$1" && pwd)
ROUNDS=${2:-5}
MB=${3:-512}
W=${4:-/var/tmp/kvfs-stream}
[ $# -ge 4 ] && shift 4 || shift $#
mkdir -p "$W"
W=$(mktemp -d "$W/run.XXXXXX")
mounted=
cleanup() {
	for m in $mounted; do
		fusermount3 -u "$m" || echo "stream-write: could not unmount $m" >&2
	done
	sleep 1
	rm -rf "$W"
}
trap cleanup EXIT
mkdir -p "$W/plain" "$W/backing" "$W/kvdata" "$W/pt" "$W/kv"
"$B/tests/bench/passthrough" "$W/backing" "$W/pt"
mounted="$W/pt"
"$B/kvfs" "$W/kvdata" "$W/kv"
mounted="$mounted $W/kv"
dirs="plain=$W/plain passthrough=$W/pt kvfs=$W/kv"
labels="passthrough kvfs"
if [ $# -ge 2 ]; then
	label=$1
	B2=$(cd "$2" && pwd)
	shift 2
	mkdir -p "$W/kvdata2" "$W/kv2"
	"$B2/kvfs" "$@" "$W/kvdata2" "$W/kv2"
	mounted="$mounted $W/kv2"
	dirs="$dirs $label=$W/kv2"
	labels="$labels $label"
fi
# the daemons, found by their arguments: the process that has the mount's arguments and is
# oldest (kvfs forks a watcher of the same command line)
pids=
for d in pt kv kv2; do
	[ -d "$W/$d" ] || continue
	case $d in
	pt) pids="$pids $(pgrep -o -f "passthrough $W/backing $W/pt")" ;;
	kv) pids="$pids $(pgrep -o -f "kvfs $W/kvdata $W/kv\$")" ;;
	kv2) pids="$pids $(pgrep -o -f "kvfs.* $W/kvdata2 $W/kv2\$")" ;;
	esac
done
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $2 } END { printf "%d", s }'; }
declare -A c0 q0
for p in $pids; do
	c0[$p]=$(cpu_ticks "$p")
	q0[$p]=$(wait_ns "$p")
done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$B/tests/bench/fsbench" --mb "$MB" --stream-rounds "$ROUNDS" $dirs
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
hz=$(getconf CLK_TCK)
set -- $labels
line="Per MiB written, each daemon's CPU time / its threads' time waiting for a CPU:"
for p in $pids; do
	line="$line $1 $(awk -v t=$(( $(cpu_ticks "$p") - c0[$p] )) -v hz="$hz" -v n=$(( ROUNDS * MB )) \
		'BEGIN { printf "%.3f", t * 1000 / hz / n }') / $(awk -v w=$(( $(wait_ns "$p") - q0[$p] )) \
		-v n=$(( ROUNDS * MB )) 'BEGIN { printf "%.3f", w / 1e6 / n }') ms,"
	shift
done
echo "${line%,}."
