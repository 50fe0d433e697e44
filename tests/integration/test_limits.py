"""
test_limits.py -- per-user sending limits from the store and the lock
of an account that goes on over its limit, on the fleet as deployed:
two portcullis nodes behind one real HAProxy (round-robin, PROXY v2),
sharing counts through one real Redis.  Each node has its own store
(an lmdb checker after a static one), and the administrator sets the
same limits on both with authctl, as a fleet keeps its stores in step.

- a user whose own message limit is lower than the default meets it
  for the sum over both nodes;
- a user with "messages none" is not limited by the account default;
- a limit changed with authctl while the nodes run counts from the
  next message, without a reload;
- "limit ... lock-after 3 for 1h": the third refusal locks the account
  on both nodes (AUTH answered 454 unchecked, also from the address
  that logged in), with one greppable log line naming user, client
  and session; authctl stats counts it, penalty list shows it, and
  penalty clear lifts it fleet-wide.

Redis and HAProxy are started once for this module.
"""

import base64
import os
import re
import socket
import struct
import subprocess
import time
import unittest

from daemon import BUILD, Daemon
from test_authctl import LMDB_PYTHON, StoreTest, lmdb_put
from test_fleet import Balancer
from test_penalty import Client, can_bind, counters, one_attempt
from test_proxy import HAPROXY
from test_redis import REDIS_SERVER, RedisServer

AUTHCTL = os.path.join(BUILD, "authctl")
REDIS = None
NODES = []
LB = None

# name, password, "authctl user limits" words ([] the default)
USERS = [
    ("low@example.org", "low-pw", ["messages", "3", "per", "1h"]),
    ("free@example.org", "free-pw", ["messages", "none"]),
    ("changer@example.org", "changer-pw", []),
    ("spammer@example.org", "spammer-pw", ["messages", "1", "per", "1h"]),
]


