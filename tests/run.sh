#!/usr/bin/env bash
# The whole test suite, as the README and CI run it:
#   1. a normal build (warnings are errors) and every suite;
#   2. the same suites under AddressSanitizer + UndefinedBehaviorSanitizer;
#   3. the suites that use threads under ThreadSanitizer;
#   (the sanitizer runs do 20 SIGKILL rounds of test_killrounds instead of 50, 6
#   replication rounds instead of 21, and crash every I/O call of 8 seeded workloads instead
#   of 30 (each run's seed differs, so runs cover different ones): they are slower,
#   and leave the outside POSIX suites, tests/posix.sh, to the normal build)
#   4. the libFuzzer targets (tests/fuzz, clang) for a bounded number of runs (a count, not a
#      time); build-fuzz builds them by default, so a target that no longer compiles fails the
#      run. Runs 1 and 2 also replay every target over its seed corpus (fuzz_replay_*, any
#      compiler), so the targets and their seeds are checked even where clang is missing.
# Ends with one line "N passed, N failed" summing every test case of every run, and exits
# non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."

failed_runs=0
setup() { # dir, extra meson options...
	local dir=$1
	shift
	if [ -d "$dir/meson-private" ]; then
		meson configure "$dir" "$@" >/dev/null || return 1
	else
		meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
	fi
}
run() { # dir, meson test args...
	local dir=$1
	shift
	echo "== $dir: meson test $*"
	ninja -C "$dir" || { failed_runs=$((failed_runs + 1)); return; }
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" || true
}

setup build -Dwerror=true -Dbuildtype=debugoptimized && run build
setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug &&
	KV_SKIP_HUGE=1 KV_KILL_ROUNDS=20 KV_REPL_ROUNDS=6 KV_CRASH_SEEDS=8 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 run build-asan --no-suite posix
setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false -Dbuildtype=debug &&
	KV_SKIP_HUGE=1 KV_KILL_ROUNDS=20 KV_REPL_ROUNDS=6 TSAN_OPTIONS=halt_on_error=1 run build-tsan --suite threads

# 4. the libFuzzer targets (clang), a bounded number of runs each on the seed corpus; ninja builds
#    them (built by default in build-fuzz), so one that no longer compiles counts as a failed build
if command -v clang >/dev/null 2>&1; then
	CC=clang setup build-fuzz -Dwerror=true -Dfuzz=true -Db_lundef=false && run build-fuzz --suite fuzz &&
		tests/fuzz/run.sh --counts build-fuzz
	fuzz_build=build-fuzz
else
	echo "clang not found: fuzz targets skipped"
fi

python3 tests/summarize.py build build-asan build-tsan ${fuzz_build:-}
rc=$?
if [ "$failed_runs" -ne 0 ]; then
	echo "$failed_runs build(s) failed"
	exit 1
fi
exit $rc
