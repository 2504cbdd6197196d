#!/usr/bin/env bash
# Long seeded runs of the crash and stress tests, for a soak outside CI:
#
#   tests/soak.sh [--rounds N | --minutes M] [--seed S] [--from R] [--only JOB] [BUILD_DIR]
#
# Each soak round derives a seed from S (default: from the clock) and runs, one line each:
#   killrounds  build/tests/test_killrounds with KV_KILL_ROUNDS=$SOAK_KILL_ROUNDS (default 300)
#   crash       build/tests/test_crash with KV_CRASH_SEEDS=$SOAK_CRASH_SEEDS (default 200)
#   fsx         build/tests/test_fsx, if built (KV_FSX_OPS=$SOAK_FSX_OPS when that is set)
#   replication build/tests/test_replication with KV_REPL_ROUNDS=$SOAK_REPL_ROUNDS (default
#               200): three kv_cli nodes, leader kills and stops, follower kills, a wiped node,
#               every round checked against the ledger of acknowledged writes
#   fio         fio (Debian's package; installed if missing) against a fresh kvfs mount with a
#               seeded sync mode: random and sequential writers with verify=crc32c and periodic
#               fsync; then a clean unmount (daemon exit 0), kv_cli --check, a remount and
#               fio --verify_only over the same files (everything written is still there)
# and prints `round R JOB seed=N: PASS|FAIL (Ts)`. It ends with `N passed, N failed`, the rerun
# command of every failure, and exits 1 if anything failed. Default: one round. --from R starts
# at round R (seeds are per round, so `--seed S --from R --rounds 1 --only JOB` reruns one job).
# Logs of failed jobs are kept (their path is printed). Needs root and /dev/fuse for the mounts.
set -u
cd "$(dirname "$0")/.."

rounds=
minutes=
seed=
first=0
only=
build=build
while [ $# -gt 0 ]; do
	case $1 in
	--rounds) rounds=$2; shift 2 ;;
	--minutes) minutes=$2; shift 2 ;;
	--seed) seed=$2; shift 2 ;;
	--from) first=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
	*) build=$1; shift ;;
	esac
done
if [ -n "$rounds" ] && [ -n "$minutes" ]; then
	echo "soak.sh: --rounds or --minutes, not both" >&2
	exit 2
fi
[ -z "$rounds" ] && [ -z "$minutes" ] && rounds=1
[ -z "$seed" ] && seed=$(( ($(date +%s%N) ^ ($$ << 20)) & 0xffffffffffff ))
build=$(cd "$build" && pwd) || exit 2
for bin in kvfs kv_cli tests/test_killrounds tests/test_crash tests/test_replication; do
	[ -x "$build/$bin" ] || { echo "soak.sh: $build/$bin is not built (ninja -C $build)" >&2; exit 2; }
done
export KVFS=$build/kvfs KV_CLI=$build/kv_cli CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-3600}
kill_rounds=${SOAK_KILL_ROUNDS:-300}
crash_seeds=${SOAK_CRASH_SEEDS:-200}
repl_rounds=${SOAK_REPL_ROUNDS:-200}

logs=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-soak.XXXXXX")
passed=0
failed=0
failures=()
start=$SECONDS
echo "soak: seed $seed, $( [ -n "$rounds" ] && echo "$rounds round(s)" || echo "$minutes minute(s)"), build $build, logs in $logs"

# The seed of job $2 in round $1: a splitmix-style mix of the run's seed, 48 bits (retypeable).
derive() {
	local z=$(( seed + ($1 + 1) * 0x9e3779b97f4a7c15 + $2 * 0x632be59bd9b4e019 ))
	z=$(( (z ^ ((z >> 30) & 0x3ffffffff)) * 0xbf58476d1ce4e5b9 ))
	z=$(( (z ^ ((z >> 27) & 0x1fffffffff)) * 0x94d049bb133111eb ))
	echo $(( (z ^ ((z >> 31) & 0x1ffffffff)) & 0xffffffffffff ))
}

