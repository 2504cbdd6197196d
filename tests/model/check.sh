#!/usr/bin/env bash
# Run one SPIN model exhaustively, or one mutant of it, and say what SPIN found.
#
#   check.sh MODEL.pml pass   [SPIN -D options...] [-- PAN options...]
#   check.sh MODEL.pml reject [SPIN -D options...] [-- PAN options...]
#
# `pass`: the search must complete with no error (assertion, invalid end state, acceptance cycle)
# and without running out of depth or memory; the state counts are printed. `reject`: SPIN must
# find an error (a mutant is known to be wrong); its first violation and what the replayed trail
# printed are shown. Exit 0 when the expectation holds, 1 when not, 77 (skip) without spin or cc.
# Environment: SPIN (default spin); CC, the verifier's compiler (default clang when installed,
# else cc: clang compiles pan.c at -O0 in half gcc's time, and compiling dominates most runs);
# PAN_CFLAGS (default -O0); KV_MODEL_KEEP=1 keeps the work directory and says where it is.
set -u
model=$1 expect=$2
shift 2
defs=() pan=()
while [ $# -gt 0 ]; do
	if [ "$1" = "--" ]; then
		shift
		pan=("$@")
		break
	fi
	defs+=("$1")
	shift
done
case $expect in pass | reject) ;; *) echo "check.sh: expect 'pass' or 'reject', not '$expect'"; exit 2 ;; esac
spin=${SPIN:-spin}
if [ -n "${CC:-}" ]; then
	cc=$CC
elif command -v clang >/dev/null; then
	cc=clang
else
	cc=cc
fi
command -v "$spin" >/dev/null || { echo "SKIP: $spin not found (Debian package spin)"; exit 77; }
command -v "$cc" >/dev/null || { echo "SKIP: no C compiler ($cc) to build the verifier"; exit 77; }
[ -r "$model" ] || { echo "check.sh: cannot read $model"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kvfs-model.XXXXXX")
if [ "${KV_MODEL_KEEP:-0}" = 1 ]; then
	echo "work directory: $work"
else
	trap 'rm -rf "$work"' EXIT
fi
name=$(basename "$model")
cp "$model" "$work/$name"
cd "$work" || exit 1

# A deep enough search stack unless the caller chose one.
case " ${pan[*]:-} " in *" -m"*) ;; *) pan=(-m200000 "${pan[@]}") ;; esac
echo "model: $name ${defs[*]:-} (expected: $expect)"
echo "verifier: $cc ${PAN_CFLAGS:--O0}; pan ${pan[*]}"
start=$(date +%s.%N)
"$spin" "${defs[@]}" -a "$name" >spin.out 2>&1 || { cat spin.out; echo "FAIL: spin -a failed"; exit 1; }
# shellcheck disable=SC2086
"$cc" ${PAN_CFLAGS:--O0} -w -o pan pan.c >cc.out 2>&1 || { cat cc.out; echo "FAIL: the verifier did not compile"; exit 1; }
./pan "${pan[@]}" >pan.out 2>&1
pan_rc=$?
end=$(date +%s.%N)
seconds=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

# What SPIN says about the search, then the verdict.
grep -E '^(State-vector|pan:|Warning|error:)|states, stored|states, matched|transitions|atomic steps|hash conflicts|total actual memory|acceptance +cycles|invalid end states|assertion violations|never claim|elapsed time|Bit statespace|Full statespace' pan.out
errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | head -1)
stored=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -1)
if [ -z "$errors" ]; then
	cat pan.out
	echo "FAIL: the verifier ended without a result (exit $pan_rc)"
	exit 1
fi
first=$(grep -m1 -E '^pan:[0-9]+:|^pan: ' pan.out || true)
if [ "$errors" != 0 ] && [ -f "$name.trail" ]; then
	# Replay the counterexample: the model's printf lines say what the crash left and why it fails.
	"$spin" "${defs[@]}" -t "$name" >trail.out 2>&1
	echo "counterexample (spin -t):"
	grep "@@" trail.out | sed "s/^ *@@ //" | tail -n 40 | sed "s/^/  /"
fi
case $expect in
pass)
	if [ "$errors" != 0 ]; then
		echo "FAIL: $name ${defs[*]:-}: $first"
		exit 1
	fi
	if grep -qE 'Search not completed|max search depth too small|out of memory' pan.out; then
		echo "FAIL: $name ${defs[*]:-}: the search was not exhaustive"
		exit 1
	fi
	echo "PASS: $name ${defs[*]:-}: no errors, $stored states, ${seconds} s"
	;;
reject)
	if [ "$errors" = 0 ]; then
		echo "FAIL: $name ${defs[*]:-}: the mutant was NOT rejected ($stored states searched)"
		exit 1
	fi
	echo "PASS: $name ${defs[*]:-}: rejected ($first), ${seconds} s"
	;;
esac
exit 0
