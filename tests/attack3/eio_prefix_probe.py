import sys,subprocess,os,shutil
sys.argv=["x","/work/wt/a3/build/kv_cli","fdatasync","eio","501","501","1"]
src=open("/work/wt/a3/tests/attack3/clean_crash.py").read().split("work = tempfile")[0]
exec(src)
ops1=workload(SEED,"a",400)
d="/tmp/a3dbg/s"; shutil.rmtree("/tmp/a3dbg",ignore_errors=True); os.makedirs("/tmp/a3dbg")
inj="inject=fdatasync:error=EIO:when=%s"%sys.argv[4] if len(sys.argv)>4 else ""
inj="inject=fdatasync:error=EIO:when="+os.environ.get("N","501")
p=subprocess.run(["strace","-f","-o","/tmp/a3dbg/trace","-e","trace=fdatasync,fsync,rename,unlink,openat,ftruncate","-e",inj,KV,"-o",OPTS,d],input=script(ops1).encode(),capture_output=True)
out=p.stdout.decode(); a1=acked(out,ops1)
print("acked",a1,"stderr:",p.stderr.decode()[-2000:])
print("replies tail",out.split("\n")[a1-2:a1+4])
keys1=sorted({k for _,k,_ in ops1})
st,err=read_state(d,keys1); print("reopen err:",err)
exp=[s for i,s in states(ops1) if i==a1][0]
for k in keys1:
    g=st.get(k); e=exp.get(k)
    if g!=e: print("DIFF",k,"got",(g or "None")[:20],"exp",(e or "None")[:20])
print("prefix ok" if prefix_of(st,ops1,None,a1) else "NOT PREFIX")
if not prefix_of(st,ops1,None,a1):
    # closest prefix
    best=min(((sum(1 for k in keys1 if s.get(k)!=st.get(k)),i) for i,s in states(ops1)))
    print("closest prefix",best)
    bs=[s for i,s in states(ops1) if i==best[1]][0]
    for k in keys1:
        if bs.get(k)!=st.get(k): print(" vs closest DIFF",k,"got",(st.get(k) or "None")[:22],"exp",(bs.get(k) or "None")[:22])
    os.system("cp -a /tmp/a3dbg /tmp/a3dbg-fail-%s"%os.environ.get("N"))
