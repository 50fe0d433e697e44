"""
test_sql.py -- the sql checker against a real PostgreSQL (Debian's
postgresql-15, started once for the module by pgserver.py), in the
shape PostfixAdmin gives its database: a mailbox table (username,
password, active) and an alias table for the sending addresses.

The hashes are written by Dovecot's own `doveadm pw` ({SHA512-CRYPT},
{BLF-CRYPT}, {ARGON2ID}, {SSHA512}) and by authctl (bare yescrypt), as
a web panel would store them.  Outages are real: the server restarted
under load, a server that accepts and never answers, a closed port as
the first host of a multi-host conninfo.
"""

import base64
import os
import re
import shutil
import smtplib
import socket
import subprocess
import threading
import time
import unittest

from daemon import AUTH_USER, BUILD, Daemon, base_env, free_port
import pgserver

AUTHCTL = os.path.join(BUILD, "authctl")
PG = None
SKIP = None
DB_PASSWORD = "db-Secret-9"

# login -> (password, stored form); hashed in setUpModule
USERS = {
    "sha512@example.org": ("pw-sha512", "SHA512-CRYPT"),
    "blf@example.org": ("pw-blf", "BLF-CRYPT"),
    "argon@example.org": ("pw-argon", "ARGON2ID"),
    "ssha@example.org": ("pw-ssha", "SSHA512"),
    "yes@example.org": ("pw-yes", "yescrypt"),
    "o'brien@example.org": ("pw-'quote\"", "SHA512-CRYPT"),
    "off@example.org": ("pw-off", "SHA512-CRYPT"),
}


def doveadm_pw(scheme, password):
    r = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password],
                       capture_output=True, check=True)
    return r.stdout.decode().strip()


def authctl_hash(scheme, password):
    r = subprocess.run([AUTHCTL, "hash", "-s", scheme, "--password-stdin"],
                       input=(password + "\n").encode(), capture_output=True,
                       check=True, env=base_env())
    return r.stdout.decode().strip()


def sql_quote(s):
    return "'" + s.replace("'", "''") + "'"


def setUpModule():
    global PG, SKIP
    SKIP = pgserver.missing()
    if SKIP is None and shutil.which("doveadm") is None:
        SKIP = "doveadm not found (Debian dovecot-core)"
    if SKIP is not None:
        return
    PG = pgserver.PgServer(ssl=True).start()
    PG.create_db()
    rows = []
    for user, (pw, scheme) in USERS.items():
        stored = (authctl_hash(scheme, pw) if scheme == "yescrypt"
                  else doveadm_pw(scheme, pw))
        rows.append("(%s, %s, %s)" % (sql_quote(user), sql_quote(stored),
                                      "false" if user.startswith("off")
                                      else "true"))
    PG.psql("""
CREATE ROLE portcullis LOGIN PASSWORD %s;
CREATE TABLE mailbox (username varchar(255) PRIMARY KEY,
    password varchar(255) NOT NULL, name varchar(255) DEFAULT '',
    active boolean NOT NULL DEFAULT true);
CREATE TABLE alias (address varchar(255) PRIMARY KEY,
    goto text NOT NULL, active boolean NOT NULL DEFAULT true);
INSERT INTO mailbox (username, password, active) VALUES %s;
INSERT INTO alias VALUES ('sales@example.org', 'sha512@example.org', true),
    ('old@example.org', 'sha512@example.org', false),
    ('info@other.example', 'sha512@example.org,blf@example.org', true);
GRANT SELECT ON mailbox, alias TO portcullis;
""" % (sql_quote(DB_PASSWORD), ", ".join(rows)))


def tearDownModule():
    if PG is not None:
        PG.cleanup()


# PostfixAdmin's tables, as portcullis.conf(5) shows them.
QUERY = ("SELECT username, password, active FROM mailbox "
         "WHERE username = $1")
ADDRESS_QUERY = ("SELECT address FROM alias WHERE active AND "
                 "$1 = ANY(string_to_array(goto, ','))")
ARRAY_QUERY = ("SELECT username, password, active, ARRAY(SELECT address "
               "FROM alias WHERE active AND username = ANY("
               "string_to_array(goto, ','))) AS addrs FROM mailbox "
               "WHERE username = $1")


