#!/bin/bash
# run-all.sh — every benchmark in one run, on one disk, so that the ratios mean something
# (issue 6): the engine (kvbench), the engine beside LevelDB/LMDB/SQLite/RocksDB (peers), and
# the same file work on a plain directory, a plain FUSE passthrough mount and a kvfs mount
# (fsbench), all under WORK_DIR. Prints markdown tables on stdout and keeps a copy in
# WORK_DIR/results.md.
#
#   tests/bench/run-all.sh [BUILD_DIR [WORK_DIR]]      (defaults: build, /tmp/kvfs-bench)
#
# Sizes from the environment: KEYS (engine and peers, default 200000), SYNCS (durable puts per
# store, 1000), FILES (fsbench files, 2000), MB (fsbench streamed file, 256).
# Run as root: fsbench drops the page cache before its cold reads, and FUSE mounts need
# /dev/fuse. WORK_DIR must be on the disk you mean to measure (not a tmpfs).
set -eu -o pipefail

BUILD=${1:-build}
WORK=${2:-/tmp/kvfs-bench}
KEYS=${KEYS:-200000}
SYNCS=${SYNCS:-1000}
FILES=${FILES:-2000}
MB=${MB:-256}
BENCH=$BUILD/tests/bench

for prog in "$BENCH/kvbench" "$BENCH/peers" "$BENCH/fsbench" "$BENCH/passthrough" "$BUILD/kvfs"; do
	if [ ! -x "$prog" ]; then
		echo "run-all: $prog is missing: build first (meson compile -C $BUILD)" >&2
		exit 1
	fi
done

FS=$WORK/fs
PT_MNT=$FS/passthrough
KV_MNT=$FS/kvfs
OUT=$WORK/results.md
mounted=""
cleanup() {
	for m in $mounted; do
		fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
	done
	mounted=""
}

# a mount left behind by an interrupted run would make the rm below fail
for m in "$PT_MNT" "$KV_MNT"; do
	if grep -qs " $m " /proc/mounts; then fusermount3 -u "$m"; fi
done
# only what this script makes: WORK_DIR may be a directory that holds other things
mkdir -p "$WORK"
rm -rf "$WORK/kvbench" "$WORK/peers" "$FS" "$WORK"/*.out "$WORK/fs.md" "$OUT"

run() {
trap cleanup EXIT

cat <<EOF
# kvfs benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')

- machine: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
- work directory: $WORK on $(df -PT "$WORK" | awk 'NR == 2 {print $1 " (" $2 ")"}')
- sizes: KEYS=$KEYS SYNCS=$SYNCS FILES=$FILES MB=$MB
- rerun: KEYS=$KEYS SYNCS=$SYNCS FILES=$FILES MB=$MB tests/bench/run-all.sh $BUILD $WORK
EOF

"$BENCH/kvbench" --dir "$WORK/kvbench" --keys "$KEYS"
"$BENCH/peers" --dir "$WORK/peers" --keys "$KEYS" --sync "$SYNCS" | tee "$WORK/peers.out"
rm -rf "$WORK/kvbench" "$WORK/peers"

# The mounts. fsbench compares two directories per run; two runs (plain vs passthrough, plain
# vs kvfs) give the three columns and, from the two plain runs, an idea of the noise.
mkdir -p "$FS/plain-a" "$FS/plain-b" "$FS/backing" "$FS/kvdata" "$PT_MNT" "$KV_MNT"
"$BENCH/passthrough" "$FS/backing" "$PT_MNT"
mounted="$PT_MNT"
"$BUILD/kvfs" "$FS/kvdata" "$KV_MNT"
mounted="$mounted $KV_MNT"
"$BENCH/fsbench" --files "$FILES" --mb "$MB" "$FS/plain-a" "$PT_MNT" > "$WORK/fs-pt.out"
"$BENCH/fsbench" --files "$FILES" --mb "$MB" "$FS/plain-b" "$KV_MNT" > "$WORK/fs-kv.out"
cleanup

echo
echo "## The mount: plain directory, plain FUSE passthrough, kvfs ($FILES files of 4 KiB, $MB MiB stream)"
echo
# fsbench rows: a 32-column name, then the two figures
awk 'FNR == NR { if (FNR > 1 && NF >= 3 && $1 !~ /^\(/) { a[FNR] = $(NF-1); p[FNR] = $NF }; next }
	FNR == 1 {
		print "| work | plain (run 1) | plain (run 2) | passthrough | kvfs | kvfs ÷ passthrough | kvfs ÷ plain |"
		print "|---|---:|---:|---:|---:|---:|---:|"
		next
	}
	NF >= 3 && $1 !~ /^\(/ {
		name = substr($0, 1, 32); sub(/ +$/, "", name); sub(/^ +/, "", name)
		plain = (a[FNR] + $(NF-1)) / 2
		printf "| %s | %s | %s | %s | %s | %.2f | %.2f |\n", name, a[FNR], $(NF-1), p[FNR], $NF,
			(p[FNR] > 0 ? $NF / p[FNR] : 0), (plain > 0 ? $NF / plain : 0)
	}' "$WORK/fs-pt.out" "$WORK/fs-kv.out" | tee "$WORK/fs.md"

# The issue's targets that this run measures, met or not.
echo
echo "## Issue 6 targets measured here"
echo
awk -F'|' -v files="$FILES" '
	FILENAME ~ /peers/ && $2 ~ /^ (engine|leveldb|lmdb) $/ {
		gsub(/ /, "", $2); fill[$2] = $4 + 0; read[$2] = $5 + 0
	}
	FILENAME ~ /fs.md/ && NF > 7 {
		name = $2; gsub(/^ +| +$/, "", name)
		pt[name] = $5 + 0; kv[name] = $6 + 0; plain[name] = ($3 + $4) / 2
	}
	function div(a, b) { return b > 0 ? a / b : 0 }
	function target(what, have, want, note) {
		printf "- [%s] %s: %.2f (target ≥ %.2f)%s\n", (have >= want ? "x" : " "), what, have, want, note
	}
	END {
		if (fill["leveldb"] > 0) target("engine random fill ÷ LevelDB", div(fill["engine"], fill["leveldb"]), 1, "")
		if (read["lmdb"] > 0) target("engine random read ÷ LMDB", div(read["engine"], read["lmdb"]), 1, "")
		c = "... with fsync       files/s"
		target("mount create+write+fsync ÷ passthrough", div(kv[c], pt[c]), 1.5, "")
		target("mount create+write+fsync ÷ plain directory (aim)", div(kv[c], plain[c]), 1, "")
		s = "stat                   stats/s"
		target("mount stat ÷ passthrough", div(kv[s], pt[s]), 1, "")
		r = "4K random read (warm)  reads/s"
		target("mount 4 KiB reads (warm, kernel cache) ÷ passthrough", div(kv[r], pt[r]), 1, "")
		r = "4K random read (cold)  reads/s"
		target("mount 4 KiB reads (cold) ÷ passthrough", div(kv[r], pt[r]), 1, "")
		d = "readdir                entries/s"
		target("mount readdir, millions of entries/s", div(kv[d], 1e6), 1, " (a " files "-entry directory)")
		w = "stream write (+fsync)  MB/s"
		target("mount streaming write ÷ plain directory", div(kv[w], plain[w]), 0.5, "")
	}' "$WORK/peers.out" "$WORK/fs.md"
}

run 2>&1 | tee "$OUT"
echo
echo "(tables also in $OUT)"
