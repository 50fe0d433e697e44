"""
test_testssl.py -- what an administrator checking a server from outside
sees: Debian's testssl.sh against a running portcullisd, over STARTTLS
(SMTP) and implicit TLS, reports session resumption by tickets
(master's shared, rotating ticket keys, master/tickets.c) and the
ticket lifetime portcullis.conf gives.  One run of its server-defaults
checks (-S) per listener, about 20 s each.
"""

import re
import shutil
import subprocess
import unittest

from daemon import Daemon

TESTSSL = shutil.which("testssl") or shutil.which("testssl.sh")


def testssl(*args):
    p = subprocess.run([TESTSSL, "--quiet", "--color", "0", "--warnings",
                        "off", "-S"] + list(args),
                       capture_output=True, text=True, timeout=300)
    return p.stdout + p.stderr


@unittest.skipUnless(TESTSSL, "needs testssl.sh (scripts/deps.sh "
                     "installs it)")
class TestTestssl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(workers=4, listen="tls", listeners={"smtps": "smtps"},
                       conf_extra="tls-ticket-lifetime 2h\n")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def check(self, out):
        self.assertRegex(out, r"Session Resumption\s+Tickets: yes", out)
        self.assertRegex(out, r'"session ticket/#35"', out)
        # RFC 5077 3.3's lifetime hint is tls-ticket-lifetime.
        self.assertRegex(out, r"Session Ticket RFC 5077 hint\s+7200 "
                         r"seconds", out)

    def test_starttls_smtp(self):
        out = testssl("--starttls", "smtp",
                      "127.0.0.1:%d" % self.d.ports["main"])
        print("\n    " + "\n    ".join(
            line.strip() for line in out.splitlines()
            if re.search(r"Session (Resumption|Ticket)", line)))
        self.check(out)

    def test_implicit_tls(self):
        self.check(testssl("127.0.0.1:%d" % self.d.ports["smtps"]))


if __name__ == "__main__":
    unittest.main()
