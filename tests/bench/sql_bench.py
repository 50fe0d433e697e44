"""
sql_bench.py -- the PostgreSQL part of make bench (also runs alone).

One figure, side by side: AUTH PLAIN sessions per second (connect, EHLO,
AUTH PLAIN, QUIT; no TLS, no message) with 16 concurrent clients, each
login checked against the same PostgreSQL table (PostfixAdmin's mailbox
shape, {SHA512-CRYPT} hashes as PostfixAdmin writes them):

- portcullis, its sql checker alone in the chain;
- Postfix + Dovecot 2.3, Dovecot's sql passdb (dovecot-pgsql), the
  bench's postfix.sh peer with PEER_DOVECOT_SQL.

Each is measured twice, in turn, and its better run kept.

Neither caches: Dovecot's auth_cache_size is 0 (postfix.sh), portcullis
has no cache checker.  Both verify the same sha512-crypt hashes (5000
rounds), cheap enough that the servers' own costs show.
"""

import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))

from daemon import Daemon, free_port  # noqa: E402
from benchutil import log, smtpload  # noqa: E402
import pgserver  # noqa: E402

DURATION = int(os.environ.get("BENCH_SECONDS", "8"))
DOMAIN = "bench.test"
NUSERS = 100
CONCURRENCY = 16
DB_PASSWORD = "bench-db-pw"
QUERY = "SELECT username, password FROM mailbox WHERE username = $1 " \
    "AND active"


def sha512(password):
    return subprocess.run(["openssl", "passwd", "-6", password],
                          capture_output=True, text=True,
                          check=True).stdout.strip()


def load_users(pg, users):
    rows = ",\n".join("('%s', '{SHA512-CRYPT}%s', true)" % (u, sha512(p))
                      for u, p in users)
    pg.psql("""
CREATE ROLE portcullis LOGIN PASSWORD '%s';
CREATE TABLE mailbox (username varchar(255) PRIMARY KEY,
    password varchar(255) NOT NULL, active boolean NOT NULL DEFAULT true);
INSERT INTO mailbox VALUES %s;
GRANT SELECT ON mailbox TO portcullis;
""" % (DB_PASSWORD, rows))


def portcullis(pg):
    d = Daemon(workers=os.cpu_count(), local_domains=[DOMAIN],
               max_sessions=200000, max_sessions_per_address=200000)
    secret = os.path.join(d.dir, "sql.pass")
    with open(secret, "w") as f:
        f.write(DB_PASSWORD + "\n")
    os.chmod(secret, 0o600)
    d.conf_extra = ('auth {\n\tchecker "db" sql {\n'
                    '\t\tconninfo "%s"\n\t\tpassword-file "%s"\n'
                    '\t\tquery "%s"\n\t\tuser-column username\n'
                    '\t}\n\tfailure-delay 0s\n}\n'
                    % (pg.conninfo("portcullis"), secret, QUERY))
    d.write_conf()
    d.start()
    d.wait_log(r"sql db: connected to", count=1)
    return d


def dovecot_sql_conf(pg, path):
    """Dovecot's sql passdb on the same table (its %u is escaped by
    Dovecot's sql driver)."""
    with open(path, "w") as f:
        f.write("driver = pgsql\n"
                "connect = host=127.0.0.1 port=%d dbname=%s user=portcullis "
                "password=%s\n"
                "default_pass_scheme = SHA512-CRYPT\n"
                "password_query = SELECT username AS user, password FROM "
                "mailbox WHERE username = '%%u' AND active\n"
                % (pg.port, pg.dbname, DB_PASSWORD))
    subprocess.run(["chown", "root:dovecot", path], check=True)
    os.chmod(path, 0o640)


