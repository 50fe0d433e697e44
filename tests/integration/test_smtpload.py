"""
test_smtpload.py -- the benchmark's load generator against the real
daemon: what it counts must be what happened, and a wrong reply must
never pass for a success.
"""

import json
import os
import subprocess
import unittest

from daemon import BUILD, Daemon

SMTPLOAD = os.path.join(BUILD, "smtpload")

AUTH_BLOCK = """auth {
	checker "demo" static {
		user "u1@example.org" password "p1"
	}
	failure-delay 0s
	max-auth-failures 100
}
"""


class TestSmtpload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(listen="tls", local_domains=["example.org"],
                       max_sessions_per_address=1000,
                       conf_extra=AUTH_BLOCK).start()
        cls.users = os.path.join(cls.d.dir, "users.txt")
        with open(cls.users, "w") as f:
            f.write("u1@example.org:p1\n")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def run_load(self, *args):
        p = subprocess.run([SMTPLOAD, "-p", str(self.d.port), "--json"] +
                           [str(a) for a in args], capture_output=True,
                           text=True, timeout=120)
        return p.returncode, json.loads(p.stdout)

    def test_counts_match_the_spool(self):
        before = len(self.d.spooled("new"))
        rc, res = self.run_load("-n", 40, "-c", 4, "-m", 2, "--auth",
                                self.users, "--starttls", "--to",
                                "r@example.org")
        self.assertEqual(rc, 0, res)
        self.assertEqual(res["sessions_completed"], 40)
        self.assertEqual(res["messages"], 80)
        self.assertEqual(res["errors"], 0)
        self.assertEqual(res["auth_ms"]["n"], 40)
        self.assertEqual(len(self.d.spooled("new")) - before, 80)

    def test_wrong_password_is_counted_and_fails(self):
        bad = os.path.join(self.d.dir, "bad.txt")
        with open(bad, "w") as f:
            f.write("u1@example.org:nope\n")
        rc, res = self.run_load("-n", 5, "-c", 1, "--auth", bad)
        self.assertEqual(rc, 1)
        self.assertEqual(res["error_replies"].get("535"), 5)

    def test_foreign_recipient_without_auth_is_an_error(self):
        rc, res = self.run_load("-n", 3, "--to", "x@elsewhere.test")
        self.assertEqual(rc, 1)
        # Pipelined: RCPT is refused (554 5.7.1), and so is the DATA
        # that was already on its way (554 5.5.1), in each session.
        self.assertEqual(res["error_replies"].get("554"), 6)


if __name__ == "__main__":
    unittest.main()
