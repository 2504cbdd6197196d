#!/bin/bash
# A kill at the N-th CALL of a kvfs unmount (the daemon's clean close writes a checkpoint), then a
# power cut (the loop image copied while mounted): the copy must mount and every fsync'd file
# read back whole. strace attaches to the daemon just before `kvfs --unmount`, so N counts the
# close's own calls (per thread: strace's count).
# usage: close_mount.sh BUILD "CALL..." N_MAX    (root; loop, FUSE). No randomness: no seed.
set -u
B=$(realpath "$1"); CALLS=$2; NMAX=$3
W=$(mktemp -d /var/tmp/a5cm.XXXX); cd "$W"; mkdir lo m
pass=0; fail=0
for c in $CALLS; do for n in $(seq 1 "$NMAX"); do
  truncate -s 64M d.img; mkfs.ext4 -q -F d.img; mount -o loop,commit=600 d.img lo
  "$B/kvfs" lo/s m || { echo "FAIL mount"; fail=$((fail+1)); umount lo; continue; }
  for i in $(seq 0 39); do head -c $((150000 + i * 1000)) /dev/zero | tr '\0' "$(printf \\$(printf %o $((97 + i % 26))))" > m/f$i; done
  sync m/f*
  pid=$(cut -d' ' -f1 lo/s/LOCK)
  strace -f -o tr -e trace=$c -e inject=$c:signal=SIGKILL:when=$n -p "$pid" 2> st.err & sp=$!
  until grep -q attached st.err 2>/dev/null || [ -s tr ]; do sleep 0.05; done
  "$B/kvfs" --unmount m > um.out 2>&1
  wait $sp
  killed=$(grep -c 'killed by SIGKILL' tr)
  cp d.img cut.img; fusermount3 -uz m 2>/dev/null; umount lo
  mount -o loop,commit=600 cut.img lo
  if "$B/kvfs" lo/s m 2> m.err; then
    bad=0
    for i in $(seq 0 39); do
      want=$(head -c $((150000 + i * 1000)) /dev/zero | tr '\0' "$(printf \\$(printf %o $((97 + i % 26))))" | md5sum)
      [ "$(md5sum < m/f$i)" = "$want" ] || bad=$((bad + 1))
    done
    "$B/kvfs" --unmount m
    if [ $bad = 0 ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL $c #$n (killed: $killed): $bad of 40 fsync'd files differ"; fi
  else
    fail=$((fail+1)); echo "FAIL $c #$n (killed: $killed): the mount fails after the power cut: $(tail -c 300 m.err)"
  fi
  umount lo; rm -f cut.img d.img tr st.err
  [ "$killed" = 0 ] && { echo "$c #$n: the close made fewer such calls; next"; break; }
done; done
cd /; rm -rf "$W"
echo "$pass passed, $fail failed"
