"""
test_ldap.py -- the ldap checker end to end, against real OpenLDAP
servers (Debian's slapd, see slapd.py): a provider with TLS and a
syncrepl consumer replicating from it, started once for the module.

Covered: both password methods (the user's own bind, the password
attribute verified by portcullis) and each hash scheme ({CRYPT}, {SSHA},
{SSHA512}, {ARGON2}); ldaps:// and StartTLS with the test CA, and a CA
that does not match (tempfail, logged, never ok); logins that try to
widen the filter, checked in slapd's own log; two entries for a login;
a disabled account; failover to the consumer; a user added on the
provider logging in through the consumer; every directory down (454
within the timeout); a directory that accepts and never answers, while
lmdb users log in at full speed; the directory's sending addresses on
MAIL FROM; the cache answering (stale-if-error) while the directory
hangs; authctl test and stats.
"""

import os
import re
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest

from daemon import Daemon, free_port
import oauth_server
import slapd
from slapd import Slapd
from test_oauth import add_local_user, authctl, login_password

TMP = None
PROV = None
CONS = None
CA = None
BAD_CA = None
SKIP = None

SCHEMES = {"bob": "{CRYPT}", "alice": "{SSHA}", "carol": "{SSHA512}",
           "dave": "{ARGON2}"}


def pw(uid):
    return "pw-" + uid


def setUpModule():
    global TMP, PROV, CONS, CA, BAD_CA, SKIP
    if not slapd.have_slapd():
        SKIP = "slapd, slapadd or ldap-utils are not installed"
        return
    TMP = tempfile.mkdtemp(prefix="ldap-test-")
    os.chmod(TMP, 0o755)
    os.makedirs(os.path.join(TMP, "ca"))
    os.makedirs(os.path.join(TMP, "bad"))
    CA, cert, key = oauth_server.make_ca_and_cert(os.path.join(TMP, "ca"))
    BAD_CA = oauth_server.make_ca_and_cert(os.path.join(TMP, "bad"))[0]
    for f in (CA, BAD_CA):
        os.chmod(f, 0o644)
    for d in ("ca", "bad"):
        os.chmod(os.path.join(TMP, d), 0o755)
    users = [slapd.user_ldif(u, slapd.slappasswd(s, pw(u)),
                             mail=["%s@example.org" % u])
             for u, s in SCHEMES.items()]
    users[1] = slapd.user_ldif(
        "alice", slapd.slappasswd("{SSHA}", pw("alice")),
        mail=["alice@example.org", "a.smith@example.org"])
    for rdn in ("cn=twin-a", "cn=twin-b"):
        users.append("dn: %s,ou=people,%s\nobjectClass: inetOrgPerson\n"
                     "uid: twin\ncn: twin\nsn: twin\nuserPassword: %s\n\n"
                     % (rdn, slapd.SUFFIX,
                        slapd.slappasswd("{SSHA}", pw("twin"))))
    users.append(slapd.user_ldif(
        "eve", slapd.slappasswd("{SSHA}", pw("eve")),
        extra=["employeeType: disabled"]))
    PROV = Slapd(TMP, "prov", provider=True, tls=(CA, cert, key))
    PROV.start(users)
    CONS = Slapd(TMP, "cons", consumer_of=PROV).start()
    wait_replicated("(uid=dave)")


def tearDownModule():
    for s in (CONS, PROV):
        if s is not None:
            s.stop()
    if TMP is not None:
        shutil.rmtree(TMP, ignore_errors=True)


