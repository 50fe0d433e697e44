"""
node_bench.py -- one node's figures for make bench (also runs alone).

- sessions per worker after a c=256 run: the kernel's spread of
  connections over the workers' own listening sockets (SO_REUSEPORT on
  Linux), as max/min of the sessions each worker opened (target <= 1.25);
- AUTH + STARTTLS + 1 x 4 KiB at c=16 with `workers 1` and `workers 2`:
  how the pool scales (the ratio should approach the number of cores the
  server gets; the load generator shares them);
- memory (PSS of master and its children) per idle session, for 10,000
  plaintext sessions and for 10,000 sessions idle after STARTTLS
  (targets <= 3 KiB and <= 12 KiB).

Everything comes from smtpload(1) and /proc in this run.  run() returns
the rows as (what, figure, unit); print_rows() prints them as a table.
`python3 tests/bench/node_bench.py` runs it alone (PORTCULLIS_BUILD as
for the tests; BENCH_SECONDS, NODE_BENCH_IDLE to shorten it).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon  # noqa: E402
from benchutil import log, pss_kib, smtpload, tree_pids  # noqa: E402

SMTPLOAD = os.path.join(BUILD, "smtpload")
DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
IDLE = int(os.environ.get("NODE_BENCH_IDLE", "10000"))
DOMAIN = "bench.test"
NUSERS = 20


def daemon(workdir, workers, users):
    """A portcullis with a static checker for users (plaintext
    passwords: the hash is not what these rows measure)."""
    text = 'auth {\n\tchecker "local" static {\n'
    for u, p in users:
        text += '\t\tuser "%s" password "%s"\n' % (u, p)
    text += "\t}\n\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
    d = Daemon(workers=workers, listen="tls", local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000,
               conf_extra=text)
    d.start()
    return d


def spread(d, userfile):
    """max/min of the sessions each worker opened in a c=256 run."""
    since = d.log_offset()
    res = smtpload(d.port, "-c", 256, "-t", DURATION, "-s", 1024,
                   "--auth", userfile, "--to", "rcpt@" + DOMAIN)
    log_text = d.log()[since:]
    counts = {}
    for pid in re.findall(r"worker\[(\d+)\]: session \S+: connection from",
                          log_text):
        counts[pid] = counts.get(pid, 0) + 1
    per = sorted(counts.values(), reverse=True)
    return per, res


def idle_kib(d, n, tls):
    """PSS growth per session while n sessions sit idle."""
    before = pss_kib(tree_pids(d.proc.pid))
    args = [SMTPLOAD, "-h", "127.0.0.1", "-p", str(d.port), "--idle",
            str(n), "-t", "90"] + (["--starttls"] if tls else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    line = ""
    t0 = time.monotonic()
    while time.monotonic() - t0 < 80:
        line = p.stdout.readline()
        if not line or line.startswith("idle:"):
            break
    m = re.match(r"idle: (\d+) sessions open", line)
    held = int(m.group(1)) if m else 0
    time.sleep(2)
    after = pss_kib(tree_pids(d.proc.pid))
    p.terminate()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    log("idle %d %s: %d held, %d KiB -> %d KiB" % (
        n, "TLS" if tls else "plain", held, before, after))
    if held < n * 0.9:
        return None
    return (after - before) / held


def run(workdir=None):
    """The rows of the node table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-node-bench-")
        os.chmod(workdir, 0o755)
    users = [("n%d@%s" % (i, DOMAIN), "npw-%d" % i) for i in range(NUSERS)]
    userfile = os.path.join(workdir, "node-users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    rows = []
    daemons = []
    try:
        # Memory first, on fresh processes.
        d = daemon(workdir, 2, users)
        daemons.append(d)
        log("node: %d idle plaintext sessions" % IDLE)
        plain = idle_kib(d, IDLE, False)
        d.stop()
        daemons.remove(d)
        d = daemon(workdir, 2, users)
        daemons.append(d)
        log("node: %d idle sessions after STARTTLS" % IDLE)
        tls = idle_kib(d, IDLE, True)
        rows.append(("memory (PSS) per idle plaintext session, %d sessions"
                     % IDLE, plain, "KiB (target <= 3)"))
        rows.append(("memory (PSS) per idle session after STARTTLS, %d "
                     "sessions" % IDLE, tls, "KiB (target <= 12)"))

        log("node: spread over 2 workers, c=256")
        per, res = spread(d, userfile)
        rows.append(("sessions per worker after a c=256 run",
                     " / ".join(str(n) for n in per) or "n/a", "sessions"))
        if len(per) >= 2 and per[-1] > 0:
            rows.append(("busiest / idlest worker", per[0] / per[-1],
                         "(target <= 1.25)"))
        d.stop()
        daemons.remove(d)

        rates = {}
        for n in (1, 2):
            d = daemon(workdir, n, users)
            daemons.append(d)
            log("node: AUTH + STARTTLS c=16, workers %d" % n)
            res = smtpload(d.port, "-c", 16, "-t", DURATION, "-s", 4096,
                           "--starttls", "--auth", userfile,
                           "--to", "rcpt@" + DOMAIN)
            rates[n] = res.get("sessions_per_s") if res else None
            rows.append(("AUTH + STARTTLS + 1 x 4 KiB, c=16, workers %d" % n,
                         rates[n], "sessions/s"))
            d.stop()
            daemons.remove(d)
        if rates.get(1) and rates.get(2):
            rows.append(("workers 2 / workers 1", rates[2] / rates[1],
                         "(%d cores, shared with the client)"
                         % os.cpu_count()))
    finally:
        for d in daemons:
            d.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### One node: spread over the workers, scaling, "
                     "idle memory", rows)


if __name__ == "__main__":
    print_rows(run())