def sql_block(d, conninfo, extra="", cache=True, array=False,
              timeout="1s"):
    secret = os.path.join(d.dir, "sql.pass")
    with open(secret, "w") as f:
        f.write(DB_PASSWORD + "\n")
    os.chmod(secret, 0o600)
    text = 'auth {\n\tchecker "local" lmdb "%s/db"\n' % d.dir
    if cache:
        text += ('\tchecker "cache" cache "%s/cache" {\n\t\tttl 1s\n'
                 '\t\tstale-if-error 1h\n\t}\n' % d.dir)
    text += ('\tchecker "db" sql {\n'
             '\t\tconninfo "%s"\n'
             '\t\tpassword-file "%s"\n'
             '\t\tquery "%s"\n'
             '\t\tuser-column username\n'
             '\t\tenabled-column active\n'
             '%s'
             '\t\ttimeout %s\n'
             '\t\tstatement-timeout 500ms\n'
             '\t\tconnections 4\n'
             '%s'
             '\t}\n'
             '\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n'
             % (conninfo, secret, ARRAY_QUERY if array else QUERY,
                '\t\taddresses-column addrs\n' if array else
                '\t\taddress-query "%s"\n' % ADDRESS_QUERY, timeout,
                extra))
    return text


def start_daemon(conninfo, **kw):
    d = Daemon(local_domains=["example.org"])
    d.conf_extra = sql_block(d, conninfo, **kw)
    d.write_conf()
    d.start()
    return d


def login(port, user, password, timeout=15):
    """AUTH PLAIN in a fresh session: the reply code."""
    s = smtplib.SMTP("127.0.0.1", port, timeout=timeout)
    try:
        s.ehlo("client.example")
        msg = base64.b64encode(b"\0" + user.encode() + b"\0" +
                               password.encode()).decode()
        return s.docmd("AUTH", "PLAIN " + msg)[0]
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def timed_login(port, user, password):
    t0 = time.monotonic()
    code = login(port, user, password)
    return code, time.monotonic() - t0


def authctl(d, *args, stdin=None):
    p = subprocess.run([AUTHCTL, "-f", d.conf] + list(args),
                       input=stdin.encode() if stdin else None,
                       capture_output=True, env=base_env(), timeout=30)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def add_local_user(d, name, password):
    rc, out, err = authctl(d, "user", "add", "-s", "sha512",
                           "--password-stdin", name, stdin=password + "\n")
    if rc != 0:
        raise AssertionError(err)
    # authd reads the store as its own user
    subprocess.run(["chown", "-R", AUTH_USER, os.path.join(d.dir, "db")],
                   check=True)


class SqlBase(unittest.TestCase):
    array = False
    cache = True

    @classmethod
    def setUpClass(cls):
        if SKIP is not None:
            raise unittest.SkipTest(SKIP)
        cls.d = start_daemon(cls.conninfo(), array=cls.array,
                             cache=cls.cache)
        cls.d.wait_log(r"sql db: connected to", count=4)

    @classmethod
    def conninfo(cls):
        # PostgreSQL's Unix socket, libpq's defaults otherwise
        return "host=%s port=%d dbname=%s user=portcullis" % (
            PG.sockdir, PG.port, PG.dbname)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "d", None) is None:
            return
        log = cls.d.log()
        cls.d.stop()
        # libpq's calls fit authd's seccomp allow-list
        if "killed by" in log:
            raise AssertionError("a child died:\n" + log[-3000:])

    def setUp(self):
        if PG.proc is None:
            PG.start()


