"""
pgserver.py -- a private PostgreSQL for the tests and the benchmark.

Debian's postgresql-15: initdb and postgres run as the unprivileged user
"postgres" (the server refuses root) in a temporary directory, with a
Unix socket in that directory and a TCP port on 127.0.0.1 from
free_port().  Local (socket) connections are trusted, for loading the
data with psql; TCP connections need a password (scram-sha-256), as a
checker's would.  Durability is off: the data dies with the test.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from daemon import free_port

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "postgres"


def missing():
    """Why PostgreSQL cannot run here, or None."""
    for tool in ("initdb", "postgres", "psql"):
        if not os.access(os.path.join(PG_BIN, tool), os.X_OK):
            return "%s not found in %s (Debian postgresql-15)" % (
                tool, PG_BIN)
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return "no user %s" % PG_USER
    if os.geteuid() != 0:
        return "needs root to run the server as %s" % PG_USER
    return None


def _demote():
    pw = pwd.getpwnam(PG_USER)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)


class PgServer:
    """One cluster: start(), stop(), restart(), psql(sql)."""

    def __init__(self, dbname="mail", port=None, ssl=False):
        self.dir = tempfile.mkdtemp(prefix="pg-test-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sockdir = self.dir
        self.port = port or free_port()
        self.dbname = dbname
        self.proc = None
        self.logfile = os.path.join(self.dir, "postgres.log")
        pw = pwd.getpwnam(PG_USER)
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U",
             "postgres", "--auth-local=trust",
             "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C"],
            preexec_fn=_demote, check=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd="/")
        self.ssl = ssl
        if ssl:
            # TLS for TCP clients that ask (libpq's sslmode=prefer does)
            subprocess.run(
                ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-days", "2", "-subj", "/CN=127.0.0.1",
                 "-keyout", os.path.join(self.data, "server.key"),
                 "-out", os.path.join(self.data, "server.crt")],
                check=True, capture_output=True)
            for f in ("server.key", "server.crt"):
                os.chown(os.path.join(self.data, f), *_ids())
            os.chmod(os.path.join(self.data, "server.key"), 0o600)

    def start(self, timeout=20.0):
        self.log_fh = open(self.logfile, "ab")
        os.chown(self.logfile, *_ids())
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, "postgres"), "-D", self.data,
             "-k", self.sockdir, "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200", "-c", "shared_buffers=32MB",
             "-c", "ssl=%s" % ("on" if self.ssl else "off")],
            preexec_fn=_demote, stdout=self.log_fh, stderr=subprocess.STDOUT,
            cwd="/", start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited: %s" % self.log())
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0 and \
                        self._ready():
                    return self
            time.sleep(0.1)
        raise RuntimeError("postgres did not start: %s" % self.log())

    def _ready(self):
        r = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-h", self.sockdir, "-p",
             str(self.port), "-U", "postgres", "-d", "postgres", "-Atc",
             "SELECT 1"], capture_output=True)
        return r.returncode == 0

    def log(self):
        try:
            with open(self.logfile, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def psql(self, sql, db=None):
        """Run sql through psql on the socket, as the superuser."""
        r = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-h", self.sockdir, "-p",
             str(self.port), "-U", "postgres", "-d", db or self.dbname,
             "-v", "ON_ERROR_STOP=1", "-qAt"],
            input=sql.encode(), capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("psql: %s" % r.stderr.decode(errors="replace"))
        return r.stdout.decode()

    def create_db(self):
        self.psql("CREATE DATABASE %s" % self.dbname, db="postgres")

    def conninfo(self, user, dbname=None, extra=""):
        return ("host=127.0.0.1 port=%d dbname=%s user=%s sslmode=disable "
                "gssencmode=disable%s" % (self.port, dbname or self.dbname,
                                          user, " " + extra if extra else ""))

    def stop(self, mode=signal.SIGINT):
        """SIGINT: PostgreSQL's fast shutdown (clients cut off)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, mode)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self.log_fh.close()

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _ids():
    pw = pwd.getpwnam(PG_USER)
    return pw.pw_uid, pw.pw_gid
