#!/bin/bash
# Salvage on a full disk: kv_cli fills a 24 MiB ext4 (1 MiB segments) until PUTs fail, one value
# byte in a middle segment is zeroed, the strict open refuses and names the key. A salvage must
# either work (keep all but that key) or refuse saying what it needs and change nothing; the
# store's own space.reserve holds room meant for exactly such work. Checked: salvage succeeds;
# no empty *.damaged leftovers; after `rm space.reserve` (the only room there is) a salvage keeps
# every key but the damaged one.
# usage: salvage_fulldisk.sh BUILD   (root; loop device). No randomness: no seed.
set -u
B=$(realpath "$1"); W=$(mktemp -d /var/tmp/a5sfd.XXXX); cd "$W"
truncate -s 24M d.img && mkfs.ext4 -q -F d.img && mkdir lo && mount -o loop,commit=600 d.img lo || exit 1
pass=0; fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
python3 -c "
for i in range(3000): print(f'PUT k{i} '+('v%d-'%i)*1000)
print('FLUSH')" | "$B/kv_cli" -o segment_bytes=1m lo/s > puts.out 2>&1
acked=$(grep -c '^OK' puts.out); echo "PUTs acknowledged: $((acked - 1)) (then ENOSPC); df: $(df -k lo | awk 'END{print $4}') KiB free"
seg=$(ls lo/s/wal-*.log | sed -n 11p)
printf '\x00' | dd of="$seg" bs=1 seek=500000 conv=notrunc 2>/dev/null
"$B/kv_cli" lo/s SIZE > /dev/null 2>strict.err && bad "the strict open does not refuse" || ok "strict open refuses: $(head -c 120 strict.err)"
"$B/kv_cli" --salvage lo/s > s1.out 2> s1.err && ok "salvage on the full disk works" \
  || bad "salvage on the full disk fails: $(cat s1.err) (the store's space.reserve holds $(stat -c %s lo/s/space.reserve) bytes)"
n=$(find lo/s -name '*.damaged*' -size 0 | wc -l)
[ "$n" = 0 ] && ok "no empty set-aside files" || bad "$n empty set-aside file(s) left: $(cd lo/s && ls *.damaged* | tr '\n' ' ')"
if ! "$B/kv_cli" lo/s SIZE > /dev/null 2>&1; then
  "$B/kv_cli" --salvage lo/s > /dev/null 2>&1; m=$(find lo/s -name '*.damaged*' -size 0 | wc -l)
  echo "  a second salvage: empty set-aside files now $m"
  rm lo/s/space.reserve
  "$B/kv_cli" --salvage lo/s > s3.out 2>&1 && echo "  after rm space.reserve: salvage works" || echo "  after rm space.reserve: salvage fails too"
fi
size=$("$B/kv_cli" lo/s SIZE 2>&1)
[ "$size" = "$((acked - 2))" ] && ok "the store opens with $size keys (all but the damaged one)" || bad "the store holds '$size' keys, expected $((acked - 2))"
cd /; umount "$W/lo"; rm -rf "$W"
echo "$pass passed, $fail failed"