def wait_replicated(filt, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if "dn:" in CONS.search(filt):
            return
        time.sleep(0.1)
    raise AssertionError("%s did not reach the consumer" % filt)


def dead_url():
    """A loopback port nobody listens on: connection refused."""
    return "ldap://127.0.0.1:%d" % free_port()


class HungServer:
    """Accepts TCP connections and never says a word."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "ldap://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        self.stopping = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.stopping = True
        self.sock.close()
        for c in self.conns:
            c.close()


def ldap_block(d, urls, method="bind", extra="", service=True,
               cache=None, local=True, name="dir", timeout="2s"):
    text = "auth {\n"
    if local:
        text += '\tchecker "local" lmdb "%s/db"\n' % d.dir
    if cache:
        text += ('\tchecker "cache" cache "%s/cache" {\n\t\t%s\n\t}\n'
                 % (d.dir, "\n\t\t".join(cache.split(";"))))
    text += ('\tchecker "%s" ldap {\n\t\turl %s\n'
             '\t\tbase "ou=people,%s"\n\t\tpassword %s\n'
             '\t\ttimeout %s\n\t\tconnections 4\n'
             '\t\tdisabled-filter "(employeeType=disabled)"\n'
             % (name, " ".join(urls), slapd.SUFFIX, method, timeout))
    if service:
        secret = os.path.join(d.dir, "ldap.secret")
        with open(secret, "w") as f:
            f.write(slapd.READER_PW + "\n")
        os.chmod(secret, 0o600)
        text += ('\t\tbind-dn "%s"\n\t\tbind-password-file "%s"\n'
                 % (slapd.READER_DN, secret))
    text += extra + "\t}\n"
    text += "\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
    return text


def start(urls, **kw):
    d = Daemon(local_domains=["example.org"])
    d.conf_extra = ldap_block(d, urls, **kw)
    d.write_conf()
    d.start()
    return d


def timed_login(d, user, password):
    t0 = time.monotonic()
    code = login_password(d.port, user, password)
    return code, time.monotonic() - t0


def audit(d, since, user):
    return [l for l in d.log()[since:].splitlines()
            if "auth result=" in l and 'user="%s"' % user in l]


class LdapCase(unittest.TestCase):
    urls = None
    method = "bind"
    extra = ""

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.d = start(cls.urls or [PROV.url], method=cls.method,
                      extra=cls.extra)

    @classmethod
    def tearDownClass(cls):
        if not SKIP:
            cls.d.stop()


class TestBind(LdapCase):
    """password bind: the directory checks the password."""

    def test_each_scheme_wrong_and_unknown(self):
        for u in SCHEMES:
            self.assertEqual(login_password(self.d.port, u, pw(u)), 235, u)
            self.assertEqual(login_password(self.d.port, u, "nope"), 535,
                             u)
        since = self.d.log_offset()
        self.assertEqual(login_password(self.d.port, "nobody", "x"), 535)
        self.assertIn("reason=unknown user", audit(self.d, since,
                                                    "nobody")[0])

    def test_filter_injection_never_widens_the_search(self):
        since = PROV.log_offset()
        for login in ("*", "a*)(uid=*", "alice)(uid=*", "al*",
                      "x" * 200, "\\2a", "alice\\00"):
            self.assertEqual(login_password(self.d.port, login, "pw-alice"),
                             535, login)
        time.sleep(0.2)
        filters = PROV.filters_seen(since)
        self.assertTrue(filters)
        for f in filters:
            # one equality assertion on uid, whatever the login held
            self.assertTrue(f.startswith("(uid=") and f.endswith(")"), f)
            self.assertNotIn("*", f[5:-1], f)
            self.assertNotIn("(", f[5:-1], f)
            self.assertNotIn(")", f[5:-1], f)
        # a NUL cannot even reach authd in PLAIN; the unit test covers it

    def test_two_entries_refused(self):
        since = self.d.log_offset()
        self.assertEqual(login_password(self.d.port, "twin", pw("twin")), 535)
        self.assertIn("reason=several entries", audit(self.d, since,
                                                       "twin")[0])

    def test_disabled_refused(self):
        since = self.d.log_offset()
        self.assertEqual(login_password(self.d.port, "eve", pw("eve")), 535)
        self.assertIn("reason=disabled", audit(self.d, since, "eve")[0])

    def test_sending_addresses_from_the_directory(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        try:
            s.ehlo("client.example")
            s.login("alice", pw("alice"))
            for sender, code in (("alice@example.org", 250),
                                 ("a.smith@example.org", 250),
                                 ("bob@example.org", 553)):
                self.assertEqual(s.mail(sender)[0], code, sender)
                s.rset()
        finally:
            s.close()

    def test_authctl_test_and_stats(self):
        since = self.d.log_offset()
        rc, out, err = authctl(self.d, "test", "alice", "--password-stdin",
                               stdin=pw("alice") + "\n")
        self.assertEqual(rc, 0, err)
        self.assertIn("dir", out)
        self.assertIn("may send as a.smith@example.org", out)
        self.d.wait_log(r'checker dir: user="alice" '
                        r'dn="uid=alice,ou=people,dc=example,dc=org"',
                        since=since)
        rc, out, err = authctl(self.d, "stats")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"%s ok=\d+ fail=\d+ tempfail=\d+ "
                         r"reconnects=\d+" % PROV.url)


    def test_reload_keeps_logging_in(self):
        """A reload retires the checker's pool and starts a new one."""
        rc, out, err = authctl(self.d, "reload")
        self.assertEqual(rc, 0, err)
        self.d.wait_log(r"configuration reloaded")
        for _ in range(3):
            self.assertEqual(login_password(self.d.port, "bob", pw("bob")),
                             235)


class TestConnections(LdapCase):
    """password bind keeps two connections a thread: the search's stays
    bound as the service, the users' binds go on the other."""

    def test_a_login_is_a_search_and_a_bind(self):
        for _ in range(8):
            self.assertEqual(login_password(self.d.port, "alice",
                                            pw("alice")), 235)
        since = PROV.log_offset()
        for _ in range(10):
            self.assertEqual(login_password(self.d.port, "alice",
                                            pw("alice")), 235)
        lines = PROV.log()[since:].splitlines()
        conn = re.compile(r"\bconn=(\d+) ")
        opened = {conn.search(l).group(1) for l in lines
                  if " ACCEPT " in l and conn.search(l)}
        # A connection opened meanwhile binds as the service once; a
        # kept one never again.
        service = [l for l in lines
                   if 'BIND dn="%s"' % slapd.READER_DN in l and
                   conn.search(l) and conn.search(l).group(1) not in opened]
        self.assertEqual(service, [])
        # slapd logs a bind twice: the request (method=) and its result.
        users = [l for l in lines
                 if 'BIND dn="uid=alice,ou=people,%s" method=' % slapd.SUFFIX
                 in l]
        self.assertEqual(len(users), 10, users)

    def test_kept_connections_replaced_after_a_restart(self):
        self.assertEqual(login_password(self.d.port, "bob", pw("bob")), 235)
        PROV.stop()
        PROV.restart()
        for u in ("bob", "alice"):
            self.assertEqual(login_password(self.d.port, u, pw(u)), 235, u)
        self.assertEqual(login_password(self.d.port, "bob", "nope"), 535)
        rc, out, err = authctl(self.d, "stats")
        self.assertEqual(rc, 0, err)
        m = re.search(r"%s ok=\d+ fail=\d+ tempfail=(\d+) reconnects=(\d+)"
                      % re.escape(PROV.url), out)
        self.assertIsNotNone(m, out)
        self.assertEqual(m.group(1), "0", out)
        self.assertGreaterEqual(int(m.group(2)), 1, out)


class TestAttribute(LdapCase):
    """password attribute: portcullis verifies userPassword itself."""
    method = "attribute"

    def test_each_scheme(self):
        for u, scheme in SCHEMES.items():
            self.assertEqual(login_password(self.d.port, u, pw(u)), 235,
                             scheme)
            self.assertEqual(login_password(self.d.port, u, "nope"), 535,
                             scheme)

    def test_unknown_costs_a_hash(self):
        """An unknown user is verified against the dummy hash: it takes
        about as long as a wrong password (not a tenth of it)."""
        for _ in range(2):
            timed_login(self.d, "dave", "nope")
        wrong = min(timed_login(self.d, "dave", "nope")[1] for _ in range(3))
        unknown = min(timed_login(self.d, "nobody", "nope")[1]
                      for _ in range(3))
        self.assertGreater(unknown, wrong * 0.3, (unknown, wrong))


class TestLdaps(LdapCase):
    urls = None

    @classmethod
    def setUpClass(cls):
        cls.urls = [PROV.ldaps_url] if PROV else None
        cls.extra = '\t\tca-file "%s"\n' % CA
        super().setUpClass()

    def test_ldaps_with_the_ca(self):
        self.assertEqual(login_password(self.d.port, "alice", pw("alice")),
                         235)


class TestStartTLS(LdapCase):
    @classmethod
    def setUpClass(cls):
        cls.extra = '\t\tstarttls yes\n\t\tca-file "%s"\n' % CA
        super().setUpClass()

    def test_starttls_with_the_ca(self):
        self.assertEqual(login_password(self.d.port, "bob", pw("bob")), 235)


class TestLdapi(LdapCase):
    """ldapi://: the directory's local socket, the path percent-encoded."""

    @classmethod
    def setUpClass(cls):
        cls.urls = [PROV.ldapi_url] if PROV else None
        super().setUpClass()

    def test_ldapi(self):
        self.assertEqual(login_password(self.d.port, "carol", pw("carol")),
                         235)


class TestWrongCA(unittest.TestCase):
    """A directory whose certificate our CA did not sign: never ok."""

    def test_ldaps_and_starttls_tempfail(self):
        if SKIP:
            self.skipTest(SKIP)
        for urls, extra in (([PROV.ldaps_url], ""),
                            ([PROV.url], "\t\tstarttls yes\n")):
            d = start(urls, extra=extra + '\t\tca-file "%s"\n' % BAD_CA,
                      local=False)
            try:
                code, took = timed_login(d, "alice", pw("alice"))
                self.assertEqual(code, 454, urls)
                self.assertLess(took, 4.0)
                d.wait_log(r"checker dir: .*(StartTLS failed|"
                           r"service bind)")
            finally:
                d.stop()


class TestReplicated(LdapCase):
    """Failover: the first URL refuses connections, the consumer answers."""

    @classmethod
    def setUpClass(cls):
        cls.urls = [dead_url(), CONS.url] if CONS else None
        super().setUpClass()

    def test_failover_to_the_consumer(self):
        self.assertEqual(login_password(self.d.port, "carol", pw("carol")),
                         235)

    def test_user_added_on_the_provider(self):
        PROV.ldapmodify(slapd.user_ldif(
            "frank", slapd.slappasswd("{SSHA}", pw("frank"))))
        wait_replicated("(uid=frank)")
        self.assertEqual(login_password(self.d.port, "frank", pw("frank")),
                         235)


class TestDown(unittest.TestCase):
    def test_both_down_454_within_the_timeout(self):
        if SKIP:
            self.skipTest(SKIP)
        d = start([dead_url(), dead_url()], timeout="1s", local=False)
        try:
            code, took = timed_login(d, "alice", pw("alice"))
            self.assertEqual(code, 454)
            self.assertLess(took, 1.8)
        finally:
            d.stop()


class TestHung(unittest.TestCase):
    """A directory that accepts and never answers holds its own logins,
    not the others': lmdb users log in at full speed meanwhile."""

    def test_hung_directory(self):
        if SKIP:
            self.skipTest(SKIP)
        hung = HungServer()
        d = start([hung.url], timeout="1s")
        try:
            add_local_user(d, "local@example.org", "pw-local")
            base = [timed_login(d, "local@example.org", "pw-local")[1]
                    for _ in range(10)]
            results = []

            def ldap_login():
                results.append(timed_login(d, "alice", pw("alice")))
            ts = [threading.Thread(target=ldap_login) for _ in range(8)]
            for t in ts:
                t.start()
            time.sleep(0.1)
            during = [timed_login(d, "local@example.org", "pw-local")
                      for _ in range(10)]
            for t in ts:
                t.join()
            self.assertTrue(all(c == 235 for c, _ in during))
            # full speed: the lmdb logins do not wait for the directory
            self.assertLess(max(t for _, t in during),
                            max(base) + 0.25, (during, base))
            for code, took in results:
                self.assertEqual(code, 454)
                self.assertLess(took, 1.8)
        finally:
            d.stop()
            hung.close()


class TestCacheStale(unittest.TestCase):
    """With the cache in front, a user who logged in recently still gets
    in, with the directory's addresses, while the directory hangs."""

    def test_stale_if_error(self):
        if SKIP:
            self.skipTest(SKIP)
        d = start([CONS.url], timeout="1s", local=False,
                  cache="ttl 1s;stale-if-error 1h")
        try:
            self.assertEqual(login_password(d.port, "alice", pw("alice")),
                             235)
            # a hit: answered by the cache, with the addresses
            since = d.log_offset()
            self.assertEqual(login_password(d.port, "alice", pw("alice")),
                             235)
            self.assertIn("checker=cache", audit(d, since, "alice")[0])
            time.sleep(1.2)
            CONS.stop_process()
            try:
                since = d.log_offset()
                s = smtplib.SMTP("127.0.0.1", d.port, timeout=10)
                try:
                    s.ehlo("client.example")
                    s.login("alice", pw("alice"))
                    self.assertEqual(s.mail("a.smith@example.org")[0], 250)
                finally:
                    s.close()
                self.assertIn("stale=yes", audit(d, since, "alice")[0])
                # a wrong password is not let in by the stale entry
                self.assertEqual(login_password(d.port, "alice", "nope"),
                                 454)
            finally:
                CONS.cont()
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
