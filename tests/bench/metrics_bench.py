"""
metrics_bench.py -- what the metrics endpoint costs, for make bench
(also runs alone).

The AUTH + STARTTLS + 1 x 4 KiB row at c=16 (smtpload), against one
portcullis without "metrics listen on" and one with it, scraped every
second by a client that reads /metrics whole, as Prometheus does.  Each
is run twice, alternately, and the better figure of each kept (a busy
machine only lowers a figure).  The ratio on / off is the result (target
>= 0.97); beside it, the CPU the server's processes used per session in
each (from /proc), which the neighbours of a shared machine move less,
and the CPU one scrape costs all the processes together.  The counting
itself is in both rows: every process counts whether or not metrics is
on.  run() returns the rows as (what, figure, unit), like node_bench.py;
`python3 tests/bench/metrics_bench.py` runs it alone (PORTCULLIS_BUILD
as for the tests, BENCH_SECONDS to shorten it, METRICS_BENCH_ROUNDS).
"""

import os
import shutil
import sys
import tempfile
import threading
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import Daemon, free_port  # noqa: E402
from benchutil import cpu_s, log, smtpload  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
NUSERS = 20
ROUNDS = int(os.environ.get("METRICS_BENCH_ROUNDS", "2"))


def daemon(users, metrics):
    text = 'auth {\n\tchecker "local" static {\n'
    for u, p in users:
        text += '\t\tuser "%s" password "%s"\n' % (u, p)
    text += "\t}\n\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
    d = Daemon(workers=2, listen="tls", local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000,
               conf_extra=text)
    d.metrics_port = None
    if metrics:
        d.metrics_port = free_port()
        d.write_conf(d.conf_text() + "metrics listen on 127.0.0.1 port %d\n"
                     % d.metrics_port)
    d.start()
    if metrics:
        d.wait_log(r"metrics ready")
    return d


class Scraper(threading.Thread):
    """GET /metrics every second until stopped; counts what it got."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.url = "http://127.0.0.1:%d/metrics" % port
        self.stop = threading.Event()
        self.ok = self.failed = self.octets = 0

    def run(self):
        while not self.stop.wait(1.0):
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    self.octets += len(r.read())
                    self.ok += 1
            except OSError:
                self.failed += 1


def one_run(d, userfile):
    scraper = Scraper(d.metrics_port) if d.metrics_port else None
    if scraper:
        scraper.start()
    cpu0 = cpu_s(d)
    try:
        res = smtpload(d.port, "-c", 16, "-t", DURATION, "-s", 4096,
                       "--starttls", "--auth", userfile,
                       "--to", "rcpt@" + DOMAIN)
    finally:
        if scraper:
            scraper.stop.set()
            scraper.join()
    cpu = cpu_s(d) - cpu0
    rate = per = None
    if res and not res.get("errors") and not res.get("auth_failed"):
        rate = res.get("sessions_per_s")
        if res.get("sessions_completed"):
            per = cpu * 1e6 / res["sessions_completed"]
    elif res:
        log("metrics: a run with errors: %r" % res)
    return rate, per, scraper


def scrape_cost(d, n=300):
    """CPU microseconds of the server's processes per scrape, all told:
    the metrics process, and master, authd and workers answering."""
    url = "http://127.0.0.1:%d/metrics" % d.metrics_port
    cpu0 = cpu_s(d)
    for _ in range(n):
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
    return (cpu_s(d) - cpu0) * 1e6 / n


def run(workdir=None):
    """The rows of the metrics table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-metrics-bench-")
        os.chmod(workdir, 0o755)
    users = [("m%d@%s" % (i, DOMAIN), "mpw-%d" % i) for i in range(NUSERS)]
    userfile = os.path.join(workdir, "metrics-users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    best = {False: None, True: None}
    cpu = {False: None, True: None}
    scrapes = failed = octets = 0
    per_scrape = None
    daemons = []
    try:
        for metrics in (False, True):
            daemons.append(daemon(users, metrics))
        for _ in range(ROUNDS):
            for d in daemons:
                on = d.metrics_port is not None
                log("metrics: AUTH + STARTTLS c=16, metrics %s"
                    % ("on, scraped every second" if on else "off"))
                rate, per, sc = one_run(d, userfile)
                if rate is not None and (best[on] is None or
                                         rate > best[on]):
                    best[on] = rate
                if per is not None and (cpu[on] is None or per < cpu[on]):
                    cpu[on] = per
                if sc:
                    scrapes += sc.ok
                    failed += sc.failed
                    octets = max(octets, sc.octets // max(sc.ok, 1))
        log("metrics: CPU per scrape")
        per_scrape = scrape_cost(daemons[1])
    finally:
        for d in daemons:
            d.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    rows = [("AUTH + STARTTLS + 1 x 4 KiB, c=16, metrics off", best[False],
             "sessions/s"),
            ("AUTH + STARTTLS + 1 x 4 KiB, c=16, metrics on, scraped "
             "every second", best[True], "sessions/s"),
            ("scrapes during the runs: served / failed",
             "%d / %d" % (scrapes, failed), "(%d octets each)" % octets),
            ("server CPU per scrape, every process", per_scrape,
             "us of CPU (at one scrape a second: millionths of a core)")]
    if best[False] and best[True]:
        rows.append(("metrics on / metrics off", best[True] / best[False],
                     "(target >= 0.97)"))
    # On a shared machine the server's own CPU per session says more
    # than a rate the neighbours move.
    rows.append(("server CPU per session, metrics off", cpu[False],
                 "us (master and children)"))
    rows.append(("server CPU per session, metrics on", cpu[True],
                 "us (master and children)"))
    if cpu[False] and cpu[True]:
        rows.append(("CPU per session, metrics off / on",
                     cpu[False] / cpu[True], "(1.00: no cost)"))
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### The metrics endpoint's cost", rows)


if __name__ == "__main__":
    print_rows(run())
