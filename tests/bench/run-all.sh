#!/bin/bash
# run-all.sh — every benchmark in one run, on one disk, so that the ratios mean something
# (issue 6): the disk's own limits and the engine (kvbench), the engine beside
# LevelDB/LMDB/SQLite/RocksDB (peers), and the same file work on a plain directory, a plain FUSE
# passthrough mount, the nullfs floor and a kvfs mount (fsbench), all under WORK_DIR. Writes
# docs/PERFORMANCE.md (machine, disk, every table, the targets met or not) and
# docs/perf-threads.png (gnuplot), and keeps the raw outputs in WORK_DIR.
#
#   tests/bench/run-all.sh [BUILD_DIR [WORK_DIR]]   (defaults: build, /var/tmp/kvfs-bench)
#   meson compile -C BUILD_DIR bench                (the same, with BUILD_DIR's programs)
#
# Sizes from the environment (full-size defaults in brackets):
#   KEYS     engine scale/snapshot keys and peers keys            [1000000]
#   FLUSHES  write+flush operations per group-commit row          [4000]
#   SYNCS    durable puts per peers row (1 and 8 threads)          [2000]
#   SQLITE_KEYS  SQLite's fills and reads (a commit per put: 1M takes minutes) [200000]
#   LOG_MB   log replayed by the recovery benchmark, MiB           [1024]
#   DISK_MB  the disk's sequential write/read, MiB                 [1024]
#   FILES    fsbench files (the readdir directory holds this many) [10000]
#   MB       fsbench streamed file, MiB                            [1024]
#   THREADS  fsbench's many-threads rows                           [8]
#   REPL_OPS   durable puts per replbench row (1 and 8 writers)    [4000]
#   REPL_KILLS leader kills timed by replbench                     [7]
#   CLEANER_MB  live data of kvbench's cleaner rows, MiB (6x that is overwritten) [256]
#   COLD     cold random gets per store in peers (after dropping the page cache) [10000]
#   BIG=1    also kvbench's scale to BIG_KEYS keys and BIG_GIB GiB of values (opt-in: it
#            writes BIG_GIB GiB, needs about 1.2x that free under WORK_DIR, and takes minutes)
#   BIG_KEYS [10000000]   BIG_GIB [20]
#   APPS     fsbench's whole applications (tar x, SQLite, 100,000 files, venv): 1 or 0 [1]
#   TINY=1   all of the above small, no applications (a minute; checks the script, not the
#            machine)
#   DOC      where the page goes [docs/PERFORMANCE.md beside this script]; DOC= keeps docs/ as is
#   REPORT_ONLY=1  no runs: write the page and plot again from WORK_DIR's last outputs
# Run as root: fsbench drops the page cache before its cold reads, FUSE mounts need /dev/fuse,
# and a missing gnuplot is installed (gnuplot-nox). WORK_DIR must be on the disk you mean to
# measure (not a tmpfs).
set -eu -o pipefail

