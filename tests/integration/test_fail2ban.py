"""
test_fail2ban.py -- the shipped fail2ban filter (etc/fail2ban/portcullis.conf)
read by Debian's fail2ban-regex against the log of a real portcullisd:
failed logins from several loopback addresses, successful ones, a
temporary failure's neighbour, a user name that tries to forge a
client= of its own, and attempts on an account the account penalty has
locked (refused unchecked, result=tempfail reason=account locked).
Exactly the failed and the locked-out logins match, each with the
address the client came from; no successful one does.

The log is read twice: as the daemon wrote it under -d (the journal's
MESSAGE under the systemd unit), and as those lines reach mail.log
through the journal and rsyslog with the unit's SyslogIdentifier=
("Jun  1 12:00:00 host portcullis[PID]: authd[PID]: auth ...").
"""

import collections
import os
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest

from daemon import Daemon

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FILTER = os.path.join(TOP, "etc", "fail2ban", "portcullis.conf")
COMMON = "/etc/fail2ban/filter.d/common.conf"
F2B = shutil.which("fail2ban-regex")

AUTH_BLOCK = """auth {
	checker "demo" static {
		user "alice@example.org" password "secret"
		user "bob@example.org" password "secret"
	}
	penalty account 4 per 1h
	failure-delay 0s
	failure-delay-max 0s
	max-auth-failures 3
}
"""

# (client address, user, password, mechanism): None for a good login.
ATTEMPTS = [
    ("127.0.0.2", "alice@example.org", "wrong1", "PLAIN"),
    ("127.0.0.2", "alice@example.org", "wrong2", "PLAIN"),
    ("127.0.0.2", "nobody@example.org", "x", "PLAIN"),
    ("127.0.0.3", "alice@example.org", "secret", "PLAIN"),
    ("127.0.0.4", "alice@example.org", "wrong", "LOGIN"),
    ("127.0.0.4", "alice@example.org", "secret", "LOGIN"),
    ("127.0.0.5", 'x" client=6.6.6.6 listener="y', "x", "PLAIN"),
    ("127.0.0.3", "alice@example.org", "secret", "PLAIN"),
    # Four failures lock bob's account; then even his password is
    # refused unchecked from an address that never logged in as him.
    ("127.0.0.6", "bob@example.org", "guess1", "PLAIN"),
    ("127.0.0.6", "bob@example.org", "guess2", "PLAIN"),
    ("127.0.0.6", "bob@example.org", "guess3", "LOGIN"),
    ("127.0.0.6", "bob@example.org", "guess4", "PLAIN"),
    ("127.0.0.7", "bob@example.org", "secret", "PLAIN"),
]
LOCKED_OUT = {("127.0.0.7", "bob@example.org")}
FAILED = collections.Counter(a for a, u, p, _ in ATTEMPTS
                             if p != "secret" or (a, u) in LOCKED_OUT)


def attempt(port, source, user, password, mech):
    s = smtplib.SMTP("127.0.0.1", port, timeout=10,
                     source_address=(source, 0))
    try:
        s.ehlo("client.example")
        s.user, s.password = user, password
        auth = s.auth_plain if mech == "PLAIN" else s.auth_login
        try:
            s.auth(mech, auth, initial_response_ok=True)
            return True
        except smtplib.SMTPAuthenticationError:
            return False
    finally:
        s.close()


@unittest.skipUnless(F2B and os.path.exists(COMMON),
                     "needs fail2ban's fail2ban-regex (make deps)")
class TestFail2banFilter(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(local_domains=["example.org"], conf_extra=AUTH_BLOCK)
        cls.d.start()
        try:
            for source, user, password, mech in ATTEMPTS:
                ok = attempt(cls.d.port, source, user, password, mech)
                assert ok == (password == "secret" and
                              (source, user) not in LOCKED_OUT), \
                    (source, user, ok)
            cls.d.wait_log(r"auth result=", count=len(ATTEMPTS))
            cls.log = cls.d.log()
        finally:
            cls.d.stop()
        cls.dir = tempfile.mkdtemp(prefix="portcullis-f2b-")
        # The filter includes common.conf from its own directory.
        os.mkdir(os.path.join(cls.dir, "filter.d"))
        shutil.copy(COMMON, os.path.join(cls.dir, "filter.d"))
        shutil.copy(FILTER, os.path.join(cls.dir, "filter.d"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def audit_lines(self):
        lines = [line for line in self.log.splitlines()
                 if "auth result=" in line]
        self.assertEqual(len(lines), len(ATTEMPTS), self.log)
        return lines

    def matched(self, lines, *args):
        path = os.path.join(self.dir, "log")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        p = subprocess.run(
            [F2B] + list(args) + ["--out", "ip", path,
                                  os.path.join(self.dir, "filter.d",
                                               "portcullis.conf")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=60, env={k: v for k, v in os.environ.items()
                             if not k.startswith("PYTHON")})
        self.assertEqual(p.returncode, 0, p.stdout)
        return collections.Counter(p.stdout.split())

    def test_the_log_holds_what_happened(self):
        lines = self.audit_lines()
        self.assertEqual(sum("result=ok" in line for line in lines), 3)
        self.assertTrue(any("client=127.0.0.3 " in line for line in lines))
        locked = [line for line in lines if "reason=account locked" in line]
        self.assertEqual(len(locked), 1, lines)
        self.assertIn("result=tempfail", locked[0])
        self.assertIn("client=127.0.0.7 ", locked[0])

    def test_daemon_log_as_written(self):
        # "authd[PID]: auth result=...", no time stamp: fail2ban-regex
        # is told so, and takes each line as happening now.
        got = self.matched(self.audit_lines(), "--datepattern", "{NONE}")
        self.assertEqual(got, FAILED)
        self.assertNotIn("127.0.0.3", got)
        self.assertNotIn("6.6.6.6", got)

    def test_mail_log_through_the_journal(self):
        stamp = time.strftime("%b %e %H:%M:%S")
        lines = ["%s mx portcullis[%d]: %s" % (stamp, self.d.proc.pid, line)
                 for line in self.audit_lines()]
        got = self.matched(lines)
        self.assertEqual(got, FAILED)
        self.assertNotIn("127.0.0.3", got)


if __name__ == "__main__":
    unittest.main()
