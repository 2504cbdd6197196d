#!/bin/bash
# Is `cp disk.img crash.img` of a live loop image a power cut? Not while anything writes: a
# kvfs mount taking checkpoints in the background (128 KiB checkpoint_bytes) under an fsync loop,
# copied 12 times, each copy mounted (journal replayed) and checked. usage: cp_is_no_snapshot.sh stop|nostop
# Measured: nostop 2 of 12 copies "damaged checkpoint" at offset 0; stop (daemon SIGSTOPped
# during the cp) 0 of 12. Power-cut harnesses must stop the writer while copying.
B=$(realpath "${BUILD:-$(dirname "$0")/../../build}")
MODE=$1; W=$(mktemp -d /tmp/a3cp.XXXX); cd $W
truncate -s 128M disk.img; mkfs.ext4 -q -F disk.img; mkdir lo lo2 mnt; mount -o loop disk.img lo
$B/kvfs -o segment_bytes=262144,checkpoint_bytes=131072 lo/s mnt
PID=$(sed -n 's/^pid: //p' mnt/.kvfs)
python3 -c "
import os,time
t=time.time()
i=0
while time.time()-t<60:
    with open('mnt/f%d'%(i%20),'wb') as f: f.write(os.urandom(30000)); f.flush(); os.fsync(f.fileno())
    i+=1
" &
WP=$!
bad=0; n=0
for k in $(seq 1 12); do
  sleep 3
  [ "$MODE" = stop ] && kill -STOP $PID
  cp --sparse=always disk.img c.img
  [ "$MODE" = stop ] && kill -CONT $PID
  n=$((n+1))
  mount -o loop c.img lo2
  out=$($B/kv_cli --check lo2/s 2>&1); rc=$?
  [ $rc -ne 0 ] && { bad=$((bad+1)); echo "$out" | grep -E "damage|status" | head -2; }
  umount lo2
done
wait $WP
$B/kvfs --unmount mnt; umount lo; cd /; rm -rf $W
echo "$MODE: $bad of $n copies damaged"