# Everything is in main so that bash has read the whole script before it runs any of it:
# editing this file during a run (it takes minutes) then cannot derail the run.
main() {

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BUILD=$(cd "${1:-build}" && pwd)
WORK=${2:-/var/tmp/kvfs-bench}
if [ "${TINY:-0}" = 1 ]; then
	: "${KEYS:=20000}" "${FLUSHES:=200}" "${SYNCS:=80}" "${LOG_MB:=16}" "${DISK_MB:=16}"
	: "${FILES:=400}" "${MB:=16}" "${SQLITE_KEYS:=20000}" "${CLEANER_MB:=4}" "${COLD:=500}"
	: "${BIG_KEYS:=20000}" "${BIG_GIB:=1}" "${APPS:=0}"
	: "${REPL_OPS:=160}" "${REPL_KILLS:=1}"
fi
APPS=${APPS:-1}
KEYS=${KEYS:-1000000}
FLUSHES=${FLUSHES:-4000}
SYNCS=${SYNCS:-2000}
SQLITE_KEYS=${SQLITE_KEYS:-200000}
LOG_MB=${LOG_MB:-1024}
DISK_MB=${DISK_MB:-1024}
FILES=${FILES:-10000}
MB=${MB:-1024}
THREADS=${THREADS:-8}
REPL_OPS=${REPL_OPS:-4000}
REPL_KILLS=${REPL_KILLS:-7}
CLEANER_MB=${CLEANER_MB:-256}
COLD=${COLD:-10000}
BIG=${BIG:-0}
BIG_KEYS=${BIG_KEYS:-10000000}
BIG_GIB=${BIG_GIB:-20}
DOC=${DOC-$SRC/docs/PERFORMANCE.md}
PNG=$WORK/perf-threads.png
[ -n "$DOC" ] && PNG=$(dirname "$DOC")/perf-threads.png
BENCH=$BUILD/tests/bench

for prog in "$BENCH/kvbench" "$BENCH/peers" "$BENCH/fsbench" "$BENCH/passthrough" "$BENCH/nullfs" \
	"$BENCH/replbench" \
	"$BUILD/kvfs" "$BUILD/kv_cli"; do
	if [ ! -x "$prog" ]; then
		echo "run-all: $prog is missing: build first (meson compile -C $BUILD)" >&2
		exit 1
	fi
done

FS=$WORK/fs
PT_MNT=$FS/passthrough
NF_MNT=$FS/nullfs
KV_MNT=$FS/kvfs
mounted=""
cleanup() {
	for m in $mounted; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	mounted=""
}
trap cleanup EXIT

# ---- the runs ---------------------------------------------------------------------------------
runs() {
	local start
	start=$(date +%s)
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	echo "run-all: kvbench (disk, group commit, scale, snapshot, recovery, cleaner)..." >&2
	"$BENCH/kvbench" --dir "$WORK/kvbench" --keys "$KEYS" --flushes "$FLUSHES" --log-mb "$LOG_MB" \
		--disk-mb "$DISK_MB" --cleaner-mb "$CLEANER_MB" > "$WORK/kvbench.out"
	rm -rf "$WORK/kvbench"
	if [ "$BIG" = 1 ]; then
		echo "run-all: kvbench bigscale ($BIG_KEYS keys, $BIG_GIB GiB of values)..." >&2
		"$BENCH/kvbench" --dir "$WORK/kvbench" --big-keys "$BIG_KEYS" --big-gib "$BIG_GIB" \
			bigscale > "$WORK/bigscale.out"
		rm -rf "$WORK/kvbench"
	fi
	echo "run-all: peers..." >&2
	"$BENCH/peers" --dir "$WORK/peers" --keys "$KEYS" --sync "$SYNCS" --cold "$COLD" \
		--cap sqlite="$SQLITE_KEYS" > "$WORK/peers.out"
	rm -rf "$WORK/peers"
	echo "run-all: replbench (a group of three, failover)..." >&2
	"$BENCH/replbench" --dir "$WORK/replbench" --ops "$REPL_OPS" --kills "$REPL_KILLS" \
		--kv-cli "$BUILD/kv_cli" > "$WORK/repl.out"
	rm -rf "$WORK/replbench"

	# The mounts: one fsbench run over the four, phase by phase.
	echo "run-all: fsbench (plain, passthrough, nullfs, kvfs)..." >&2
	mkdir -p "$FS/plain" "$FS/backing" "$FS/kvdata" "$PT_MNT" "$NF_MNT" "$KV_MNT"
	"$BENCH/passthrough" "$FS/backing" "$PT_MNT"
	mounted="$PT_MNT"
	"$BENCH/nullfs" "$NF_MNT"
	mounted="$mounted $NF_MNT"
	"$BUILD/kvfs" "$FS/kvdata" "$KV_MNT"
	mounted="$mounted $KV_MNT"
	apps_flag=
	[ "$APPS" = 1 ] && apps_flag=--apps
	"$BENCH/fsbench" --files "$FILES" --mb "$MB" --threads "$THREADS" $apps_flag \
		plain="$FS/plain" passthrough="$PT_MNT" nullfs="$NF_MNT" kvfs="$KV_MNT" > "$WORK/fs.out"
	cat "$KV_MNT/.kvfs" > "$WORK/kvfs-stats.out" 2>/dev/null || true
	cleanup
	rm -rf "$FS"
	# The same kinds of work counted in FUSE requests (round trips), which the load does not change
	echo "run-all: fsbench-requests (requests per piece of work)..." >&2
	local n=$(( FILES < 1000 ? FILES : 1000 ))
	"$HERE/fsbench-requests.sh" "$BUILD" create "$n" stat "$n" sqlite "$(( n / 2 ))" \
		> "$WORK/fs-requests.out" || echo "(fsbench-requests.sh failed)" > "$WORK/fs-requests.out"
	load_after=$(cut -d' ' -f1-3 /proc/loadavg)
	elapsed=$(( $(date +%s) - start ))
	# what REPORT_ONLY=1 needs to write the page again
	for v in KEYS FLUSHES SYNCS SQLITE_KEYS LOG_MB DISK_MB FILES MB THREADS APPS CLEANER_MB COLD BIG \
		BIG_KEYS BIG_GIB REPL_OPS REPL_KILLS load_before load_after elapsed; do
		printf '%s=%q\n' "$v" "${!v}"
	done > "$WORK/run.env"
}

mkdir -p "$WORK"
fstype=$(df -PT "$WORK" | awk 'NR == 2 {print $2}')
if [ "${REPORT_ONLY:-0}" = 1 ]; then
	# the page and plot again from the outputs of the last run in WORK_DIR (its sizes too)
	# shellcheck disable=SC1091
	. "$WORK/run.env"
else
	# a mount left behind by an interrupted run would make the rm below fail
	for m in "$PT_MNT" "$NF_MNT" "$KV_MNT"; do
		if grep -qs " $m " /proc/mounts; then fusermount3 -u "$m"; fi
	done
	# only what this script makes: WORK_DIR may be a directory that holds other things
	rm -rf "$WORK/kvbench" "$WORK/peers" "$WORK/replbench" "$FS" "$WORK"/*.out "$WORK/run.env" "$WORK/PERFORMANCE.md"
	if [ "$BIG" = 1 ]; then
		need=$((BIG_GIB * 12 / 10 + 2))
		have=$(df -Pk "$WORK" | awk 'NR == 2 {print int($4 / 1048576)}')
		if [ "$have" -lt "$need" ]; then
			echo "run-all: BIG=1 needs about $need GiB free under $WORK, it has $have" >&2
			exit 1
		fi
	fi
	fstype=$(df -PT "$WORK" | awk 'NR == 2 {print $2}')
	if [ "$fstype" = tmpfs ]; then
		echo "run-all: warning: $WORK is on tmpfs: the durable figures will not be the disk's" >&2
	fi
	runs
fi
rm -rf "$WORK/plot"
mkdir -p "$WORK/plot"

# ---- the plot's data: throughput against threads ----------------------------------------------
# kvbench: "| append+fdatasync | T | rate |", "| batch | T | rate |" (group commit rows);
# peers: the durable table "| store | T | puts/s |"; fsbench: the create+fsync rows.
awk -F'|' -v dir="$WORK/plot" '
	function t(s) { gsub(/ /, "", s); return s }
	t($2) == "batch" { print t($3), t($5) > (dir "/disk.dat") }
	t($2) == "batch" || t($2) == "always" { print t($3), t($4) > (dir "/engine-" t($2) ".dat") }
' "$WORK/kvbench.out"
awk -F'|' -v dir="$WORK/plot" '
	function t(s) { gsub(/ /, "", s); return s }
	/^\| durable \|/ { on = 1; next }
	/^$/ { on = 0 }
	on && t($3) ~ /^[0-9]+$/ { print t($3), t($4) > (dir "/peer-" t($2) ".dat") }
' "$WORK/peers.out"
awk -F'|' -v dir="$WORK/plot" -v T="$THREADS" '
	function t(s) { gsub(/ /, "", s); return s }
	$2 ~ /create\+write 4K\+fsync\+close, [0-9]+ threads?, files/ && $0 !~ /µs/ {
		n = ($2 ~ / 1 thread,/) ? 1 : T
		print n, t($3) > (dir "/mount-plain.dat")
		print n, t($4) > (dir "/mount-passthrough.dat")
		print n, t($6) > (dir "/mount-kvfs.dat") # $5: nullfs
	}
' "$WORK/fs.out"

plot_note=""
{
	if ! command -v gnuplot > /dev/null && [ "$(id -u)" = 0 ]; then
		echo "run-all: installing gnuplot-nox for the plot..." >&2
		apt-get install -y gnuplot-nox > "$WORK/apt.out" 2>&1 || true
	fi
	if command -v gnuplot > /dev/null; then
		{
			echo "set terminal pngcairo size 1000,640 noenhanced font ',10'"
			echo "set output '$PNG'"
			echo "set title 'Durable writes against threads (one run, same disk; $(date -u +%F))'"
			echo "set xlabel 'threads'; set ylabel 'durable operations/s'"
			echo "set logscale x 2; set xrange [0.8:40]; set key outside right; set grid"
			printf "plot '%s' u 1:2 w lp lw 3 t 'disk: 4 KiB append+fdatasync'" "$WORK/plot/disk.dat"
			printf ", '%s' u 1:2 w lp lw 3 t 'kvfs engine: put 4 KiB+kv_flush (batch)'" "$WORK/plot/engine-batch.dat"
			printf ", '%s' u 1:2 w lp lw 2 t 'kvfs engine: put 4 KiB, sync=always'" "$WORK/plot/engine-always.dat"
			for f in "$WORK"/plot/peer-*.dat; do
				[ -e "$f" ] || continue
				n=$(basename "$f" .dat); n=${n#peer-}
				[ "$n" = engine ] && n="kvfs engine (peers run, sync=always)"
				printf ", '%s' u 1:2 w lp dt 2 t '%s: durable put 100 B'" "$f" "$n"
			done
			for f in kvfs passthrough plain; do
				printf ", '%s' u 1:2 w lp dt 3 lw 2 t 'mount %s: create+4 KiB+fsync'" "$WORK/plot/mount-$f.dat" "$f"
			done
			echo
		} > "$WORK/plot/threads.gp"
		if gnuplot "$WORK/plot/threads.gp" 2> "$WORK/plot/gnuplot.err"; then
			plot_note="![durable throughput against threads](perf-threads.png)"
		else
			plot_note="(gnuplot failed: $(head -c 300 "$WORK/plot/gnuplot.err"); no plot)"
		fi
	else
		plot_note="(no plot: gnuplot is not installed and this run was not root to install gnuplot-nox)"
	fi
}

# ---- the targets ------------------------------------------------------------------------------
targets() {
	awk -F'|' -v T="$THREADS" -v files="$FILES" '
	function t(s) { gsub(/^ +| +$/, "", s); return s }
	function div(a, b) { return b > 0 ? a / b : 0 }
	function target(what, have, want, fmt, note) {
		printf "- [%s] %s: " fmt " (target %s %s)%s\n", (have >= want ? "x" : " "), what, have,
			"≥", want, note
	}
	function below(what, have, limit, fmt, note) {
		printf "- [%s] %s: " fmt " (target ≤ %s)%s\n", (have <= limit ? "x" : " "), what, have, limit, note
	}
	FILENAME ~ /kvbench/ && (t($2) == "batch" || t($2) == "always" || t($2) == "none") && t($3) ~ /^[0-9]+$/ {
		gc[t($2), t($3)] = $4 + 0; disk[t($2), t($3)] = $5 + 0
	}
	FILENAME ~ /kvbench/ && t($2) ~ /^empty store/ { empty_ms = $5 * 1000 }
	FILENAME ~ /kvbench/ && t($2) ~ /cold cache$/ { replay_cold = $6 + 0 }
	FILENAME ~ /kvbench/ && t($2) ~ /^the same, warm/ { replay_warm = $6 + 0 }
	FILENAME ~ /kvbench/ && t($2) ~ /^p99 during/ { snap_ratio = $3 + 0 }
	FILENAME ~ /kvbench/ && t($2) ~ /^[0-9]+$/ && NF == 14 { small_keys = t($2); small_replay = $11 + 0 }
	FILENAME ~ /peers/ && /^\| durable \|/ { peers_durable = 1 }
	FILENAME ~ /peers/ && !peers_durable && /^\| (engine|leveldb|lmdb) \|/ { fill[t($2)] = $4 + 0; read[t($2)] = $5 + 0 }
	FILENAME ~ /fs.out/ && NF >= 8 && $0 !~ /µs/ { plain[t($2)] = $3 + 0; pt[t($2)] = $4 + 0; kv[t($2)] = $6 + 0 }
	END {
		printf "Durable-write targets use the default mode, sync=batch with put(4 KiB) + kv_flush "
		printf "(group-commit table); the disk is 4 KiB append+fdatasync with as many threads, "
		printf "measured just before each thread count.\n\n"
		target("engine durable 4 KiB writes, 1 thread ÷ disk 1 thread", div(gc["batch", 1], disk["batch", 1]), 0.5, "%.2f",
			sprintf(" (sync=always: %.2f)", div(gc["always", 1], disk["always", 1])))
		target("engine 8 threads write+flush ÷ disk 8 threads", div(gc["batch", 8], disk["batch", 8]), 0.8, "%.2f",
			sprintf(" (sync=always: %.2f)", div(gc["always", 8], disk["always", 8])))
		target("engine 8 threads write+flush ÷ its own 1 thread", div(gc["batch", 8], gc["batch", 1]), 3, "%.2f",
			sprintf(" (sync=always: %.2f)", div(gc["always", 8], gc["always", 1])))
		if (fill["leveldb"] > 0)
			target("engine random fill ÷ LevelDB", div(fill["engine"], fill["leveldb"]), 1, "%.2f", "")
		if (read["lmdb"] > 0)
			target("engine random read ÷ LMDB", div(read["engine"], read["lmdb"]), 1, "%.2f", "")
		c1 = "create+write 4K+fsync+close, 1 thread, files/s"
		cT = "create+write 4K+fsync+close, " T " threads, files/s"
		target("mount create+write+fsync, 1 thread ÷ passthrough", div(kv[c1], pt[c1]), 1.5, "%.2f", "")
		target("mount create+write+fsync, " T " threads ÷ passthrough", div(kv[cT], pt[cT]), 1.5, "%.2f", "")
		target("(aim) mount create+write+fsync, 1 thread ÷ plain directory", div(kv[c1], plain[c1]), 1, "%.2f", "")
		target("(aim) mount create+write+fsync, " T " threads ÷ plain directory", div(kv[cT], plain[cT]), 1, "%.2f", "")
		s = "stat, stats/s"
		target("mount stat ÷ passthrough", div(kv[s], pt[s]), 1, "%.2f", "")
		r = "open+read 4K+close (warm), files/s"
		target("mount 4 KiB file reads (warm) ÷ passthrough", div(kv[r], pt[r]), 1, "%.2f", "")
		r = "random 4K pread (warm), reads/s"
		target("mount random 4 KiB preads (warm) ÷ passthrough", div(kv[r], pt[r]), 1, "%.2f", "")
		d = "readdir of " files " entries, entries/s"
		target("mount readdir, millions of entries/s", div(kv[d], 1e6), 1, "%.2f", " (a " files "-entry directory)")
		for (w in kv)
			if (w ~ /^stream write/)
				target("mount streaming write ÷ plain directory", div(kv[w], plain[w]), 0.5, "%.2f", "")
		# issue 13: the mount against a plain directory of the same disk, and whole applications
		s2 = "stat again (4 more rounds), stats/s"
		target("(issue 13) mount stat ÷ plain directory, the first since each file was written",
			div(kv[s], plain[s]), 0.5, "%.2f", sprintf(" (stat again: %.2f)", div(kv[s2], plain[s2])))
		r = "open+read 4K+close (warm), files/s"
		target("(issue 13) mount warm open+read 4 KiB ÷ plain directory", div(kv[r], plain[r]), 0.3, "%.2f", "")
		c = "create+write 4K+close, 1 thread, files/s"
		target("(issue 13) mount create+write+close ÷ plain directory", div(kv[c], plain[c]), 0.7, "%.2f",
			sprintf(" (%s threads: %.2f)", T, div(kv["create+write 4K+close, " T " threads, files/s"],
							      plain["create+write 4K+close, " T " threads, files/s"])))
		target("(issue 13) mount create+write+fsync ÷ plain directory", div(kv[c1], plain[c1]), 1, "%.2f",
			sprintf(" (%s threads: %.2f)", T, div(kv[cT], plain[cT])))
		for (w in kv)
			if (w ~ /^stream write/)
				target("(issue 13) mount streaming write ÷ passthrough", div(kv[w], pt[w]), 1, "%.2f", "")
		target("(issue 13) mount readdir ÷ plain directory", div(kv[d], plain[d]), 0.5, "%.2f", "")
		for (a in kv)
			if (a ~ /^(tar x|SQLite|create 100,000|rm -rf|python3 -m venv)/ && plain[a] > 0)
				below("(issue 13) " a ", time ÷ plain directory", div(kv[a], plain[a]), 1.5, "%.2f", "")
		target("replay MB/s of log, 4 KiB records (cold page cache)", replay_cold, 200, "%.0f",
			sprintf(" (warm: %.0f)", replay_warm))
		target("replay MB/s of log, 100-byte records (" small_keys " keys, warm page cache)", small_replay, 200, "%.0f", "")
		below("open of an empty store, ms", empty_ms, 50, "%.1f", "")
		below("p99 put latency during a snapshot ÷ without", snap_ratio, 2, "%.2f", "")
	}' "$WORK/kvbench.out" "$WORK/peers.out" "$WORK/fs.out"
}

# Issue 11 (values on disk): the engine against LevelDB in the same run, the streaming write
# through the mount, the scale run (BIG=1) and the cleaner's effect on put latency.
targets11() {
	local big=/dev/null
	[ -s "$WORK/bigscale.out" ] && big=$WORK/bigscale.out
	awk -F'|' -v big="$big" '
	function t(s) { gsub(/^ +| +$/, "", s); return s }
	function div(a, b) { return b > 0 ? a / b : 0 }
	function target(what, have, want, fmt, note) {
		printf "- [%s] %s: " fmt " (target ≥ %s)%s\n", (have >= want ? "x" : " "), what, have, want, note
	}
	FILENAME ~ /peers/ && /^\| durable \|/ { peers_durable = 1 }
	FILENAME ~ /peers/ && !peers_durable && /^\| (engine|leveldb) \|/ {
		seq[t($2)] = $3 + 0; fill[t($2)] = $4 + 0; cold[t($2)] = $6 + 0; coldp99[t($2)] = $8 + 0
	}
	FILENAME ~ /peers/ && peers_durable && /^\| (engine|leveldb) \|/ && t($3) ~ /^[0-9]+$/ { dur[t($2), t($3)] = $4 + 0 }
	FILENAME ~ /kvbench/ && t($2) ~ /^p99 with the cleaner on/ { clean_ratio = $4 + 0 }
	FILENAME ~ /kvbench/ && t($2) == "on" && NF == 15 {
		runs++; live = $11 + 0; if ($12 + 0 > peak) peak = $12 + 0; settle = settle (runs > 1 ? " and " : " ") t($14)
	}
	FILENAME ~ /fs.out/ && NF >= 8 && $0 !~ /µs/ && t($2) ~ /^stream write/ { sw = div($6, $3); sw_what = t($2) }
	FILENAME == big && /^Opening the store/ { big_open_table = 1 }
	FILENAME == big && t($2) ~ /^[0-9]+$/ && NF == 14 && !big_open_table {
		big_keys = t($2); big_gib = $3 + 0; big_wa = $7 + 0; big_ratio = $9 + 0; big_rss = $12 + 0
	}
	FILENAME == big && t($2) ~ /^[0-9]+$/ && NF == 14 && big_open_table { big_open = $3 + 0; big_open_ckpt = $11 + 0 }
	END {
		if (fill["leveldb"] > 0) {
			target("engine random read with a cold page cache ÷ LevelDB cold", div(cold["engine"], cold["leveldb"]), 1, "%.2f",
				sprintf(" (%.0f against %.0f gets/s; p99 %.0f against %.0f µs)", cold["engine"], cold["leveldb"], coldp99["engine"], coldp99["leveldb"]))
			target("engine random fill ÷ LevelDB", div(fill["engine"], fill["leveldb"]), 1, "%.2f", "")
			target("engine sequential fill ÷ LevelDB", div(seq["engine"], seq["leveldb"]), 1, "%.2f", "")
			target("engine durable puts, 1 thread ÷ LevelDB", div(dur["engine", 1], dur["leveldb", 1]), 1, "%.2f", "")
			target("engine durable puts, 8 threads ÷ LevelDB", div(dur["engine", 8], dur["leveldb", 8]), 1, "%.2f", "")
		} else {
			print "- (LevelDB is not built in: install libleveldb-dev for the comparisons)"
		}
		if (sw_what != "")
			target("mount streaming write ÷ plain directory", sw, 0.5, "%.2f", " (" sw_what ")")
		if (big_keys != "")
			printf "- [%s] scale to 10M keys and ≥ 20 GiB of values: %s keys, %.1f GiB (segments %.3f× the values, " \
			       "%.2f× the values written to fill it, peak RSS %.0f MiB; open %.2f s as left, %.2f s from " \
			       "the checkpoint alone, cold)\n",
			       (big_keys >= 10000000 && big_gib >= 20 ? "x" : " "), big_keys, big_gib, big_ratio, big_wa,
			       big_rss, big_open, big_open_ckpt
		else
			print "- [ ] scale to 10M keys and ≥ 20 GiB of values: not in this run (BIG=1 runs it)"
		if (runs)
			printf "- the cleaner (no target): put p99 with the background cleaner on ÷ off %.2f; while the writer " \
			       "overwrote at full speed the segments reached %.1f× the live bytes (the cleaner is throttled " \
			       "and writers never wait for it), and were within 2× live + one segment again after%s s (each run with the cleaner on)\n",
			       clean_ratio, div(peak, live), settle
	}' "$WORK/kvbench.out" "$WORK/peers.out" "$WORK/fs.out" "$big"
}

# How the figures move with size and threads, from the scale and group-commit tables.
shape() {
	awk -F'|' '
	function t(s) { gsub(/^ +| +$/, "", s); return s }
	function r(a, b) { return b > 0 ? a / b : 0 }
	NF == 14 && t($2) ~ /^[0-9]+$/ {
		n++; k[n] = t($2); rnd[n] = $4; rd[n] = $5; idx[n] = $6; rss[n] = $8; rep[n] = $11
		snap[n] = $12; op[n] = $13
	}
	t($2) == "batch" && t($3) ~ /^[0-9]+$/ { gc[t($3)] = $4; disk[t($3)] = $5; fpf[t($3)] = $7 }
	END {
		if (n >= 2)
			printf "- keys ×%.0f (%s → %s): random fill ×%.2f, random read ×%.2f, index bytes/key " \
			       "×%.2f, RSS bytes/key ×%.2f, replay MB/s ×%.2f; snapshot time ×%.0f and open " \
			       "from the snapshot ×%.0f (proportional would be ×%.0f)\n", r(k[n], k[1]), k[1], k[n],
			       r(rnd[n], rnd[1]), r(rd[n], rd[1]), r(idx[n], idx[1]), r(rss[n], rss[1]),
			       r(rep[n], rep[1]), r(snap[n], snap[1]), r(op[n], op[1]), r(k[n], k[1])
		if (n >= 2)
			printf "  (RSS per key at the smallest size is mostly the process'"'"'s fixed memory; at " \
			       "%s keys it is %.0f bytes, of which %.0f the index'"'"'s own count)\n", k[n], rss[n], idx[n]
		if (gc[1] > 0 && gc[32] > 0)
			printf "- writers ×32 (1 → 32, put 4 KiB + kv_flush, sync=batch): writes/s ×%.1f " \
			       "(%.0f → %.0f) as fdatasyncs per flush fall from %.3f to %.3f; the disk ×%.1f " \
			       "(%.0f → %.0f)\n", r(gc[32], gc[1]), gc[1], gc[32], fpf[1], fpf[32],
			       r(disk[32], disk[1]), disk[1], disk[32]
	}' "$WORK/kvbench.out"
}

# ---- the page ---------------------------------------------------------------------------------
disk_info() {
	local dev base model
	dev=$(df -P "$WORK" | awk 'NR == 2 {print $1}')
	base=$(lsblk -no PKNAME "$dev" 2>/dev/null | head -n1 || true)
	[ -n "$base" ] || base=$(basename "$dev")
	model=
	[ -r "/sys/block/$base/device/model" ] && model=$(tr -s ' ' < "/sys/block/$base/device/model")
	[ -n "$model" ] || model="no model in /sys/block/$base/device (a virtio disk reports none)"
	echo "$dev ($fstype), $model; rotational: $(cat "/sys/block/$base/queue/rotational" 2>/dev/null || echo '?'), scheduler: $(cat "/sys/block/$base/queue/scheduler" 2>/dev/null || echo '?')"
}

page() {
	cat <<EOF
# kvfs performance

Generated by \`tests/bench/run-all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); do not edit by hand
(the analysis at the end comes from \`tests/bench/perf-notes.md\`). Every figure below was
measured in this one run on the same disk, so the ratios mean something even where the absolute
numbers move from run to run.

## How to rerun

\`\`\`sh
meson setup build -Dbuildtype=release && meson compile -C build
meson compile -C build bench              # = tests/bench/run-all.sh build /var/tmp/kvfs-bench
KEYS=$KEYS FLUSHES=$FLUSHES SYNCS=$SYNCS SQLITE_KEYS=$SQLITE_KEYS LOG_MB=$LOG_MB DISK_MB=$DISK_MB FILES=$FILES MB=$MB THREADS=$THREADS \\
    CLEANER_MB=$CLEANER_MB COLD=$COLD BIG=$BIG BIG_KEYS=$BIG_KEYS BIG_GIB=$BIG_GIB REPL_OPS=$REPL_OPS REPL_KILLS=$REPL_KILLS \\
    tests/bench/run-all.sh build /var/tmp/kvfs-bench     # this run's sizes
TINY=1 DOC= tests/bench/run-all.sh build                 # a one-minute check of the harness
\`\`\`

Run as root (FUSE mounts, dropping the page cache with \`echo 3 > /proc/sys/vm/drop_caches\`
for every cold figure, installing gnuplot-nox), with the work directory on the disk to be
measured. \`BIG=1\` adds the scale to 10M keys and 20 GiB of values (about 24 GiB free needed). The programs run one at a time; each one also runs alone
(\`build/tests/bench/kvbench --help\`, \`peers\`, \`fsbench\`).

## Machine

- $(uname -srm); CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(nproc) cores; RAM $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
- disk: $(disk_info)
- work directory: $WORK
- load average (1/5/15 min) before: $load_before, after: $load_after — other jobs shared this
  2-core VM during the run, so absolute figures are noisy; compare within the run
- sizes: KEYS=$KEYS FLUSHES=$FLUSHES SYNCS=$SYNCS SQLITE_KEYS=$SQLITE_KEYS LOG_MB=$LOG_MB DISK_MB=$DISK_MB FILES=$FILES MB=$MB THREADS=$THREADS CLEANER_MB=$CLEANER_MB COLD=$COLD BIG=$BIG BIG_KEYS=$BIG_KEYS BIG_GIB=$BIG_GIB; the run took ${elapsed} s
- build: $(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown), buildtype $(python3 -c 'import json, sys; print(next(o["value"] for o in json.load(open(sys.argv[1])) if o["name"] == "buildtype"))' "$BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)

## Targets (issue 11: values on disk)

$(targets11)

The mount's own figures for issue 11 (a 3 GiB file, a 2 GiB file at a 1 MiB offset and 20,000
small files through a real mount: the daemon's peak RSS, RSS per GiB and per key, the remount
time) come from \`tests/test_bigstore.c\`, a test of the suite, not from this script; see the
notes at the end.

## Targets (issue 6)

$(targets)

## The shape: 10k to 1M keys, 1 to 32 threads

$(shape)

## Throughput against threads

$plot_note

Durable operations per second against the number of threads: the disk's own 4 KiB
append+fdatasync (each thread its own file), the engine's group commit, each embedded store's
durable puts (1 and 8 threads sharing one handle) and the mounts' create+write 4 KiB+fsync+close
(1 and $THREADS threads, each in its own subdirectory).

$(cat "$WORK/kvbench.out")

$(cat "$WORK/bigscale.out" 2>/dev/null || echo "(The scale to $BIG_KEYS keys and $BIG_GIB GiB of values was not run: BIG=1 runs it.)")

$(cat "$WORK/peers.out")

## Replication (issue 15)

A group of three nodes on loopback beside the single store, in the same run
(\`build/tests/bench/replbench\`; docs/REPLICATION.md). Raft's uv backend writes its log with
O_DIRECT and O_DSYNC into preallocated segments: an append is durable when its write completes,
one device write each, where the single store does a buffered write and an fdatasync.

$(cat "$WORK/repl.out" 2>/dev/null)

## The mount: plain directory, plain FUSE passthrough, kvfs

The same work on a directory of the disk, on \`tests/bench/passthrough\` (libfuse3 with kvfs's
kernel settings, each request one system call on a backing directory of the same disk), on
\`tests/bench/nullfs\` (the FUSE floor: kvfs's kernel settings, everything in memory, every
request answered at once) and on a kvfs mount (default options: sync=batch, commit_ms=10), phase by phase. Cold reads drop the page
cache first; kvfs reads values from its log segments through the page cache, so its "cold" reads
go to the disk as the others' do. Then whole applications, each timed on every directory (the
time ratios are kvfs ÷ the others: less is better).

$(cat "$WORK/fs.out")

The FUSE requests that work costs, counted from libfuse's \`-d\` log
(\`tests/bench/fsbench-requests.sh\`; passthrough+xattr is the passthrough serving extended
attributes, as kvfs does; nullfs the fewest requests a FUSE filesystem gets):
$(cat "$WORK/fs-requests.out" 2>/dev/null)

kvfs statistics at the end of the mount run (\`cat MNT/.kvfs\`):

\`\`\`
$(cat "$WORK/kvfs-stats.out" 2>/dev/null)
\`\`\`

$(cat "$HERE/perf-notes.md" 2>/dev/null)
EOF
}

page > "$WORK/PERFORMANCE.md"
if [ -n "$DOC" ]; then
	cp "$WORK/PERFORMANCE.md" "$DOC"
	echo "run-all: wrote $DOC${PNG:+ and $PNG} (raw outputs in $WORK)" >&2
else
	echo "run-all: wrote $WORK/PERFORMANCE.md (raw outputs in $WORK)" >&2
fi
targets
targets11
}

main "$@"; exit
