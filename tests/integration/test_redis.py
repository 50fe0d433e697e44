"""
test_redis.py -- two portcullis nodes sharing penalties and limits
through one real Redis (Debian's redis-server, started once for this
module on a Unix socket in a temporary directory, as the redis user
when the tests run as root).

- wrong passwords spread over both nodes grow one delay;
- credential stuffing over both nodes meets one account limit, while
  the owner, from an address that logged in before on the other node,
  still logs in;
- authctl penalty list on one node shows the shared counts; clear with
  no argument lifts the other node's lock too;
- a per-account message limit holds for the sum over both nodes;
- Redis killed mid-test: mail goes on with each node's own counters and
  the log says so, once; Redis back: shared again.

The clients connect to each node directly (a balancer in front needs
the PROXY protocol: test_proxy adds that variant).
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from daemon import Daemon, free_port
from test_penalty import (Client, DELAY, auth_block, authctl, can_bind,
                          counters, expected, one_attempt)

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS = None


class RedisServer:
    """redis-server on a Unix socket and a loopback port, no
    persistence."""

    def __init__(self, extra=()):
        self.extra = list(extra)
        self.dir = tempfile.mkdtemp(prefix="portcullis-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.user = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("redis")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                self.user = pw
            except KeyError:
                pass
        os.chmod(self.dir, 0o755)
        self.proc = None
        self.port = free_port()

    def _demote(self):
        os.setgid(self.user.pw_gid)
        os.setgroups([])
        os.setuid(self.user.pw_uid)

    def start(self):
        self.log = open(os.path.join(self.dir, "log"), "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--unixsocket", self.sock,
             "--unixsocketperm", "777", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no"] + self.extra,
            stdout=self.log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=self.dir,
            preexec_fn=self._demote if self.user else None)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("redis-server did not start:\n%s"
                                     % open(os.path.join(self.dir, "log"))
                                     .read())
            time.sleep(0.02)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        try:
            os.unlink(self.sock)
        except FileNotFoundError:
            pass

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global REDIS
    if not os.path.exists(REDIS_SERVER):
        raise unittest.SkipTest("redis-server not installed "
                                "(scripts/deps.sh installs it)")
    if not can_bind("127.0.0.2"):
        raise unittest.SkipTest("cannot bind 127.0.0.2: no 127.0.0.0/8 "
                                "on loopback")
    REDIS = RedisServer()
    REDIS.start()


def tearDownModule():
    if REDIS is not None:
        REDIS.stop()


def node():
    return Daemon(workers=2, local_domains=["example.org"],
                  max_sessions_per_address=1000, max_errors=100,
                  conf_extra=auth_block("\tpenalty account 6 per 1h\n") +
                  'state redis "unix:%s" timeout 300ms\n'
                  "limit messages 4 per 1h\n" % REDIS.sock)


class TestTwoNodes(unittest.TestCase):
    """The methods run in the order of their names: Redis dies last."""

    @classmethod
    def setUpClass(cls):
        cls.a, cls.b = node(), node()
        cls.a.start()
        cls.b.start()
        for d in (cls.a, cls.b):
            d.wait_log(r"state: Redis at unix:\S+: penalties and limits "
                       r"are shared")

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()

    def nodes(self, k):
        return (self.a, self.b)[k % 2]

    def spread_failures(self, src, user, n):
        delays = []
        for k in range(1, n + 1):
            t, r = one_attempt(self.nodes(k).port, user, "w-%s-%d" % (src, k),
                               src)
            self.assertTrue(r.startswith("535 5.7.8"), r)
            delays.append(t)
        return delays

    def assertGrows(self, delays):
        for k, t in enumerate(delays, 1):
            self.assertGreaterEqual(t, expected(k) * 0.85, (k, delays))
            self.assertLess(t, expected(k) + 0.35, (k, delays))

    def test_1_failures_over_both_nodes_grow_one_delay(self):
        delays = self.spread_failures("127.0.5.1", "spread@example.org", 6)
        print("\n    6 failures, nodes a b a b a b: %s ms"
              % [round(x * 1000) for x in delays])
        self.assertGrows(delays)

    def test_2_account_lock_holds_across_nodes(self):
        user, password = "victim@example.org", "v-pw"
        t, r = one_attempt(self.a.port, user, password, "127.0.0.1")
        self.assertTrue(r.startswith("235 "), r)
        replies = []
        for k in range(10):
            t, r = one_attempt(self.nodes(k).port, user, "stuff-%d" % k,
                               "127.0.6.%d" % (k + 1))
            replies.append(r[:9])
        print("\n    10 addresses over both nodes: %s" % replies)
        self.assertEqual(replies, ["535 5.7.8"] * 6 + ["454 4.7.0"] * 4)
        # The owner logged in on a, from 127.0.0.1: b knows it too.
        t, r = one_attempt(self.b.port, user, password, "127.0.0.1")
        self.assertTrue(r.startswith("235 "), r)
        t, r = one_attempt(self.b.port, user, password, "127.0.6.99")
        self.assertTrue(r.startswith("454 4.7.0"), r)
        # A node that starts after the lock learns it from Redis: its
        # first attempt for the account is not checked either.
        c = node()
        c.start()
        try:
            c.wait_log(r"penalties and limits are shared")
            time.sleep(0.2)
            t, r = one_attempt(c.port, user, password, "127.0.6.98")
            self.assertTrue(r.startswith("454 4.7.0"), r)
        finally:
            c.stop()

    def test_2b_shared_list_and_clear(self):
        user = "victim@example.org"
        # test_2 locked the account, mostly from a's and b's attempts:
        # b lists the shared count, which neither node has alone.
        rc, out, err = authctl(self.b, "penalty", "list", user)
        self.assertEqual(rc, 0, err)
        print("\n" + out)
        self.assertRegex(out, r"shared\s+account\s+victim@example\.org"
                         r"\s+(\d+)\s+-\s+yes")
        shared = int(re.search(r"shared\s+account\s+\S+\s+(\d+)",
                               out).group(1))
        self.assertGreaterEqual(shared, 6)
        node_rows = re.findall(r"^node\s+account\s+\S+\s+(\d+)", out,
                               re.M)
        self.assertTrue(all(int(n) < shared for n in node_rows), out)
        rc, out, err = authctl(self.b, "penalty", "list")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"shared\s+address\s+127\.0\.6\.\d+ ")
        # Everything cleared from b: a lets the password in again from
        # an address that never logged in as the user.
        rc, out, err = authctl(self.b, "penalty", "clear")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"entries cleared on this node, [1-9]\d* "
                         r"keys in the shared state")
        t, r = one_attempt(self.a.port, user, "v-pw", "127.0.6.97")
        self.assertTrue(r.startswith("235 "), r)
        rc, out, err = authctl(self.a, "penalty", "list", user)
        self.assertNotRegex(out, r"shared\s+account")

    def redis_get(self, key):
        p = subprocess.run(["redis-cli", "-s", REDIS.sock, "--raw", "GET",
                            key], capture_output=True, text=True, timeout=10)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout.strip()

    def test_2c_a_logins_news_in_order(self):
        """A login's news (the address forgiven, known for the account)
        wait a few ms for others', but go before anything sent after
        them: a failure right after a login counts once, not wiped."""
        user, password, src = "rep@example.org", "rep-pw", "127.0.8.1"
        t, r = one_attempt(self.a.port, user, "wrong-1", src)
        self.assertTrue(r.startswith("535 "), r)
        self.assertEqual(self.redis_get("portcullis:a:" + src), "1")
        t, r = one_attempt(self.a.port, user, password, src)
        self.assertTrue(r.startswith("235 "), r)
        t, r = one_attempt(self.a.port, user, "wrong-2", src)
        self.assertTrue(r.startswith("535 "), r)
        self.assertEqual(self.redis_get("portcullis:a:" + src), "1")
        self.assertEqual(self.redis_get("portcullis:k:%s %s"
                                        % (user, src)), "1")
        # Alone, they go within a few milliseconds.
        t, r = one_attempt(self.b.port, user, password, "127.0.8.2")
        self.assertTrue(r.startswith("235 "), r)
        time.sleep(0.1)
        self.assertEqual(self.redis_get("portcullis:k:%s 127.0.8.2"
                                        % user), "1")

    def test_3_message_limit_is_the_sum_over_both_nodes(self):
        user, password = "owner@example.org", "owner-pw"
        finals = []
        for k in range(6):
            c = Client(self.nodes(k).port, "127.0.7.1")
            self.assertTrue(c.auth(user, password)[1].startswith("235"))
            finals.append(c.send_message(user, ["x@elsewhere.test"])[1][:9])
            c.close()
        print("\n    6 messages, nodes a b a b a b: %s" % finals)
        self.assertEqual(finals, ["250 2.0.0"] * 4 + ["451 4.7.1"] * 2)
        self.assertRegex(self.a.log() + self.b.log(),
                         r"over the message limit of the account "
                         r"\(4 per 3600s\), fleet-wide")

    def test_4_redis_down_then_back(self):
        REDIS.kill()
        for d in (self.a, self.b):
            d.wait_log(r"state: Redis at \S+ unavailable \(.*\): using "
                       r"this node's own counters")
        # Mail goes on, on both nodes, with their own counters.
        user, password = "ctl@example.org", "ctl-pw"
        for k in range(4):
            c = Client(self.nodes(k).port, "127.0.8.1")
            self.assertTrue(c.auth(user, password)[1].startswith("235"))
            _, final = c.send_message(user, ["y@elsewhere.test"])
            self.assertTrue(final.startswith("250 2.0.0"), final)
            c.close()
        t, r = one_attempt(self.a.port, user, "bad", "127.0.8.2")
        self.assertTrue(r.startswith("535"), r)
        # authctl says the shared state did not answer, after this
        # node's own penalties, and exits 69.
        rc, out, err = authctl(self.a, "penalty", "list", "127.0.8.2")
        self.assertEqual(rc, 69, (out, err))
        self.assertRegex(out, r"node\s+address\s+127\.0\.8\.2 ")
        self.assertIn("shared state (Redis) did not answer", err)
        rc, out, err = authctl(self.a, "penalty", "clear", "127.0.8.2")
        self.assertEqual(rc, 69, (out, err))
        self.assertIn("cleared on this node only", err)
        for d in (self.a, self.b):
            self.assertEqual(len(__import__("re").findall(
                r"unavailable .*: using this node's own counters",
                d.log())), 1, d.log())
            self.assertGreater(counters(d)["state_local"], 0)
            self.assertEqual(counters(d)["state_outages"], 1)
        REDIS.start()
        for d in (self.a, self.b):
            d.wait_log(r"state: Redis at \S+ is back: penalties and "
                       r"limits are shared again", timeout=15)
        delays = self.spread_failures("127.0.5.9", "spread@example.org", 5)
        print("\n    after Redis came back, 5 failures over both nodes: %s"
              " ms" % [round(x * 1000) for x in delays])
        self.assertGrows(delays)
        self.assertEqual(counters(self.a)["state_reconnects"], 1)


class TestTcp(unittest.TestCase):
    def test_over_tcp_and_under_the_sandbox(self):
        d = Daemon(workers=1, local_domains=["example.org"],
                   conf_extra=auth_block() +
                   'state redis "127.0.0.1:%d"\n' % REDIS.port)
        d.start()
        try:
            d.wait_log(r"state: Redis at 127\.0\.0\.1:\d+: penalties "
                       r"and limits are shared")
            for k in range(1, 4):
                t, r = one_attempt(d.port, "tcp@example.org", "x%d" % k,
                                   "127.0.9.1")
                self.assertTrue(r.startswith("535"), r)
            self.assertGreaterEqual(t, expected(3) * 0.85)
            c = counters(d)
            self.assertGreaterEqual(c["state_shared"], 3)
            self.assertEqual(c["state_errors"], 0)
            # Connected again under the sandbox, over TCP.
            REDIS.kill()
            d.wait_log(r"state: Redis at \S+ unavailable")
            REDIS.start()
            d.wait_log(r"state: Redis at \S+ is back", timeout=15)
            t, r = one_attempt(d.port, "tcp@example.org", "x9", "127.0.9.2")
            self.assertTrue(r.startswith("535"), r)
            self.assertGreaterEqual(counters(d)["state_shared"], 4)
        finally:
            d.stop()


class TestPassword(unittest.TestCase):
    """A Redis with requirepass: the password file's first line is sent
    with AUTH on both of authd's links (the one that asks, the one that
    subscribes), after a reload too; a wrong one is refused and logged,
    and no password ever reaches the log."""

    def test_password_file_and_reload(self):
        secret = "redis-pw-" + os.urandom(6).hex()
        r = RedisServer(["--requirepass", secret])
        r.start()
        d = None
        try:
            pwfile = os.path.join(r.dir, "pw")
            with open(pwfile, "w") as f:
                f.write(secret + "\n")
            os.chmod(pwfile, 0o600)
            conf = ('state redis "unix:%s" password-file "%s"\n'
                    % (r.sock, pwfile))
            d = Daemon(workers=1, local_domains=["example.org"],
                       conf_extra=auth_block("\tpenalty account 3 per "
                                             "1h\n") + conf)
            d.start()
            d.wait_log(r"penalties and limits are shared")
            for k in range(3):
                t, resp = one_attempt(d.port, "pw@example.org", "x%d" % k,
                                      "127.0.10.%d" % (k + 1))
                self.assertTrue(resp.startswith("535"), resp)
            rc, out, err = authctl(d, "penalty", "list", "pw@example.org")
            self.assertRegex(out, r"shared\s+account\s+pw@example\.org\s+3"
                             r"\s+-\s+yes")
            self.assertEqual(counters(d)["state_errors"], 0)
            # A reload reads the file again: the link stays shared.
            off = d.log_offset()
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log(r"authd\S*: configuration reloaded", since=off)
            t, resp = one_attempt(d.port, "pw2@example.org", "y",
                                  "127.0.10.9")
            self.assertTrue(resp.startswith("535"), resp)
            self.assertEqual(counters(d)["state_errors"], 0)
            d.stop()
            # A wrong password: refused, logged, never the password.
            with open(pwfile, "w") as f:
                f.write("not-" + secret + "\n")
            d = Daemon(workers=1, local_domains=["example.org"],
                       conf_extra=auth_block() + conf)
            d.start()
            d.wait_log(r"state: Redis at \S+ refused us: (WRONGPASS|ERR)")
            t, resp = one_attempt(d.port, "pw@example.org", "z",
                                  "127.0.10.20")
            self.assertTrue(resp.startswith("535"), resp)
            self.assertNotIn(secret, d.log())
        finally:
            if d is not None:
                d.stop()
            r.stop()


class TestFailClosed(unittest.TestCase):
    def test_no_redis_and_fail_closed_refuses_logins_with_454(self):
        d = Daemon(workers=1, local_domains=["example.org"],
                   conf_extra=auth_block() +
                   'state redis "unix:%s/nobody-here.sock" fail-closed\n'
                   % REDIS.dir)
        d.start()
        try:
            d.wait_log(r"state: Redis at \S+ unavailable .*fail-closed")
            t, r = one_attempt(d.port, "owner@example.org", "owner-pw")
            self.assertTrue(r.startswith("454 4.7.0"), r)
            self.assertRegex(d.log(), r"auth result=tempfail .*reason="
                             r"penalty state unavailable")
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
