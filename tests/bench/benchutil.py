"""
benchutil.py -- what bench.py, oauth_bench.py and node_bench.py share:
running smtpload(1) for its JSON, and the processes and memory of a
server under test.
"""

import json
import os
import resource
import subprocess
import sys

from daemon import BUILD

SMTPLOAD = os.path.join(BUILD, "smtpload")
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def smtpload(port, *args, timeout=None):
    """smtpload's JSON result, or None; client_cpu_s says what the load
    generator took of the cores it shares with the server."""
    cmd = [SMTPLOAD, "-h", "127.0.0.1", "-p", str(port), "--json"] + \
        [str(a) for a in args]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True,
                       timeout=timeout or DURATION * 4 + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        start = p.stdout.index("{")
        res = json.loads(p.stdout[start:p.stdout.rindex("}") + 1])
    except ValueError:
        log("smtpload %s: no JSON (%s)" % (" ".join(cmd), p.stderr[-500:]))
        return None
    res["client_cpu_s"] = (after.ru_utime - before.ru_utime +
                           after.ru_stime - before.ru_stime)
    return res


def tree_pids(root_pid):
    """root_pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def proc_cpu_s(pid):
    """CPU seconds (user and system) one process has used so far."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_s(d):
    """CPU seconds used so far by a daemon's master and its children (a
    child that died in the run would be missed; none does here)."""
    return sum(proc_cpu_s(pid) for pid in tree_pids(d.proc.pid))


def pss_kib(pids):
    """Proportional set size: shared pages are not counted N times."""
    total = 0
    for p in pids:
        try:
            with open("/proc/%d/smaps_rollup" % p) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total