# want JOB: whether this run does JOB
want() {
	[ -z "$only" ] || [ "$only" = "$1" ]
}

# report ROUND JOB SEED RC T0 COMMAND: one line, and the counts
report() {
	local r=$1 job=$2 s=$3 rc=$4 t=$(( SECONDS - $5 )) log=$logs/r$1-$2.log
	local cmd="tests/soak.sh --seed $seed --from $r --rounds 1 --only $job $build${6:+   # or: $6}"
	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "round $r $job seed=$s: PASS (${t}s)"
		rm -f "$log"
	else
		failed=$((failed + 1))
		echo "round $r $job seed=$s: FAIL (${t}s, exit $rc; log $log)"
		tail -n 5 "$log" | sed 's/^/    /'
		failures+=("$job seed=$s: $cmd")
	fi
}

# ---- fio against a mount ----------------------------------------------------------------
fio_dir=
fio_pid=
fio_cleanup() {
	[ -n "$fio_dir" ] || return 0
	mountpoint -q "$fio_dir/mnt" 2>/dev/null && fusermount3 -uz "$fio_dir/mnt"
	[ -n "$fio_pid" ] && kill -KILL "$fio_pid" 2>/dev/null && wait "$fio_pid" 2>/dev/null
	rm -rf "$fio_dir"
	fio_dir= fio_pid=
}
trap 'fio_cleanup' EXIT

# fio_mount OPTS: kvfs in the foreground as our child (so its exit status can be checked)
fio_mount() {
	"$KVFS" -f -o "$1" "$fio_dir/data" "$fio_dir/mnt" 2>>"$fio_dir/daemon.log" &
	fio_pid=$!
	for _ in $(seq 600); do # a hang guard of a minute
		mountpoint -q "$fio_dir/mnt" && return 0
		kill -0 "$fio_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "kvfs did not mount:"; cat "$fio_dir/daemon.log"
	return 1
}

fio_unmount() {
	local st
	fusermount3 -u "$fio_dir/mnt" || { echo "fusermount3 -u failed"; return 1; }
	wait "$fio_pid"
	st=$?
	fio_pid=
	[ "$st" -eq 0 ] || { echo "kvfs exited $st after the unmount:"; cat "$fio_dir/daemon.log"; return 1; }
}

# The job file. kvfs has no fallocate (EOPNOTSUPP, docs/FILESYSTEM.md): fallocate=none; no
# O_DIRECT (page-cache I/O). Every job verifies what it wrote (crc32c in every block header),
# the random writer also while writing (verify_backlog); fsync every few writes.
fio_jobfile() { # seed size
	cat <<EOF
[global]
directory=$fio_dir/mnt
ioengine=psync
direct=0
fallocate=none
randseed=$1
size=$2
verify=crc32c
verify_fatal=1
verify_state_save=0
do_verify=1
end_fsync=1

[randwrite]
rw=randwrite
bsrange=1k-64k
nrfiles=4
fsync=8
verify_backlog=32

[seqwrite]
rw=write
bs=128k
fdatasync=4

[small]
rw=randwrite
bs=4k
nrfiles=16
file_service_type=random
fsync=32
EOF
}

