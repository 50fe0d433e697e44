"""
test_penalty.py -- authd's penalties on one node, without Redis.

- failures over many connections, served by different workers, count
  as one address: the delay doubles from connection to connection
  (when each worker kept its own count, it did not);
- the same wrong password again from one address grows the delay once;
  twenty different ones grow it each time;
- an account attacked from many addresses of 127.0.0.0/8 is locked
  (454 4.7.0, the password not checked), while its owner, from an
  address that logged in before, still logs in;
- trusted-networks are exempt from the address penalty, not from the
  account's;
- authctl penalty list and clear, and the counters in authctl stats;
- sending limits: the message over the limit is refused 451 4.7.1 after
  its dot and is not in the spool; the recipient over it at RCPT.

Delays are short (failure-delay 30ms, at most 240ms) so that this runs in seconds.
"""

import base64
import os
import re
import socket
import subprocess
import time
import unittest

from daemon import BUILD, Daemon

AUTHCTL = os.path.join(BUILD, "authctl")
USERS = [("owner@example.org", "owner-pw"), ("victim@example.org", "v-pw"),
         ("rep@example.org", "rep-pw"), ("diff@example.org", "diff-pw"),
         ("trust@example.org", "trust-pw"), ("spread@example.org", "s-pw"),
         ("ctl@example.org", "ctl-pw")]
DELAY, DELAY_MAX = 0.030, 0.240


def auth_block(extra=""):
    text = 'auth {\n\tchecker "local" static {\n'
    for user, password in USERS:
        text += '\t\tuser "%s" password "%s"\n' % (user, password)
    text += ("\t}\n\tfailure-delay %dms\n\tfailure-delay-max %dms\n"
             "\tmax-auth-failures 100\n%s}\n"
             % (DELAY * 1000, DELAY_MAX * 1000, extra))
    return text


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" +
                            password.encode()).decode()


def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


