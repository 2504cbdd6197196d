#!/bin/sh
# tests/fuzz/run.sh — build the libFuzzer targets with clang and run each for a bounded number of
# runs on its seed corpus (tests/fuzz/corpus/<target>/). A crash, leak, sanitizer report or
# timeout fails the run; libFuzzer leaves the input as BUILDDIR/tests/fuzz/fuzz_<target>-crash-*
# (or leak-*, timeout-*). Rerun one input: BUILDDIR/tests/fuzz/fuzz_<target> FILE
#
#   tests/fuzz/run.sh [BUILDDIR]           set up (CC=clang), build, run the suite, print counts
#   tests/fuzz/run.sh --counts BUILDDIR    only print the counts of the last run in BUILDDIR
#
# Prints "fuzz executions: <target> N (S s)" per target and "fuzz executions: TOTAL".
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)

counts() {
	# libFuzzer's closing line per target: "Done N runs in S second(s)"
	awk '
		/^test:/ { name = $NF }
		/^Done [0-9]+ runs in/ { printf "fuzz executions: %s %s (%s s)\n", name, $2, $5; total += $2 }
		END { printf "fuzz executions: %d\n", total }
	' "$1/meson-logs/testlog.txt"
}

if [ "${1:-}" = "--counts" ]; then
	counts "$2"
	exit 0
fi
build=${1:-$top/build-fuzz}
cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
	echo "fuzz: $cc not found (apt-get install clang)" >&2
	exit 1
fi
if [ ! -f "$build/build.ninja" ]; then
	CC=$cc meson setup "$build" "$top" -Dwerror=true -Dfuzz=true -Db_lundef=false
else
	meson configure "$build" -Dwerror=true -Dfuzz=true -Db_lundef=false
fi
meson compile -C "$build" tests/fuzz/fuzz_wal tests/fuzz/fuzz_checkpoint tests/fuzz/fuzz_record \
	tests/fuzz/fuzz_cli tests/fuzz/fuzz_dump
start=$(date +%s)
status=0
meson test -C "$build" --suite fuzz --print-errorlogs || status=$?
end=$(date +%s)
counts "$build"
echo "fuzz time: $((end - start)) s"
exit $status
