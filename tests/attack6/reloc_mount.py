#!/usr/bin/env python3
"""Finding 1 through the mount: 400 files of 4,000 bytes (kvfs, `segment_bytes=1m`, /dev/shm), 3 of
every 4 deleted and the directory fsync'd; the cleaner relocates the 100 left; unmount; one value
byte flipped in the middle of the largest RELOCATE record (in one file's bytes); then mount
(refuses, naming how many keys lost bytes), `kv_cli --salvage`, mount: how many of the 100 files
are left, and with the right bytes. Passes when only the file whose bytes were flipped is lost.
usage: reloc_mount.py BUILD     (root: FUSE). No randomness: no seed. Ends 'N passed, M failed'."""
import sys, os, subprocess, shutil, time, random
import tempfile
B = os.path.realpath(sys.argv[1])
sys.argv = ["reloc_damage.py", f"{B}/kv_cli", "covered", "value"]
here = os.path.dirname(os.path.realpath(__file__))
exec(open(f"{here}/reloc_damage.py").read().replace("\nmain()\n", "\n"))
print("no seed", flush=True)
top = tempfile.mkdtemp(prefix="a6mr.", dir="/dev/shm"); os.makedirs(f"{top}/m")
d=f"{top}/d"; m=f"{top}/m"
subprocess.run([f"{B}/kvfs","-o","segment_bytes=1m",d,m],check=True)
N=400
data={i: random.Random(i).randbytes(4000) for i in range(N)}
for i in range(N):
    with open(f"{m}/f{i}","wb") as f: f.write(data[i])
subprocess.run(["sync",m])
for i in range(N):
    if i%4: os.unlink(f"{m}/f{i}")
fd=os.open(m,os.O_RDONLY); os.fsync(fd); os.close(fd)
for _ in range(60):
    st=dict(l.split(": ",1) for l in open(f"{m}/.kvfs").read().splitlines() if ": " in l)
    if int(st["cleaner_moved_bytes"])>0 and int(st["segments_deleted"])>0: break
    time.sleep(0.5)
print("moved", st["cleaner_moved_bytes"], "passes", st["cleaner_passes"])
time.sleep(2)
subprocess.run([f"{B}/kvfs","--unmount",m],check=True)
rel=relocations(d)
recs={}
for r in rel: recs.setdefault((r["seg"],r["rec"]),[]).append(r)
print("RELOCATE records:", {k:len(v) for k,v in recs.items()})
(seg,rec),ops=max(recs.items(), key=lambda kv: len(kv[1]))
r=ops[len(ops)//2]
flip(f"{d}/{seg}", r["rec"]+32+r["dataat"]+r["dlen"]//2)
print("flipped a value byte of", r["key"], "in", seg, "record at", rec, "of", len(ops), "ops")
p=subprocess.run([f"{B}/kvfs","-o","segment_bytes=1m",d,m],capture_output=True,text=True); print("mount:", p.returncode, p.stderr.strip()[-300:])
if p.returncode==0: subprocess.run([f"{B}/kvfs","--unmount",m])
p=subprocess.run([KV,"--salvage",d],capture_output=True,text=True); print("salvage:", p.returncode, p.stdout.strip()[-400:])
subprocess.run([f"{B}/kvfs","-o","segment_bytes=1m",d,m],check=True)
have=[i for i in range(0,N,4) if os.path.exists(f"{m}/f{i}")]
ok=[i for i in have if open(f"{m}/f{i}","rb").read()==data[i]]
print(f"files kept: {len(have)} of {N//4}, right bytes {len(ok)}")
bad = len(ok) < N // 4 - 1
if bad:
    print(f"FAIL one flipped value byte of {r['key']} cost {N // 4 - len(ok)} of {N // 4} files")
subprocess.run([f"{B}/kvfs","--unmount",m])
shutil.rmtree(top)
print(f"{0 if bad else 1} passed, {1 if bad else 0} failed")
