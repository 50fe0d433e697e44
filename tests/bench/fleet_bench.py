"""
fleet_bench.py -- what shared state costs (make bench; also runs alone).

One node, a static checker (plaintext passwords: the hash is not what
this measures), AUTH sessions at c=16 with the node's own counters and
with "state redis" on a Unix socket (Debian's redis-server, started
here): every login tells Redis what it did (DEL the address's failures,
SET the address known for the account; nothing is asked before the
password unless the account is locked), so the ratio is the
price of a fleet-wide penalty state (target >= 0.90).  Then the same
with one message each under a sending limit (one more question, at the
end of DATA).  Beside the rates, the CPU a login costs the server's
processes, and with Redis the redis-server's as well: a rate moves with
the neighbours on a shared machine, the CPU far less.

Everything comes from smtpload(1) in this run.  run() returns the rows
as (what, figure, unit); `python3 tests/bench/fleet_bench.py` runs it
alone after `make bench-bins` (PORTCULLIS_BUILD as for the tests;
BENCH_SECONDS shortens it).
"""

import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import Daemon  # noqa: E402
from benchutil import cpu_s, log, proc_cpu_s, smtpload  # noqa: E402
from test_redis import RedisServer  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
NUSERS = 50


def daemon(users, redis_sock=None):
    text = 'auth {\n\tchecker "local" static {\n'
    for u, p in users:
        text += '\t\tuser "%s" password "%s"\n' % (u, p)
    text += "\t}\n\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
    # High enough never to refuse here: what is measured is the asking.
    text += "limit messages 100000000 per 1h recipients 100000000 per 1h\n"
    if redis_sock:
        text += 'state redis "unix:%s"\n' % redis_sock
    d = Daemon(workers=os.cpu_count(), local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000,
               conf_extra=text)
    d.start()
    if redis_sock:
        d.wait_log(r"penalties and limits are shared")
    return d


def rate(res):
    return res.get("sessions_per_s") if res else None


def auth_run(d, userfile, redis):
    """One AUTH-only run: its rate, and the CPU microseconds per login
    of the node's processes and, when it uses it, of redis-server."""
    c0 = cpu_s(d) + (proc_cpu_s(redis.proc.pid) if redis else 0)
    res = smtpload(d.port, "-c", 16, "-t", DURATION, "-m", 0, "--auth",
                   userfile)
    cpu = cpu_s(d) + (proc_cpu_s(redis.proc.pid) if redis else 0) - c0
    done = (res or {}).get("sessions_completed")
    if not res or res.get("errors") or res.get("auth_failed") or not done:
        log("fleet: a run with errors: %r" % res)
        return None, None
    return rate(res), cpu * 1e6 / done


def run(workdir=None):
    """The rows of the fleet table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-fleet-bench-")
        os.chmod(workdir, 0o755)
    users = [("f%d@%s" % (i, DOMAIN), "fpw-%d" % i) for i in range(NUSERS)]
    userfile = os.path.join(workdir, "fleet-users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    rows = []
    daemons = []
    redis = None
    try:
        redis = RedisServer()
        redis.start()
        nodes = {"local": daemon(users),
                 "redis": daemon(users, redis.sock)}
        daemons.extend(nodes.values())
        # Taken in turns, three times, the best of each kept: other work
        # on a shared machine can only lower a rate, or raise a CPU cost.
        rates, cpu = {}, {}
        for rnd in range(3):
            for kind, d in nodes.items():
                log("fleet: AUTH only, c=16, state %s (%d)" % (kind, rnd))
                r, per = auth_run(d, userfile,
                                  redis if kind == "redis" else None)
                rates[kind, "auth"] = max(r or 0, rates.get((kind, "auth"),
                                                            0)) or None
                if per is not None:
                    cpu[kind] = min(per, cpu.get(kind, per))
        for kind, d in nodes.items():
            log("fleet: AUTH + 1 message under a limit, c=16, state %s"
                % kind)
            rates[kind, "msg"] = rate(smtpload(
                d.port, "-c", 16, "-t", DURATION, "-s", 1024, "--auth",
                userfile, "--to", "rcpt@" + DOMAIN))
        for what, key in (("AUTH only", "auth"),
                          ("AUTH + 1 x 1 KiB, sending limit on", "msg")):
            off, on = rates["local", key], rates["redis", key]
            rows.append(("%s, c=16, node's own counters" % what, off,
                         "sessions/s"))
            rows.append(("%s, c=16, state redis (Unix socket)" % what, on,
                         "sessions/s"))
            if off and on:
                rows.append(("%s: redis / own" % what, on / off,
                             "(target >= 0.90)" if key == "auth" else ""))
            if key == "auth":
                rows.append(("AUTH only, CPU per login, node's own "
                             "counters", cpu.get("local"),
                             "us (master and children)"))
                rows.append(("AUTH only, CPU per login, state redis",
                             cpu.get("redis"),
                             "us (master, children and redis-server)"))
                if cpu.get("local") and cpu.get("redis"):
                    rows.append(("AUTH only, CPU per login: redis / own",
                                 cpu["redis"] / cpu["local"], ""))
    finally:
        for d in daemons:
            d.stop()
        if redis is not None:
            redis.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### Fleet state: the node's own counters or "
                     "Redis", rows)


if __name__ == "__main__":
    print_rows(run())