fio_round() { # seed
	local s=$1 modes=(batch always none) mode opts size=${SOAK_FIO_SIZE:-48m} rc
	mode=${modes[$(( s % 3 ))]}
	opts="sync=$mode,segment_bytes=$(( (s >> 2) % 2 ? 1 : 8 ))M"
	if ! command -v fio >/dev/null 2>&1; then
		echo "fio is missing: apt-get install -y fio"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fio >/dev/null ||
			{ echo "cannot install fio"; return 1; }
	fi
	if [ "$(id -u)" -ne 0 ] || [ ! -w /dev/fuse ]; then
		echo "cannot mount (needs root and /dev/fuse)"
		return 1
	fi
	fio_dir=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-soak-fio.XXXXXX")
	mkdir "$fio_dir/mnt"
	echo "kvfs -o $opts; fio seed $s, size $size per job"
	fio_jobfile "$s" "$size" >"$fio_dir/job.fio"
	fio_mount "$opts" || return 1
	# in its scratch directory: fio leaves files in the current one
	(cd "$fio_dir" && fio job.fio) || { rc=$?; echo "fio failed ($rc)"; return 1; }
	fio_unmount || return 1
	"$KV_CLI" --check "$fio_dir/data" || { echo "kv_cli --check failed after a clean unmount"; return 1; }
	fio_mount "$opts" || return 1
	# the same workload's data, read back and checked after the remount
	(cd "$fio_dir" && fio --verify_only job.fio) ||
		{ echo "fio --verify_only after the remount failed"; return 1; }
	fio_unmount || return 1
	fio_cleanup
}

# ---- the rounds -----------------------------------------------------------------------------
r=$first
while :; do
	if [ -n "$rounds" ]; then
		[ "$r" -lt $(( first + rounds )) ] || break
	else
		[ $(( SECONDS - start )) -lt $(( minutes * 60 )) ] || break
	fi

	if want killrounds; then
		s=$(derive "$r" 1)
		t0=$SECONDS
		KV_SEED=$s KV_KILL_ROUNDS=$kill_rounds "$build/tests/test_killrounds" \
			>"$logs/r$r-killrounds.log" 2>&1
		report "$r" killrounds "$s" $? "$t0" \
			"KV_SEED=$s KV_KILL_ROUNDS=$kill_rounds KVFS=$KVFS KV_CLI=$KV_CLI $build/tests/test_killrounds"
	fi

	if want crash; then
		s=$(derive "$r" 2)
		t0=$SECONDS
		KV_SEED=$s KV_CRASH_SEEDS=$crash_seeds "$build/tests/test_crash" >"$logs/r$r-crash.log" 2>&1
		report "$r" crash "$s" $? "$t0" "KV_SEED=$s KV_CRASH_SEEDS=$crash_seeds $build/tests/test_crash"
	fi

	if want fsx && [ -x "$build/tests/test_fsx" ]; then
		s=$(derive "$r" 3)
		t0=$SECONDS
		fsx_env="KV_SEED=$s${SOAK_FSX_OPS:+ KV_FSX_OPS=$SOAK_FSX_OPS}"
		env $fsx_env "$build/tests/test_fsx" >"$logs/r$r-fsx.log" 2>&1
		report "$r" fsx "$s" $? "$t0" "$fsx_env KVFS=$KVFS KV_CLI=$KV_CLI $build/tests/test_fsx"
	fi

	if want replication; then
		s=$(derive "$r" 5)
		t0=$SECONDS
		KV_SEED=$s KV_REPL_ROUNDS=$repl_rounds CK_RUN_CASE=rounds \
			"$build/tests/test_replication" >"$logs/r$r-replication.log" 2>&1
		report "$r" replication "$s" $? "$t0" \
			"KV_SEED=$s KV_REPL_ROUNDS=$repl_rounds KV_CLI=$KV_CLI $build/tests/test_replication"
	fi

	if want fio; then
		s=$(derive "$r" 4)
		t0=$SECONDS
		fio_round "$s" >"$logs/r$r-fio.log" 2>&1
		rc=$?
		fio_cleanup >>"$logs/r$r-fio.log" 2>&1
		report "$r" fio "$s" $rc "$t0" ""
	fi

	r=$((r + 1))
done

echo "$passed passed, $failed failed"
if [ "$failed" -ne 0 ]; then
	echo "failures (rerun each with):"
	for f in "${failures[@]}"; do
		echo "  $f"
	done
	exit 1
fi
rmdir "$logs" 2>/dev/null
exit 0
