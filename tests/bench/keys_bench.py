"""
keys_bench.py -- what the key process costs (part of make bench; also
runs alone: python3 tests/bench/keys_bench.py after make bench-bins).

Every full TLS handshake signs once, and the signature is made in a
key process (keys/keys.c: one per core by default, worker i asking key
process i mod N) while the worker's handshake waits as an OpenSSL async
job (worker/keyproxy.c).  The figures: STARTTLS + AUTH sessions/s (connect,
EHLO, STARTTLS, EHLO, AUTH PLAIN, QUIT; a full handshake each, no
resumption) at c=1, 16 and 256, STARTTLS without AUTH at c=256 (where
the handshake is all the work), and the STARTTLS handshake latency
(from the 220 to the end of the handshake, smtpload's starttls_ms) at
p50 and p99, with an ECDSA P-256 and an RSA-2048 certificate.  Then
resumption: STARTTLS-only sessions/s at c=16 with full handshakes and
with each client offering the ticket its last connection got
(smtpload --resume, master's shared ticket keys), and the share of
handshakes that resumed: a resumed one signs nothing.

With KEYS_BENCH_BASE=DIR (a build of the tree before the key process,
e.g. a git worktree at that commit built with make), the same runs go
against it too, alternating, KEYS_BENCH_REPS times (default 1), and the
rows give after / before ratios: the median of the runs of each side.
KEYS_BENCH_KEY_PROCESSES=N sets key-processes for this tree's build
(default: one per core), KEYS_BENCH_CERTS=RSA or ECDSA runs one kind.
"""

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import BUILD, Daemon, base_env  # noqa: E402
from benchutil import log, smtpload  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
CORES = os.cpu_count()
NUSERS = 20
CERTS = (("ECDSA P-256", ["-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:prime256v1"]),
         ("RSA-2048", ["-newkey", "rsa:2048"]))
# KEYS_BENCH_CERTS=RSA (or ECDSA): one kind only.
CERTS = tuple(c for c in CERTS
              if os.environ.get("KEYS_BENCH_CERTS", "") in c[0])
KEY_PROCESSES = os.environ.get("KEYS_BENCH_KEY_PROCESSES")


class BuildDaemon(Daemon):
    """A Daemon of the build in build_dir (another tree's, perhaps)."""

    def __init__(self, build_dir, **kw):
        self.build_dir = build_dir
        super().__init__(**kw)

    def start(self):
        env = base_env()
        env["PORTCULLIS_LIBEXEC"] = self.build_dir
        self.log_fh = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(self.build_dir, "portcullisd"), "-d", "-f",
             self.conf], env=env, stdin=subprocess.DEVNULL,
            stdout=self.log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.wait_log(r"authd ping ok", count=self.workers, timeout=30)
        return self


def make_users(workdir):
    users = [("k%d@%s" % (i, DOMAIN), "pw-%d-keys" % i)
             for i in range(NUSERS)]
    userfile = os.path.join(workdir, "keys-users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    hashes = {u: subprocess.run(["openssl", "passwd", "-6", p],
                                capture_output=True, text=True,
                                check=True).stdout.strip()
              for u, p in users}
    return users, userfile, hashes


def daemon(build_dir, cert_args, users, hashes):
    kw = {}
    # The tree's own build may be told how many key processes to run
    # (default: its own default, one per core).
    if KEY_PROCESSES and os.path.realpath(build_dir) == \
            os.path.realpath(BUILD):
        kw["key_processes"] = int(KEY_PROCESSES)
    d = BuildDaemon(build_dir, workers=CORES, listen="tls",
                    local_domains=[DOMAIN], max_sessions=200000,
                    max_sessions_per_address=200000, **kw)
    subprocess.run(["openssl", "req", "-x509"] + cert_args +
                   ["-nodes", "-days", "2", "-subj", "/CN=test.local",
                    "-keyout", d.key, "-out", d.cert],
                   check=True, capture_output=True, timeout=60)
    os.chmod(d.key, 0o600)
    db = os.path.join(d.dir, "db")
    d.conf_extra = ('auth {\n\tchecker "local" lmdb "%s"\n'
                    "\tfailure-delay 0s\n}\n" % db)
    d.write_conf()
    imp = os.path.join(d.dir, "import.txt")
    with open(imp, "w") as f:
        for u, _ in users:
            f.write("%s:{SHA512-CRYPT}%s\n" % (u, hashes[u]))
    # The build's own authctl: an older authd refuses a store made in a
    # newer layout, and every AUTH would be 454.
    subprocess.run([os.path.join(build_dir, "authctl"), "-f", d.conf,
                    "user", "import", imp], check=True, capture_output=True)
    return d.start()