def ctl(d, *args, stdin=None):
    p = subprocess.run([AUTHCTL, "-f", d.conf] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def node():
    d = Daemon(workers=2, local_domains=["example.org"],
               listen="proxy-protocol from { 127.0.0.1/32 }",
               max_sessions_per_address=1000, max_errors=100)
    d.conf_extra = (
        'auth {\n\tchecker "local" static {\n'
        '\t\tuser "static@example.org" password "static-pw"\n\t}\n'
        '\tchecker "store" lmdb "%s/db"\n'
        "\tfailure-delay 10ms\n\tmax-auth-failures 100\n}\n"
        'state redis "unix:%s" timeout 300ms\n'
        "limit messages 5 per 1h lock-after 3 for 1h\n"
        % (d.dir, REDIS.sock))
    d.write_conf()
    for name, password, limits in USERS:
        rc, out, err = ctl(d, "user", "add", "--password-stdin",
                           "--address", name, name, stdin=password + "\n")
        if rc != 0:
            raise AssertionError("authctl user add: %s" % err)
        if limits:
            rc, out, err = ctl(d, "user", "limits", name, *limits)
            if rc != 0:
                raise AssertionError("authctl user limits: %s" % err)
    return d


def setUpModule():
    global REDIS, LB
    if not os.path.exists(HAPROXY):
        raise unittest.SkipTest("needs haproxy (make deps)")
    if not os.path.exists(REDIS_SERVER):
        raise unittest.SkipTest("needs redis-server (make deps)")
    if not can_bind("127.0.10.1"):
        raise unittest.SkipTest("needs 127.0.0.0/8 on the loopback")
    REDIS = RedisServer()
    REDIS.start()
    try:
        for _ in range(2):
            d = node()
            NODES.append(d)
            d.start()
            d.wait_log(r"penalties and limits are shared")
        LB = Balancer(NODES)
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if LB is not None:
        LB.stop()
    for d in NODES:
        d.stop()
    if REDIS is not None:
        REDIS.stop()


def send(user, password, source, n=1):
    """n messages in one session through HAProxy: the final replies."""
    c = Client(LB.port, source)
    try:
        t, r = c.auth(user, password)
        assert r.startswith("235 "), r
        return [c.send_message(user, ["x@elsewhere.test"])[1][:9]
                for _ in range(n)]
    finally:
        c.close()


def scram_first(port, user):
    """The reply to a SCRAM-SHA-256 client-first, without TLS."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    try:
        def reply():
            while True:
                line = f.readline().decode()
                if line[3:4] != "-":
                    return line
        reply()
        s.sendall(b"EHLO client.example\r\n")
        reply()
        first = "n,,n=%s,r=%s" % (user, base64.b64encode(
            os.urandom(18)).decode())
        s.sendall(b"AUTH SCRAM-SHA-256 " +
                  base64.b64encode(first.encode()) + b"\r\n")
        return reply()
    finally:
        f.close()
        s.close()


def both_logs():
    return "".join(d.log() for d in NODES)


class TestUserLimits(unittest.TestCase):
    def test_1_own_limit_lower_than_the_default_over_both_nodes(self):
        # One session each: HAProxy spreads them over both nodes.
        finals = [send("low@example.org", "low-pw", "127.0.10.1")[0]
                  for _ in range(5)]
        print("\n    own limit 3 (default 5), 5 messages over both "
              "nodes: %s" % finals)
        self.assertEqual(finals, ["250 2.0.0"] * 3 + ["451 4.7.1"] * 2)
        self.assertRegex(both_logs(), r"user=\"low@example\.org\" "
                         r"client=127\.0\.10\.1: over the message limit "
                         r"of the account \(3 per 3600s\), fleet-wide")
        for d in NODES:
            self.assertIn("auth result=ok", d.log())

    def test_2_none_is_not_limited(self):
        # Seven messages, above the default of 5; each from its own
        # address, which keeps the default per-address limit.
        finals = [send("free@example.org", "free-pw", "127.0.11.%d" % k)[0]
                  for k in range(1, 8)]
        self.assertEqual(finals, ["250 2.0.0"] * 7)
        # The same from one address: the address's default limit holds.
        finals = send("free@example.org", "free-pw", "127.0.11.99", 6)
        self.assertEqual(finals, ["250 2.0.0"] * 5 + ["451 4.7.1"])
        self.assertRegex(both_logs(), r"user=\"free@example\.org\" .*over "
                         r"the message limit of the address \(5 per "
                         r"3600s\)")

    def test_3_a_change_counts_from_the_next_message(self):
        user, pw = "changer@example.org", "changer-pw"
        self.assertEqual(send(user, pw, "127.0.12.1", 2), ["250 2.0.0"] * 2)
        for d in NODES:
            rc, out, err = ctl(d, "user", "limits", user, "messages", "2",
                               "per", "30m")
            self.assertEqual((rc, err), (0, ""))
        rc, out, err = ctl(NODES[0], "user", "show", user)
        self.assertIn("limit messages: 2 per 30m\n", out)
        self.assertIn("limit recipients: default\n", out)
        self.assertEqual(send(user, pw, "127.0.12.2"), ["451 4.7.1"])
        for d in NODES:
            rc, out, err = ctl(d, "user", "limits", user, "messages", "none")
            self.assertEqual((rc, err), (0, ""))
        self.assertEqual(send(user, pw, "127.0.12.3", 2), ["250 2.0.0"] * 2)
        self.assertNotIn("reload", both_logs())

    def test_4_lock_after_three_refusals(self):
        user, pw = "spammer@example.org", "spammer-pw"
        marks = [d.log_offset() for d in NODES]
        finals = send(user, pw, "127.0.13.1", 4)
        self.assertEqual(finals, ["250 2.0.0"] + ["451 4.7.1"] * 3)
        # Locked on both nodes (round-robin), also from the address
        # that logged in, which the account lock of penalties lets by.
        replies = [one_attempt(LB.port, user, pw, src)[1][:9]
                   for src in ("127.0.13.1", "127.0.13.1", "127.0.13.2",
                               "127.0.13.2")]
        self.assertEqual(replies, ["454 4.7.0"] * 4)
        text = "".join(d.log()[m:] for d, m in zip(NODES, marks))
        lines = re.findall(r".*limit: account locked: .*", text)
        self.assertEqual(len(lines), 1, text)
        self.assertRegex(lines[0], r"session=[0-9a-f]{16} "
                         r"user=\"spammer@example\.org\" "
                         r"client=127\.0\.13\.1: 3 refusals over its "
                         r"message limit within 3600s; locked for 3600s, "
                         r"fleet-wide")
        self.assertRegex(text, r"account locked: over its sending limit")
        locker = [d for d, m in zip(NODES, marks)
                  if "limit: account locked:" in d.log()[m:]][0]
        self.assertEqual(counters(locker)["limit_locks"], 1)
        self.assertEqual(sum(counters(d)["limit_lock_refused"]
                             for d in NODES), 4)
        rc, out, err = ctl(locker, "penalty", "list", user)
        self.assertRegex(out, r"sending\s+spammer@example\.org\s+1\s+-\s+"
                         r"yes")
        # The administrator lifts it on one node: both let it in.
        rc, out, err = ctl(NODES[0], "penalty", "clear", user)
        self.assertEqual(rc, 0, err)
        time.sleep(0.2)
        replies = [one_attempt(LB.port, user, pw, "127.0.13.1")[1][:4]
                   for _ in NODES]
        self.assertEqual(replies, ["235 "] * 2)

    def test_5_static_users_keep_the_default(self):
        finals = send("static@example.org", "static-pw", "127.0.14.1", 6)
        self.assertEqual(finals, ["250 2.0.0"] * 5 + ["451 4.7.1"])


class TestAuthctl(unittest.TestCase):
    def test_limits_errors_and_listing(self):
        d = NODES[0]
        cases = [
            (["letters", "3", "per", "1h"], "unknown kind \"letters\""),
            (["messages"], "messages: want default, none or NUMBER per "
             "DURATION"),
            (["messages", "3", "in", "1h"], "want default, none or NUMBER "
             "per DURATION"),
            (["messages", "0", "per", "1h"], "the number must be between "
             "1 and 100000000 (none: no limit)"),
            (["messages", "3", "per", "31d"], "\"31d\" is not a duration "
             "between 1s and 30d"),
            (["messages", "3", "per", "1w"], "\"1w\" is not a duration"),
        ]
        for words, want in cases:
            rc, out, err = ctl(d, "user", "limits", "low@example.org",
                               *words)
            self.assertEqual(rc, 1, (words, err))
            self.assertIn(want, err, words)
        rc, out, err = ctl(d, "user", "limits", "nobody@example.org",
                           "messages", "none")
        self.assertEqual(rc, 1)
        self.assertIn("no such user", err)
        rc, out, err = ctl(d, "user", "limits", "low@example.org")
        self.assertEqual((rc, out), (0, "name: low@example.org\n"
                         "limit messages: 3 per 1h\n"
                         "limit recipients: default\n"))
        rc, out, err = ctl(d, "user", "list", "-l")
        self.assertEqual(rc, 0, err)
        rows = {line.split()[0]: line.split() for line in
                out.splitlines()[1:]}
        self.assertEqual(out.splitlines()[0].split()[4:6],
                         ["MESSAGES", "RECIPIENTS"])
        self.assertEqual(rows["free@example.org"][4:6], ["none",
                                                          "default"])
        self.assertEqual(rows["low@example.org"][4:8],
                         ["3", "per", "1h", "default"])


class TestOneNode(unittest.TestCase):
    """No Redis: the node's own counters, and its own lock."""

    def test_lock_on_one_node(self):
        d = Daemon(workers=2, local_domains=["example.org"],
                   max_sessions_per_address=1000, max_errors=100)
        d.conf_extra = ('auth {\n\tchecker "store" lmdb "%s/db" '
                        "mechanisms PLAIN LOGIN SCRAM-SHA-256\n"
                        "\tfailure-delay 10ms\n}\n"
                        "limit messages none lock-after 2 for 10m\n"
                        % d.dir)
        d.write_conf()
        user, pw = "one@example.org", "one-pw"
        rc, out, err = ctl(d, "user", "add", "--password-stdin",
                           "--address", user, user, stdin=pw + "\n")
        self.assertEqual(rc, 0, err)
        rc, out, err = ctl(d, "user", "limits", user, "messages", "2",
                           "per", "1h")
        self.assertEqual(rc, 0, err)
        d.start()
        try:
            c = Client(d.port, "127.0.15.1")
            self.assertTrue(c.auth(user, pw)[1].startswith("235 "))
            finals = [c.send_message(user, ["x@elsewhere.test"])[1][:9]
                      for _ in range(4)]
            c.close()
            self.assertEqual(finals, ["250 2.0.0"] * 2 +
                             ["451 4.7.1"] * 2)
            t, r = one_attempt(d.port, user, pw, "127.0.15.1")
            self.assertTrue(r.startswith("454 4.7.0"), r)
            # SCRAM meets the lock before its salt, as PLAIN does.
            r = scram_first(d.port, user)
            self.assertTrue(r.startswith("454 4.7.0"), r)
            self.assertRegex(d.log(), r"limit: account locked: "
                             r"session=[0-9a-f]{16} user=\"one@example\.org"
                             r"\" client=127\.0\.15\.1: 2 refusals over "
                             r"its message limit within 3600s; locked for "
                             r"600s\n")
            rc, out, err = ctl(d, "penalty", "list")
            self.assertRegex(out, r"sending\s+one@example\.org\s+1\s+-\s+"
                             r"yes")
            rc, out, err = ctl(d, "penalty", "clear", user)
            self.assertEqual(rc, 0, err)
            t, r = one_attempt(d.port, user, pw, "127.0.15.1")
            self.assertTrue(r.startswith("235 "), r)
        finally:
            d.stop()


@unittest.skipUnless(LMDB_PYTHON, "needs python3-lmdb to write a layout 2 "
                     "store (make deps)")
class TestUpgrade(StoreTest):
    """A layout 2 store holds no limits until authctl upgrade makes it
    layout 3, keeping its users and secret."""

    def test_layout_2_to_3(self):
        os.mkdir(self.db, 0o700)
        v2 = bytes([2, 0]) + struct.pack("<qq", 1, 1) + bytes([0, 0, 0, 0])
        lmdb_put(self.db, [("meta", b"layout", b"2"),
                           ("meta", b"secret", bytes(range(32))),
                           ("users", b"old@example.org", v2)], create=True)
        rc, out, err = self.ctl("user", "limits", "old@example.org",
                                "messages", "5", "per", "1h")
        self.assertEqual(rc, 1)
        self.assertIn("has layout 2, which holds no sending limits: run "
                      "authctl upgrade", err)
        rc, out, err = self.ctl("user", "limits", "old@example.org")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("limit messages: default\n", out)
        rc, out, err = self.ctl("upgrade")
        self.assertEqual((rc, err), (0, ""))
        self.assertRegex(out, r"layout 2 -> 3, 1 users rewritten\n$")
        rc, out, err = self.ctl("user", "limits", "old@example.org",
                                "messages", "5", "per", "90m",
                                "recipients", "none")
        self.assertEqual((rc, err), (0, ""))
        rc, out, err = self.ctl("user", "show", "old@example.org")
        self.assertIn("limit messages: 5 per 90m\nlimit recipients: none\n",
                      out)
        self.assertEqual(self.ctl("upgrade")[1].split()[-1], "already")
