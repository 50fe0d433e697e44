"""
test_auth_timing.py -- refusing an unknown user must take as long as
refusing a wrong password for a known one, or the time to answer tells
an attacker who has an account.  Both go through the LMDB checker and a
yescrypt verification (the unknown user's against the dummy hash).
"""

import base64
import os
import statistics
import subprocess
import time
import unittest

from daemon import BUILD, Daemon, read_reply

AUTHCTL = os.path.join(BUILD, "authctl")
TRIES = 24


class TestTiming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(local_domains=["example.org"], conf_extra="")
        db = os.path.join(cls.d.dir, "db")
        cls.d.conf_extra = ('auth {\n\tchecker "local" lmdb "%s"\n'
                            "\tfailure-delay 0s\n}\n" % db)
        cls.d.write_conf()
        p = subprocess.run([AUTHCTL, "-f", cls.d.conf, "user", "add",
                            "known@example.org", "--password-stdin"],
                           input="right-password\n", text=True,
                           capture_output=True, timeout=60)
        if p.returncode != 0:
            raise AssertionError("authctl user add: %s" % p.stderr)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def refuse_time(self, s, user):
        cred = base64.b64encode(b"\0" + user + b"\0wrong-password")
        t0 = time.monotonic()
        s.sendall(b"AUTH PLAIN " + cred + b"\r\n")
        reply = read_reply(s)
        elapsed = time.monotonic() - t0
        self.assertTrue(reply.startswith("535 5.7.8"), reply)
        return elapsed

    def session(self):
        s = self.d.connect(timeout=30)
        read_reply(s)
        s.sendall(b"EHLO client.example\r\n")
        read_reply(s)
        return s

    def measure(self):
        known, unknown = [], []
        # Alternate which comes first, so that neither is always the
        # first AUTH of a session; a new session every two tries stays
        # under max-auth-failures.
        for i in range(TRIES):
            s = self.session()
            if i % 2 == 0:
                known.append(self.refuse_time(s, b"known@example.org"))
                unknown.append(self.refuse_time(s, b"nobody@example.org"))
            else:
                unknown.append(self.refuse_time(s, b"nobody@example.org"))
                known.append(self.refuse_time(s, b"known@example.org"))
            s.close()
        # Load from another process on this shared machine only adds
        # time, and in bursts that a median of 20 can still catch on one
        # side: the lower quartile is what the work itself costs.
        qk = statistics.quantiles(known, n=4)[0]
        qu = statistics.quantiles(unknown, n=4)[0]
        print("\n    lower-quartile refusal: known user %.1f ms, unknown "
              "user %.1f ms, ratio %.3f" % (qk * 1000, qu * 1000, qu / qk))
        return qk, qu

    def test_unknown_user_costs_what_a_wrong_password_costs(self):
        # A leak is systematic and shows every time (a missing dummy
        # verification costs nothing at all); a burst of load does not.
        seen = []
        for attempt in range(3):
            mk, mu = self.measure()
            if abs(mu - mk) / mk < 0.10:
                return
            seen.append("known %.1f ms vs unknown %.1f ms" %
                        (mk * 1000, mu * 1000))
        self.fail("; ".join(seen))


if __name__ == "__main__":
    unittest.main()