def runs(userfile):
    """(name, smtpload arguments) of each figure's run."""
    out = []
    for c in (1, 16, 256):
        out.append(("auth-c%d" % c, ["-c", c, "-t", DURATION, "-m", 0,
                                     "--starttls", "--auth", userfile]))
    out.append(("tls-c256", ["-c", 256, "-t", DURATION, "-m", 0,
                             "--starttls"]))
    out.append(("tls-c16", ["-c", 16, "-t", DURATION, "-m", 0,
                            "--starttls"]))
    out.append(("tls-c16-resume", ["-c", 16, "-t", DURATION, "-m", 0,
                                   "--starttls", "--resume"]))
    return out


def measure(build_dir, cert_args, users, hashes, userfile):
    """{run name: smtpload result} against one build and certificate."""
    d = daemon(build_dir, cert_args, users, hashes)
    res = {}
    try:
        for name, args in runs(userfile):
            r = smtpload(d.port, *args)
            if r is None or r.get("sessions_failed"):
                log("keys bench %s: %s" % (name, r and {
                    k: r[k] for k in r if "err" in k or "fail" in k}))
            res[name] = r
    finally:
        d.stop()
    return res


def figure(results, name, key):
    vals = []
    for r in results:
        x = r.get(name)
        if not x:
            continue
        if key == "resumed":
            vals.append(100.0 * x.get("tls_resumed", 0) /
                        max(1, x["sessions_started"]))
        else:
            vals.append(x["sessions_per_s"] if key == "sps"
                        else x["starttls_ms"][key])
    return statistics.median(vals) if vals else None


def rows_for(kind, after, before):
    """(what, value, unit) rows of one certificate kind."""
    rows = []
    labels = [("auth-c1", "sps", "STARTTLS + AUTH, c=1", "sessions/s"),
              ("auth-c16", "sps", "STARTTLS + AUTH, c=16", "sessions/s"),
              ("auth-c256", "sps", "STARTTLS + AUTH, c=256", "sessions/s"),
              ("auth-c256", "p50", "STARTTLS handshake p50, with AUTH, "
               "c=256", "ms"),
              ("auth-c256", "p99", "STARTTLS handshake p99, with AUTH, "
               "c=256", "ms"),
              ("tls-c256", "sps", "STARTTLS only, c=256", "sessions/s"),
              ("tls-c256", "p99", "STARTTLS handshake p99, no AUTH, c=256",
               "ms"),
              ("tls-c16", "sps", "STARTTLS only, c=16, full handshakes",
               "sessions/s"),
              ("tls-c16-resume", "sps", "STARTTLS only, c=16, resumed by "
               "ticket", "sessions/s"),
              ("tls-c16-resume", "resumed", "STARTTLS only, c=16, share "
               "of handshakes resumed", "%")]
    for name, key, what, unit in labels:
        a = figure(after, name, key)
        rows.append(("%s, %s" % (what, kind), a, unit))
        if before:
            b = figure(before, name, key)
            rows.append(("%s, %s: before (no key process)" % (what, kind),
                         b, unit))
            rows.append(("%s, %s: after / before" % (what, kind),
                         a / b if a and b else None, "x"))
    full = figure(after, "tls-c16", "sps")
    resumed = figure(after, "tls-c16-resume", "sps")
    rows.append(("STARTTLS only, c=16, %s: resumed / full" % kind,
                 resumed / full if full and resumed else None, "x"))
    return rows


def run(workdir, users=None, hashes=None):
    """The rows of the key-process table."""
    base = os.environ.get("KEYS_BENCH_BASE")
    reps = int(os.environ.get("KEYS_BENCH_REPS", "1"))
    users, userfile, hashes = make_users(workdir)
    rows = []
    for kind, cert_args in CERTS:
        after, before = [], []
        for i in range(reps):
            # Alternate, so that a noisy minute hits both sides.
            if base:
                log("keys: %s, before, run %d" % (kind, i + 1))
                before.append(measure(base, cert_args, users, hashes,
                                      userfile))
            log("keys: %s, after, run %d" % (kind, i + 1))
            after.append(measure(BUILD, cert_args, users, hashes,
                                 userfile))
        rows += rows_for(kind, after, before)
    return rows


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = tempfile.mkdtemp(prefix="portcullis-keys-bench-")
    os.chmod(workdir, 0o755)
    try:
        rows = run(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.path.insert(0, HERE)
    import table
    table.print_rows("The key process: full STARTTLS handshakes, each "
                     "signing in the key process (portcullis only):", rows)


if __name__ == "__main__":
    main()
