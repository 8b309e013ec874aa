#!/usr/bin/env python3
"""bench/release-sea.sh's timer: CPU time (user+sys of the command and every descendant it
waits for, from wait4's rusage) and wall time of each run, the variants alternating (the order
rotated each round) so that a change in the machine's load is spread over all of them.
  cpu-runs.py RUNS CASE... < variants.json
variants.json: {"name": {"front": PATH, "cache": DIR}, ...}; a CASE is
NAME|cold or warm|ARGS (a cold run empties the variant's Node compile cache first).
Prints one line per case and variant: medians in ms, and each variant / the first one."""
import json, os, shutil, statistics, sys, time

runs = int(sys.argv[1])
cases = [c.split('|', 2) for c in sys.argv[2:]]
variants = json.load(sys.stdin)
names = list(variants)
env0 = {k: v for k, v in os.environ.items() if not k.startswith(('NODE_', 'HPCC_'))}

def run(v, args, cold):
    cache = variants[v]['cache']
    if cold:
        shutil.rmtree(os.path.join(cache, 'node-compile-cache'), ignore_errors=True)
    env = dict(env0, HPCC_CACHEDIR=cache, HPCC_MEMO='0')
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        fd = os.open('/dev/null', os.O_WRONLY)
        os.dup2(fd, 1)
        os.execve(variants[v]['front'], [variants[v]['front'], *args], env)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f'cpu-runs: {v} {" ".join(args)} failed ({status})')
    return (ru.ru_utime + ru.ru_stime) * 1000, wall * 1000

for name, mode, argstr in cases:
    args = argstr.split()
    for v in names:  # one untimed run each: the image's pages, a warm compile cache
        run(v, args, False)
    cpu = {v: [] for v in names}
    wall = {v: [] for v in names}
    for i in range(runs):
        for v in names[i % len(names):] + names[:i % len(names)]:
            c, w = run(v, args, mode == 'cold')
            cpu[v].append(c)
            wall[v].append(w)
    base = statistics.median(cpu[names[0]])
    for v in names:
        mc, mw = statistics.median(cpu[v]), statistics.median(wall[v])
        print(f'{name:<28} {mode:<5} {v:<14} cpu {mc:7.1f} ms  wall {mw:7.1f} ms  cpu/{names[0]} {mc / base:5.2f}', flush=True)