class TestSql(SqlBase):
    def test_each_hash_format(self):
        """Dovecot's {SCHEME} forms and a bare crypt string, each."""
        for user in ("sha512@example.org", "blf@example.org",
                     "argon@example.org", "ssha@example.org",
                     "yes@example.org"):
            pw = USERS[user][0]
            self.assertEqual(login(self.d.port, user, pw), 235, user)
            self.assertEqual(login(self.d.port, user, pw + "x"), 535, user)
        self.assertEqual(login(self.d.port, "nobody@example.org", "x"), 535)
        log = self.d.log()
        self.assertIn('user="nobody@example.org" mech=PLAIN checker=none', log)
        self.assertRegex(log, r"auth result=ok user=\"argon@example.org\" "
                         r"mech=PLAIN checker=db")

    def test_sql_metacharacters_are_data(self):
        """The login is a bound parameter: quotes and semicolons are
        part of a name, never SQL."""
        user = "o'brien@example.org"
        self.assertEqual(login(self.d.port, user, USERS[user][0]), 235)
        for evil in ("' OR '1'='1", "x' OR '1'='1' --",
                     "a@example.org'; DELETE FROM mailbox; --",
                     "\\'; SELECT pg_sleep(5); --", "%", "_"):
            self.assertEqual(login(self.d.port, evil, "pw-sha512"), 535,
                             evil)
            self.assertEqual(login(self.d.port, evil, "' OR '1'='1"), 535,
                             evil)
        # A NUL inside the login cannot even reach the database.
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        s.ehlo("client.example")
        msg = base64.b64encode(b"\0sha512@example.org\0x\0pw-sha512")
        self.assertIn(s.docmd("AUTH", "PLAIN " + msg.decode())[0],
                      (501, 535))
        s.close()
        # Bytes that are no UTF-8: no such user, not an outage.
        self.assertEqual(login(self.d.port, "caf\udce9@example.org"
                               .encode("utf-8", "surrogateescape")
                               .decode("latin-1"), "x"), 535)
        self.assertEqual(PG.psql("SELECT count(*) FROM mailbox").strip(),
                         str(len(USERS)))
        self.assertEqual(login(self.d.port, "sha512@example.org",
                               "pw-sha512"), 235)

    def test_disabled_user(self):
        self.assertEqual(login(self.d.port, "off@example.org", "pw-off"), 535)
        self.assertRegex(self.d.log(), r'auth result=fail '
                         r'user="off@example.org".*reason=disabled')

    def test_sending_addresses_from_the_database(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        try:
            s.ehlo("client.example")
            s.login("sha512@example.org", "pw-sha512")
            for sender, code in (("sha512@example.org", 250),
                                 ("sales@example.org", 250),
                                 ("info@other.example", 250),
                                 ("old@example.org", 553),
                                 ("blf@example.org", 553)):
                self.assertEqual(s.mail(sender)[0], code, sender)
                s.rset()
        finally:
            s.close()

    def test_stats_per_host(self):
        deadline = time.monotonic() + 10
        while True:	# the connections may be on their way back
            rc, out, err = authctl(self.d, "stats")
            self.assertEqual(rc, 0, err)
            if "db: 4/4" in out or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertRegex(out, r"db: 4/4 connections up.*%s:%d "
                         r"ok=\d+ fail=\d+ tempfail=\d+ reconnects=[1-9]"
                         % (re.escape(PG.sockdir), PG.port))

    def test_connections_killed_by_the_server_are_made_again(self):
        """The server ends the checker's sessions (an administrator, a
        failover): the next logins are answered, not tempfailed."""
        self.assertEqual(login(self.d.port, "yes@example.org", "nope"), 535)
        PG.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE usename = 'portcullis'")
        for _ in range(6):
            self.assertEqual(login(self.d.port, "yes@example.org", "nope"),
                             535)

    def test_stale_if_error_through_the_cache(self):
        """The cache remembers the database's yes; with the database
        down and the entry expired, the stale entry answers."""
        user = "ssha@example.org"
        self.assertEqual(login(self.d.port, user, "pw-ssha"), 235)
        time.sleep(1.2)		# past ttl 1s
        PG.stop()
        try:
            since = self.d.log_offset()
            self.assertEqual(login(self.d.port, user, "pw-ssha"), 235)
            self.d.wait_log(r'auth result=ok user="%s".*checker=cache '
                            r'stale=yes' % re.escape(user), since=since)
            # Never said yes, so not in the cache: the outage shows.
            self.assertEqual(login(self.d.port, "off@example.org",
                                   "pw-off"), 454)
        finally:
            PG.start()

    def test_restart_under_load(self):
        """The primary restarts while logins go on: the database's
        logins tempfail, then succeed again; lmdb logins never wait."""
        add_local_user(self.d, "loc@example.org", "pw-loc")
        stop = threading.Event()
        sql_codes, local_times = [], []

        def sql_load():
            while not stop.is_set():
                # a wrong password: never answered by the cache
                sql_codes.append((time.monotonic(), login(
                    self.d.port, "sha512@example.org", "wrong")))

        def local_load():
            while not stop.is_set():
                code, t = timed_login(self.d.port, "loc@example.org",
                                      "pw-loc")
                local_times.append((code, t))
                time.sleep(0.02)

        threads = [threading.Thread(target=sql_load) for _ in range(3)]
        threads.append(threading.Thread(target=local_load))
        for t in threads:
            t.start()
        try:
            time.sleep(0.5)
            PG.stop()
            time.sleep(0.8)
            restarted = time.monotonic()
            PG.start()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if any(t > restarted + 0.2 and c == 535
                       for t, c in sql_codes[-5:]):
                    break
                time.sleep(0.1)
            time.sleep(0.3)
        finally:
            stop.set()
            for t in threads:
                t.join()
        codes = [c for _, c in sql_codes]
        self.assertIn(454, codes)
        self.assertEqual(codes[-1], 535, codes[-20:])
        self.assertEqual(set(codes) - {454, 535}, set())
        self.assertTrue(local_times)
        self.assertEqual({c for c, _ in local_times}, {235})
        # authd's own time for each (the client's also holds a loaded
        # machine's scheduling and TCP retransmissions)
        ms = [int(m) for m in re.findall(
            r'auth result=ok user="loc@example.org".* ms=(\d+)',
            self.d.log())]
        self.assertGreaterEqual(len(ms), len(local_times))
        self.assertLess(max(ms), 500, ms)
        self.assertLess(sorted(t for _, t in local_times)[
            len(local_times) // 2], 0.5, local_times)
        self.assertEqual(login(self.d.port, "blf@example.org", "pw-blf"), 235)


class TestFailover(SqlBase):
    """The first host of the conninfo refuses connections; libpq goes
    on to the next one.  The addresses come from a text[] column.
    No cache: authctl test asks the database."""
    array = True
    cache = False

    @classmethod
    def conninfo(cls):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        # TCP, with libpq's default sslmode (prefer: TLS, as the server
        # offers it) and the password from password-file (scram-sha-256)
        return ("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s "
                "user=portcullis target_session_attrs=read-write"
                % (closed, PG.port, PG.dbname))

    def test_second_host_answers(self):
        self.assertEqual(login(self.d.port, "sha512@example.org",
                               "pw-sha512"), 235)
        rc, out, err = authctl(self.d, "stats")
        self.assertRegex(out, r"127\.0\.0\.1:%d ok=[1-9]" % PG.port)
        # the TLS handshake ran inside authd's sandbox
        self.assertNotEqual(PG.psql(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity "
            "USING (pid) WHERE usename = 'portcullis' AND ssl").strip(), "0")

    def test_addresses_from_an_array_column(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        try:
            s.ehlo("client.example")
            s.login("blf@example.org", "pw-blf")
            self.assertEqual(s.mail("info@other.example")[0], 250)
            s.rset()
            self.assertEqual(s.mail("sales@example.org")[0], 553)
        finally:
            s.close()
        rc, out, err = authctl(self.d, "test", "sha512@example.org",
                               "--password-stdin", stdin="pw-sha512\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("ok: sha512@example.org by checker db", out)
        self.assertIn("  may send as sales@example.org", out)
        self.assertIn("  may send as info@other.example", out)


    def test_reload_replaces_the_pool(self):
        """A reload makes a new pool; the old one's connections close
        once no login uses them."""
        since = self.d.log_offset()
        rc, out, err = authctl(self.d, "reload")
        self.assertEqual(rc, 0, err)
        self.d.wait_log(r"sql db: connected to", count=4, since=since)
        self.assertEqual(login(self.d.port, "blf@example.org", "pw-blf"), 235)
        deadline = time.monotonic() + 10
        while True:
            n = int(PG.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                            "usename = 'portcullis'").strip())
            if n == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(n, 4)


class HungServer:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.held = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


class TestHung(SqlBase):
    @classmethod
    def setUpClass(cls):
        if SKIP is not None:
            raise unittest.SkipTest(SKIP)
        cls.hung = HungServer()
        cls.d = start_daemon("host=127.0.0.1 port=%d dbname=mail "
                             "user=portcullis sslmode=disable "
                             "gssencmode=disable" % cls.hung.port,
                             cache=False, timeout="2s")

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hung.close()

    def test_hung_server_tempfails_and_lmdb_goes_on(self):
        add_local_user(self.d, "loc@example.org", "pw-loc")
        results = []

        def sql_login():
            results.append(timed_login(self.d.port, "sha512@example.org",
                                       "pw-sha512"))
        threads = [threading.Thread(target=sql_login) for _ in range(6)]
        for t in threads:
            t.start()
        # Past the lmdb checker, whose dummy hashes for these unknown
        # users hold the hash pool a moment: now they wait on the sql one.
        time.sleep(0.7)
        local = [timed_login(self.d.port, "loc@example.org", "pw-loc")
                 for _ in range(10)]
        for t in threads:
            t.join()
        self.assertEqual({c for c, _ in local}, {235})
        # authd's own time for each, from its audit line: the client's
        # figure also holds a loaded machine's scheduling
        ms = [int(m) for m in re.findall(
            r'auth result=ok user="loc@example.org".* ms=(\d+)',
            self.d.log())]
        self.assertEqual(len(ms), len(local))
        self.assertLess(max(ms), 300, (ms, local))
        self.assertLess(sorted(t for _, t in local)[len(local) // 2], 0.5,
                        local)
        self.assertEqual({c for c, _ in results}, {454})
        # timeout 2s, and a little for a loaded machine
        self.assertLess(max(t for _, t in results), 3.5, results)
        self.assertRegex(self.d.log(), r"reason=database (timeout|"
                         r"unreachable)")


if __name__ == "__main__":
    unittest.main()
