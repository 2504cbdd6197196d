#!/bin/bash
# fsbench-requests.sh — how many FUSE requests of each kind a piece of work costs, on kvfs and on
# the plain FUSE passthrough (tests/bench/passthrough.c), side by side.
#
#   tests/bench/fsbench-requests.sh BUILD_DIR WORK [WORK...]
#
# WORK is one of
#   create N    N files (open O_CREAT|O_EXCL, write 100 bytes, close) in one directory
#   stat N      the same, then one stat of each (the first after its write)
#   tar         tar x of /usr/share/doc (a tar of it is made once in /tmp)
#   sqlite N    N single-row transactions into a WAL-mode database (python3's sqlite3)
#   venv        python3 -m venv
# Each runs on a fresh mount of each filesystem in the foreground with -d (libfuse's request
# log), and the table counts the requests in that log: a count of round trips, which the
# machine's load does not change, where a timing does. The passthrough runs twice, without and
# with --xattr (extended attributes served, as kvfs does: the kernel then asks for
# security.capability before writes and chowns); nullfs (tests/bench/nullfs.c) is the fewest
# requests any FUSE filesystem with kvfs's kernel settings gets for the work. Needs root (FUSE,
# allow_other not needed).
# Prints a markdown table per work: request kind, then the count on each filesystem, and the
# total.
set -u
if [ $# -lt 2 ]; then
	sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
	exit 2
fi
BUILD=$(cd "$1" && pwd)
shift
TMP=$(mktemp -d /var/tmp/fsbench-requests.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
TARBALL=/tmp/fsbench-usr-share-doc.tar

# run KIND WORK ARG: mount KIND on a fresh directory with -d, run the work, unmount; the log
# is $TMP/KIND.log
run() {
	local kind=$1 work=$2 arg=$3 d=$TMP/$1 pid
	rm -rf "$d"
	mkdir -p "$d/data" "$d/mnt"
	case $kind in
	kvfs) "$BUILD/kvfs" -f -d "$d/data" "$d/mnt" > "$TMP/$kind.log" 2>&1 & ;;
	passthrough) "$BUILD/tests/bench/passthrough" "$d/data" "$d/mnt" -f -d > "$TMP/$kind.log" 2>&1 & ;;
	passthrough+xattr) "$BUILD/tests/bench/passthrough" --xattr "$d/data" "$d/mnt" -f -d \
		> "$TMP/$kind.log" 2>&1 & ;;
	nullfs) "$BUILD/tests/bench/nullfs" "$d/mnt" -f -d > "$TMP/$kind.log" 2>&1 & ;;
	esac
	pid=$!
	for _ in $(seq 100); do
		mountpoint -q "$d/mnt" && break
		sleep 0.1
	done
	if ! mountpoint -q "$d/mnt"; then
		echo "fsbench-requests: $kind did not mount" >&2
		exit 1
	fi
	mkdir "$d/mnt/w"
	python3 - "$work" "$arg" "$d/mnt/w" "$TARBALL" <<'EOF'
import os, sqlite3, subprocess, sys
work, arg, w, tarball = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
if work in ('create', 'stat'):
    for i in range(int(arg)):
        fd = os.open('%s/f%06d' % (w, i), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.write(fd, b'x' * 100)
        os.close(fd)
    if work == 'stat':
        for i in range(int(arg)):
            os.stat('%s/f%06d' % (w, i))
elif work == 'tar':
    subprocess.run(['tar', '-xf', tarball, '-C', w], check=True)
elif work == 'sqlite':
    db = sqlite3.connect(w + '/bench.sqlite', isolation_level=None)
    db.execute('PRAGMA journal_mode=WAL')
    db.execute('CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)')
    for i in range(int(arg)):
        db.execute('INSERT INTO t(v) VALUES(?)', ('a row of about fifty bytes of text',))
    db.close()
elif work == 'venv':
    subprocess.run(['python3', '-m', 'venv', w + '/venv'], check=True, stdout=subprocess.DEVNULL)
EOF
	fusermount3 -u "$d/mnt"
	wait "$pid"
}

[ -r "$TARBALL" ] || tar -cf "$TARBALL" -C /usr/share doc 2>/dev/null
kinds="passthrough passthrough+xattr nullfs kvfs"
while [ $# -gt 0 ]; do
	work=$1 arg=
	shift
	case $work in
	create|stat|sqlite) arg=${1:?"$work needs a count"}; shift ;;
	tar|venv) ;;
	*) echo "fsbench-requests: unknown work '$work'" >&2; exit 2 ;;
	esac
	for k in $kinds; do
		run "$k" "$work" "$arg"
		grep -o 'opcode: [A-Z_]*' "$TMP/$k.log" | awk '{print $2}' | sort | uniq -c \
			> "$TMP/$k.count"
	done
	echo
	echo "Requests for: $work $arg"
	echo
	printf '| request |'
	for k in $kinds; do printf ' %s |' "$k"; done
	printf '\n|---|'
	for k in $kinds; do printf -- '---:|'; done
	echo
	# every request kind seen on any of them, most frequent on kvfs first
	cat "$TMP"/*.count | awk '{n[$2] += $1} END {for (o in n) print n[o], o}' | sort -rn |
		while read -r _ op; do
			[ "$op" = INIT ] && continue
			printf '| %s |' "$op"
			for k in $kinds; do
				printf ' %s |' "$(awk -v o="$op" '$2 == o {print $1}' "$TMP/$k.count" | grep . || echo 0)"
			done
			echo
		done
	printf '| all |'
	for k in $kinds; do
		printf ' %s |' "$(awk '$2 != "INIT" {s += $1} END {print s + 0}' "$TMP/$k.count")"
	done
	echo
done