class Client:
    """One SMTP session from a chosen loopback source address."""

    def __init__(self, port, source="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        assert self.reply().startswith("220 ")
        assert self.cmd("EHLO client.example").startswith("250")

    def reply(self):
        while True:
            lines = self.buf.split(b"\r\n")
            for i, line in enumerate(lines[:-1]):
                if len(line) >= 4 and line[3:4] == b" ":
                    text = b"\r\n".join(lines[:i + 1]) + b"\r\n"
                    self.buf = b"\r\n".join(lines[i + 1:])
                    return text.decode(errors="replace")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("closed; unread %r" % self.buf)
            self.buf += chunk

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def auth(self, user, password):
        """(seconds, reply) of one AUTH PLAIN."""
        t0 = time.monotonic()
        r = self.cmd("AUTH PLAIN " + plain(user, password))
        return time.monotonic() - t0, r

    def send_message(self, sender, rcpts, body="Subject: t\r\n\r\nhi\r\n"):
        """MAIL, RCPTs, DATA; the replies to RCPTs and to the dot."""
        assert self.cmd("MAIL FROM:<%s>" % sender).startswith("250")
        got = [self.cmd("RCPT TO:<%s>" % r) for r in rcpts]
        if not any(r.startswith("250") for r in got):
            self.cmd("RSET")
            return got, None
        assert self.cmd("DATA").startswith("354")
        self.sock.sendall(body.encode() + b".\r\n")
        return got, self.reply()

    def close(self):
        try:
            self.sock.sendall(b"QUIT\r\n")
        except OSError:
            pass
        self.sock.close()


def one_attempt(port, user, password, source="127.0.0.1"):
    c = Client(port, source)
    try:
        return c.auth(user, password)
    finally:
        c.close()


def authctl(d, *args):
    p = subprocess.run([AUTHCTL, "-f", d.conf] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def counters(d):
    rc, out, err = authctl(d, "stats")
    if rc != 0:
        raise AssertionError("authctl stats: %s" % err)
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^([a-z_]+)\s+(\d+)$", out, re.M)}


def expected(k):
    """The delay of the k-th counted failure (1-based)."""
    return min(DELAY * 2 ** (k - 1), DELAY_MAX)


class PenaltyCase(unittest.TestCase):
    extra = ""
    workers = 4
    top = ""

    @classmethod
    def setUpClass(cls):
        if not can_bind("127.0.0.2"):
            raise unittest.SkipTest("cannot bind 127.0.0.2: no "
                                    "127.0.0.0/8 on loopback")
        cls.d = Daemon(workers=cls.workers, local_domains=["example.org"],
                       max_sessions_per_address=1000, max_errors=100,
                       conf_extra=auth_block(
                           cls.extra + "\ttrusted-networks { 127.0.0.64/30 }\n")
                       + cls.top)
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def assertDelay(self, got, want, what):
        # libevent's timers may fire a few ms early; the machine is shared.
        self.assertGreaterEqual(got, want * 0.85, what)
        self.assertLess(got, want + 0.35, what)


class TestAddressPenalty(PenaltyCase):
    def test_failures_across_workers_count_as_one_address(self):
        src = "127.0.0.2"
        seen = []
        for k in range(1, 9):
            t, r = one_attempt(self.d.port, "spread@example.org",
                               "wrong-%d" % k, src)
            self.assertTrue(r.startswith("535 5.7.8"), r)
            seen.append(t)
        # Which workers served them: each session's log line names it.
        workers = set(re.findall(r"worker\[(\d+)\]: session \S+: "
                                 r"connection from 127\.0\.0\.2 ",
                                 self.d.log()))
        print("\n    8 connections from one address, workers %s: delays %s ms"
              % (sorted(workers) or "?",
                 [round(x * 1000) for x in seen]))
        # Per worker, the counts would have started again in each.
        self.assertGreater(len(workers), 1, "one worker served them all")
        for k, t in enumerate(seen, 1):
            self.assertDelay(t, expected(k), (k, seen))

    def test_same_wrong_password_grows_once_different_ones_each_time(self):
        same = []
        c = Client(self.d.port, "127.0.0.3")
        for _ in range(20):
            t, r = c.auth("rep@example.org", "the-old-password")
            self.assertTrue(r.startswith("535 5.7.8"), r)
            same.append(t)
        c.close()
        diff = []
        c = Client(self.d.port, "127.0.0.4")
        for k in range(1, 21):
            t, r = c.auth("diff@example.org", "guess-%d" % k)
            self.assertTrue(r.startswith("535 5.7.8"), r)
            diff.append(t)
        c.close()
        print("\n    same password x20: %s ms\n    20 different: %s ms"
              % ([round(x * 1000) for x in same],
                 [round(x * 1000) for x in diff]))
        for t in same:
            self.assertDelay(t, DELAY, same)
        # Never the doubled delay: the median stays well below it.
        self.assertLess(sorted(same)[10], DELAY * 1.6, same)
        for k, t in enumerate(diff, 1):
            self.assertDelay(t, expected(k), (k, diff))
        self.assertRegex(self.d.log(), r'auth result=fail '
                         r'user="rep@example.org" .* repeat=yes')
        rc, out, _ = authctl(self.d, "penalty", "list", "127.0.0.3")
        self.assertEqual(rc, 0)
        self.assertRegex(out, r"address\s+127\.0\.0\.3\s+1\s")
        self.assertGreaterEqual(counters(self.d)["auth_repeats"], 19)

    def test_trusted_network_is_exempt_from_the_address_penalty(self):
        c = Client(self.d.port, "127.0.0.65")
        times = []
        for k in range(8):
            t, r = c.auth("trust@example.org", "nope-%d" % k)
            self.assertTrue(r.startswith("535 5.7.8"), r)
            times.append(t)
        c.close()
        self.assertLess(max(times), DELAY, times)
        # ... but its failures count for the account.
        rc, out, _ = authctl(self.d, "penalty", "list", "trust@example.org")
        self.assertRegex(out, r"account\s+trust@example\.org\s+8\s")
        self.assertNotRegex(out, r"address\s+127\.0\.0\.65")

    def test_authctl_penalty_list_and_clear(self):
        src = "127.0.0.5"
        for k in range(1, 5):
            one_attempt(self.d.port, "ctl@example.org", "x-%d" % k, src)
        rc, out, _ = authctl(self.d, "penalty", "list", src)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"address\s+127\.0\.0\.5\s+4\s+%dms"
                         % (expected(5) * 1000))
        rc, out, _ = authctl(self.d, "penalty", "list")
        self.assertRegex(out, r"account\s+ctl@example\.org\s+4\s")
        rc, out, _ = authctl(self.d, "penalty", "clear", src)
        self.assertEqual(rc, 0, out)
        self.assertRegex(out, r"^[1-9]\d* entries cleared")
        rc, out, _ = authctl(self.d, "penalty", "list", src)
        self.assertIn("no penalties", out)
        t, _ = one_attempt(self.d.port, "ctl@example.org", "x-9", src)
        self.assertDelay(t, DELAY, t)
        self.assertRegex(self.d.log(), r"control: penalties cleared for "
                         r"127\.0\.0\.5")
        c = counters(self.d)
        self.assertGreater(c["auth_failures"], 0)
        self.assertGreater(c["auth_delayed"], 0)


class TestAccountLock(PenaltyCase):
    extra = "\tpenalty account 5 per 1h known 1d\n"
    workers = 2

    def test_stuffing_from_many_addresses_locks_the_account_not_its_owner(
            self):
        user, password = "victim@example.org", "v-pw"
        # The owner logged in from 127.0.0.1 before the attack.
        t, r = one_attempt(self.d.port, user, password, "127.0.0.1")
        self.assertTrue(r.startswith("235 "), r)
        replies = []
        for k in range(10):
            src = "127.0.1.%d" % (10 + k)
            t, r = one_attempt(self.d.port, user, "stuffed-%d" % k, src)
            replies.append(r[:9])
        print("\n    10 addresses, one account: %s" % replies)
        self.assertEqual(replies[:5], ["535 5.7.8"] * 5)
        self.assertEqual(replies[5:], ["454 4.7.0"] * 5)
        # The right password from a new address is not even checked...
        t, r = one_attempt(self.d.port, user, password, "127.0.1.99")
        self.assertTrue(r.startswith("454 4.7.0"), r)
        # ... while the owner, from where it logged in before, gets in.
        t, r = one_attempt(self.d.port, user, password, "127.0.0.1")
        self.assertTrue(r.startswith("235 "), r)
        log = self.d.log()
        self.assertRegex(log, r'penalty: account "victim@example.org" '
                         r"locked after 5 failures")
        self.assertRegex(log, r'auth result=tempfail user="victim@'
                         r'example.org" .*client=127\.0\.1\.99 .*'
                         r"reason=account locked")
        c = counters(self.d)
        self.assertEqual(c["account_locks"], 1)
        self.assertGreaterEqual(c["account_refused"], 6)
        self.assertGreaterEqual(c["account_known_passed"], 1)
        rc, out, _ = authctl(self.d, "penalty", "list", user)
        self.assertRegex(out, r"account\s+victim@example\.org\s+5\s+-\s+yes")
        # Cleared, the account is open again.
        authctl(self.d, "penalty", "clear", user)
        t, r = one_attempt(self.d.port, user, password, "127.0.1.99")
        self.assertTrue(r.startswith("235 "), r)


class TestLimits(PenaltyCase):
    workers = 2
    top = "limit messages 3 per 1h recipients 4 per 1h\n"

    def test_message_limit_refused_after_the_dot_and_not_spooled(self):
        user, password = "owner@example.org", "owner-pw"
        c = Client(self.d.port, "127.0.4.1")
        self.assertTrue(c.auth(user, password)[1].startswith("235"))
        finals = []
        for k in range(4):
            before = len(self.d.spooled())
            _, final = c.send_message(user, ["x%d@elsewhere.test" % k])
            finals.append(final[:9])
            if k == 3:
                self.assertEqual(len(self.d.spooled()), before)
                self.assertEqual(self.d.spooled("tmp"), [])
                self.assertIn("Sending limit reached: too many messages "
                              "from this account", final)
        c.close()
        self.assertEqual(finals, ["250 2.0.0"] * 3 + ["451 4.7.1"])
        self.assertRegex(self.d.log(), r'limit: session=\S+ user="owner@'
                         r'example.org" client=127\.0\.4\.1: over the '
                         r"message limit of the account \(3 per 3600s\)")
        self.assertGreaterEqual(counters(self.d)["limit_messages_refused"], 1)

    def test_recipient_limit_refused_at_rcpt(self):
        user, password = "ctl@example.org", "ctl-pw"
        c = Client(self.d.port, "127.0.4.2")
        self.assertTrue(c.auth(user, password)[1].startswith("235"))
        got, final = c.send_message(user, ["r%d@elsewhere.test" % k
                                           for k in range(6)])
        c.close()
        self.assertEqual([r[:9] for r in got],
                         ["250 2.1.5"] * 4 + ["451 4.7.1"] * 2)
        self.assertTrue(final.startswith("250 2.0.0"), final)
        self.assertGreaterEqual(
            counters(self.d)["limit_recipients_refused"], 2)

    def test_address_limit_spans_accounts(self):
        # Two accounts from one address: the address's count is shared.
        src = "127.0.4.3"
        finals = []
        for user, password in [("rep@example.org", "rep-pw"),
                               ("diff@example.org", "diff-pw")]:
            c = Client(self.d.port, src)
            self.assertTrue(c.auth(user, password)[1].startswith("235"))
            for k in range(2):
                finals.append(c.send_message(user, ["a@elsewhere.test"])[1]
                              [:9])
            c.close()
        self.assertEqual(finals, ["250 2.0.0"] * 3 + ["451 4.7.1"])


if __name__ == "__main__":
    unittest.main()
