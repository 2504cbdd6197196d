#!/usr/bin/env python3
"""Many threads write, read, rename and truncate the same files through a kvfs mount while
checkpoints (echo snapshot > MNT/.kvfs) and kv_cli through the control socket run. Every 4 KiB
block written is self-describing (offset, writer, generation, checksum): a reader must only
ever see such blocks or zeros (holes, truncation), never bytes that were never written.
usage: conc.py MNT DATADIR KV_CLI SECONDS [SEED]"""
import array, os, random, struct, subprocess, sys, threading, time, zlib
M, D, KV, SECS = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
SEED = int(sys.argv[5]) if len(sys.argv) > 5 else 1
print("seed", SEED, flush=True)
B = 4096
NF = 6
names = [f"{M}/c{i}" for i in range(NF)]
stop = time.time() + SECS
bad = []
counts = {"w": 0, "r": 0, "mv": 0, "snap": 0, "cli": 0, "blk": 0}

def block(off, wid, gen):
    # every 8-byte word names its own offset: a word elsewhere than where it was written, or
    # made of bytes nobody wrote, is caught whatever the kernel tears (reads and writes of the
    # page cache are not atomic against each other, on any filesystem)
    base = off // 8
    a = array.array("Q", (((base + k) << 32) | (wid << 24) | (gen & 0xFFFFFF) for k in range(B // 8)))
    return a.tobytes()

def valid(buf, off):
    a = array.array("Q")
    a.frombytes(buf[:len(buf) - len(buf) % 8])
    for k, w in enumerate(a):
        if w and ((w >> 32) != off // 8 + k or ((w >> 24) & 0xFF) >= 6):
            return (f"word at {off + 8 * k}: {w:#018x} never written there (it names offset "
                    f"{(w >> 32) * 8}, writer {(w >> 24) & 0xFF}, generation {w & 0xFFFFFF})")
    return None

def writer(wid):
    rnd = random.Random(SEED * 1000 + wid)
    gen = 0
    while time.time() < stop:
        gen += 1
        p = rnd.choice(names)
        try:
            fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
            op = rnd.random()
            if op < 0.7:
                nb = rnd.randrange(1, 64)
                at = rnd.randrange(0, 256) * B
                os.pwrite(fd, b"".join(block(at + k * B, wid, gen) for k in range(nb)), at)
            elif op < 0.8:
                os.ftruncate(fd, rnd.randrange(0, 256) * B)
            elif op < 0.9:
                os.fsync(fd)
            else:
                tmp = f"{M}/tmp{wid}"
                os.close(fd)
                fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o644)
                nb = rnd.randrange(1, 32)
                os.write(fd, b"".join(block(k * B, wid, gen) for k in range(nb)))
                os.rename(tmp, p)
                counts["mv"] += 1
            os.close(fd)
            counts["w"] += 1
        except FileNotFoundError:
            pass

def reader(rid):
    rnd = random.Random(SEED * 2000 + rid)
    while time.time() < stop:
        p = rnd.choice(names)
        try:
            fd = os.open(p, os.O_RDONLY)
            data = os.pread(fd, 4 << 20, 0)  # one read(2): its bytes are at their offsets
            os.close(fd)
        except FileNotFoundError:
            continue
        counts["r"] += 1
        counts["blk"] += len(data) // B
        e = valid(data, 0)
        if e:
            bad.append(f"{p}: {e}")

def snapper():
    while time.time() < stop:
        with open(f"{M}/.kvfs", "w") as f:
            f.write("snapshot\n")
        counts["snap"] += 1
        time.sleep(0.05)

def cli():
    rnd = random.Random(SEED * 3000)
    while time.time() < stop:
        k = f"c{rnd.randrange(NF)}"
        cmd = rnd.choice([["STATS"], ["SIZE"], ["GET", k], ["LIST"], ["SNAP"], ["FLUSH"]])
        p = subprocess.run([KV, D] + cmd, capture_output=True)
        if p.returncode not in (0,):
            bad.append(f"kv_cli {cmd}: exit {p.returncode} {p.stderr[:200]!r}")
        elif cmd[0] == "GET" and p.stdout != b"(nil)\n":
            pass  # quoted binary; not checked here
        counts["cli"] += 1

th = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
th += [threading.Thread(target=reader, args=(i,)) for i in range(6)]
th += [threading.Thread(target=snapper), threading.Thread(target=cli)]
for t in th: t.start()
for t in th: t.join()
print(counts)
for b in bad[:20]:
    print("BAD", b)
print(f"{len(bad)} bad reads")