def peer(workdir, pg, userfile):
    """Postfix + Dovecot with the sql passdb; (port, dir) or None."""
    pdir = os.path.join(workdir, "postfix-sql")
    os.makedirs(pdir, exist_ok=True)
    conf = os.path.join(workdir, "dovecot-sql.conf.ext")
    dovecot_sql_conf(pg, conf)
    port = free_port()
    out = os.path.join(workdir, "postfix-sql.start")
    with open(out, "w") as f:
        p = subprocess.run(["bash", os.path.join(HERE, "peers",
                                                 "postfix.sh"), "start",
                            pdir, str(port), userfile],
                           stdin=subprocess.DEVNULL, stdout=f,
                           stderr=subprocess.STDOUT, timeout=600,
                           env=dict(os.environ, PEER_DOVECOT_SQL=conf))
    if p.returncode != 0:
        with open(out) as f:
            log("postfix+dovecot (sql) did not start: %s" % f.read()[-800:])
        return None, pdir
    return port, pdir


def rate(res):
    if not res or not res.get("sessions_completed"):
        return None
    return res.get("sessions_per_s")


def errors(res):
    if not res:
        return "no result"
    n = sum(res.get("error_replies", {}).values()) + \
        res.get("connection_errors", 0) + res.get("timeouts", 0)
    return n


def run(workdir=None):
    """The rows of the SQL table: (what, figure, unit)."""
    own = workdir is None
    if own:
        workdir = tempfile.mkdtemp(prefix="portcullis-sql-bench-")
        os.chmod(workdir, 0o755)
    why = pgserver.missing()
    if why is not None:
        return [("PostgreSQL", None, why)]
    users = [("s%d@%s" % (i, DOMAIN), "spw-%d-bench" % i)
             for i in range(NUSERS)]
    userfile = os.path.join(workdir, "sql-users.txt")
    with open(userfile, "w") as f:
        for u, p in users:
            f.write("%s:%s\n" % (u, p))
    os.chmod(userfile, 0o644)
    pg = d = None
    pdir = None
    rows = []
    load = ["-c", CONCURRENCY, "-t", DURATION, "-m", 0, "--auth", userfile]
    try:
        pg = pgserver.PgServer(dbname="mail").start()
        pg.create_db()
        load_users(pg, users)

        d = portcullis(pg)
        port, pdir = peer(workdir, pg, userfile)
        servers = [("portcullis", d.port)]
        if port is not None:
            servers.append(("dovecot", port))
        for _, p in servers:
            smtpload(p, "-c", 4, "-n", 200, "-m", 0, "--auth", userfile)
        # Taken in turn, twice, the better of each kept: other work on
        # a shared machine can only lower a rate.
        best = {}
        for _ in range(2):
            for name, p in servers:
                log("sql: %s" % name)
                res = smtpload(p, *load)
                if name not in best or \
                        (rate(res) or 0) > (rate(best[name]) or 0):
                    best[name] = res
        ours, theirs = best.get("portcullis"), best.get("dovecot")
        r_ours, r_theirs = rate(ours), rate(theirs)
        rows.append(("portcullis, sql checker: AUTH PLAIN sessions/s, "
                     "c=%d" % CONCURRENCY, r_ours, "sessions/s"))
        rows.append(("Postfix + Dovecot sql passdb: AUTH PLAIN "
                     "sessions/s, c=%d" % CONCURRENCY, r_theirs,
                     "sessions/s"))
        if r_ours and r_theirs:
            rows.append(("portcullis / Dovecot", r_ours / r_theirs,
                         "x (target >= 1.5)"))
        rows.append(("errors: portcullis / Dovecot", "%s / %s" % (
            errors(ours), errors(theirs)), ""))
        if ours and ours.get("auth_ms"):
            rows.append(("portcullis login p50 / p99", "%.1f / %.1f" % (
                ours["auth_ms"]["p50"], ours["auth_ms"]["p99"]), "ms"))
        if theirs and theirs.get("auth_ms"):
            rows.append(("Dovecot login p50 / p99", "%.1f / %.1f" % (
                theirs["auth_ms"]["p50"], theirs["auth_ms"]["p99"]), "ms"))
    finally:
        if d is not None:
            d.stop()
        if pdir is not None:
            subprocess.run(["bash", os.path.join(HERE, "peers",
                                                 "postfix.sh"), "stop",
                            pdir], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        if pg is not None:
            pg.cleanup()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    return rows


def print_rows(rows):
    import table  # tests/bench, beside this file
    table.print_rows("### PostgreSQL users (same database, no login "
                     "cache)", rows)


if __name__ == "__main__":
    print_rows(run())
