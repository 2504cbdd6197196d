#!/usr/bin/env python3
"""Malformed frames on a mounted daemon's control socket (docs/CONTROL.md, the wire): each must
end that connection or get an ERR, and the daemon must go on serving (a good GET after each).
usage: ctl_fuzz.py DATADIR [SEED]"""
import os, random, socket, struct, sys, time
D = sys.argv[1]; SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
print("seed", SEED)
rnd = random.Random(SEED)

def conn():
    s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(f"{D}/kvfs.sock")
    t, body = recv(s); assert t == b"H", (t, body)
    return s

def recv(s):
    h = b""
    while len(h) < 16:
        c = s.recv(16 - len(h))
        if not c: return None, None
        h += c
    t, f, n, z, ln = struct.unpack("=BBHIQ", h)
    b = b""
    while len(b) < ln:
        c = s.recv(min(1 << 20, ln - len(b)))
        if not c: break
        b += c
    return bytes([t]), b

def frame(t, parts, flags=0, nparts=None, zero=0, ln=None):
    pay = b"".join(struct.pack("=I", len(p)) + p for p in parts)
    return struct.pack("=BBHIQ", ord(t), flags, len(parts) if nparts is None else nparts, zero,
                       len(pay) if ln is None else ln) + pay

def alive():
    s = conn(); s.sendall(frame("A", [b"PUT", b"probe", b"ok"])); t, b = recv(s)
    s.close(); return t == b"R" and b == b"OK\n"

cases = {
    "zero field set": frame("L", [b"SIZE"], zero=1),
    "len over the limit": struct.pack("=BBHIQ", ord("L"), 0, 1, 0, (1 << 62)),
    "len says more than sent then hang up": struct.pack("=BBHIQ", ord("L"), 0, 1, 0, 100) + b"abc",
    "nparts 0": frame("L", [], nparts=0),
    "nparts larger than parts": frame("L", [b"SIZE"], nparts=9),
    "part length past payload": struct.pack("=BBHIQ", ord("L"), 0, 1, 0, 8) + struct.pack("=I", 1000) + b"SIZE",
    "args 65": frame("A", [b"GET"] * 65),
    "args with NUL": frame("A", [b"GET", b"a\0b"]),
    "line with NUL": frame("L", [b"GET a\0b"]),
    "line binary": frame("L", [bytes(rnd.randrange(256) for _ in range(300))]),
    "line overlong flag on a short line": frame("L", [b"PUT a b"], flags=2),
    "flags all": frame("L", [b"SIZE"], flags=255),
    "unknown type": frame("Z", [b"SIZE"]),
    "reply type as request": frame("R", [b"SIZE"]),
    "backup relative": frame("B", [b"rel/path"]),
    "backup into the store itself": frame("B", [D.encode() + b"/bk"]),
    "backup to /proc": frame("B", [b"/proc/self/bk"]),
    "empty args": frame("A", [b""]),
    "PUT key empty": frame("A", [b"PUT", b"", b"v"]),
    "PUT key 5000 bytes": frame("A", [b"PUT", b"k" * 5000, b"v"]),
    "DEL root key": frame("A", [b"DEL", b""]),
    "PUT a reserved key": frame("A", [b"PUT", b"/ino", b"garbage"]),
    "LIST huge limit": frame("L", [b"LIST \"\" 99999999999999999999999"]),
    "STATS junk": frame("L", [b"STATS JSONX"]),
}
bad = 0
for name, data in cases.items():
    s = conn()
    try:
        s.sendall(data)
        if name.endswith("hang up"):
            s.shutdown(socket.SHUT_WR)
        t, b = recv(s)
    except (OSError, socket.timeout) as e:
        t, b = "exc", repr(e)
    s.close()
    ok = alive()
    print(f"{'ok ' if ok else 'DEAD'} {name}: {t} {(b or b'')[:150]!r}")
    bad += not ok
    if not ok:
        break
# random frames
for i in range(300):
    s = conn()
    n = rnd.randrange(0, 64)
    data = bytes(rnd.randrange(256) for _ in range(n))
    try:
        s.sendall(data); s.shutdown(socket.SHUT_WR); recv(s)
    except OSError:
        pass
    s.close()
print("random frames: daemon", "alive" if alive() else "DEAD")
print("bad", bad)
