"""
test_fleet.py -- the fleet as it is deployed: two portcullis nodes
behind one real HAProxy (round-robin, TCP mode, PROXY protocol v2),
sharing penalties and limits through one real Redis.  Each client binds
its own loopback source address; HAProxy connects to the nodes from
127.0.0.1 and names the client in its PROXY header, so what the nodes
count is the client, not the balancer:

- wrong passwords from one client, spread by the balancer over both
  nodes, grow one delay, and both nodes log the client's address;
- credential stuffing from many addresses meets the account limit on
  whichever node it lands, while the owner, from an address that logged
  in before, still gets in;
- another client behind the same balancer is not punished for the
  guesser (the balancer's own address never is).

HAProxy and Redis are started once for this module.
"""

import os
import subprocess
import shutil
import socket
import tempfile
import time
import unittest

from daemon import Daemon, free_port
from test_penalty import auth_block, can_bind, expected, one_attempt
from test_proxy import HAPROXY
from test_redis import RedisServer

REDIS = None
NODES = []
LB = None


class Balancer:
    """haproxy -db: one round-robin frontend over the nodes' listeners,
    send-proxy-v2."""

    def __init__(self, nodes):
        self.dir = tempfile.mkdtemp(prefix="portcullis-fleet-lb-")
        self.port = free_port()
        conf = os.path.join(self.dir, "haproxy.cfg")
        text = ("defaults\n\tmode tcp\n\ttimeout connect 2s\n"
                "\ttimeout client 30s\n\ttimeout server 30s\n"
                "frontend submission\n\tbind 127.0.0.1:%d\n"
                "\tdefault_backend nodes\n"
                "backend nodes\n\tbalance roundrobin\n" % self.port)
        for k, d in enumerate(nodes):
            text += ("\tserver n%d 127.0.0.1:%d send-proxy-v2 source "
                     "127.0.0.1\n" % (k, d.port))
        with open(conf, "w") as f:
            f.write(text)
        self.log_fh = open(os.path.join(self.dir, "log"), "wb")
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", conf], stdin=subprocess.DEVNULL,
            stdout=self.log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or \
                        time.monotonic() > deadline:
                    self.stop()
                    raise AssertionError("haproxy did not start")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def node():
    return Daemon(workers=2, local_domains=["example.org"],
                  listen="proxy-protocol from { 127.0.0.1/32 }",
                  max_sessions_per_address=1000, max_errors=100,
                  conf_extra=auth_block("\tpenalty account 6 per 1h\n") +
                  'state redis "unix:%s" timeout 300ms\n' % REDIS.sock)


def setUpModule():
    global REDIS, LB
    if not os.path.exists(HAPROXY):
        raise unittest.SkipTest("needs haproxy (make deps)")
    if not can_bind("127.0.9.1"):
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


class TestBehindBalancer(unittest.TestCase):
    def test_1_one_client_over_both_nodes_grows_one_delay(self):
        marks = [d.log_offset() for d in NODES]
        delays = []
        for k in range(1, 7):
            t, r = one_attempt(LB.port, "spread@example.org",
                               "wrong-%d" % k, "127.0.9.1")
            self.assertTrue(r.startswith("535 5.7.8"), r)
            delays.append(t)
        print("\n    6 failures through HAProxy: %s ms"
              % [round(x * 1000) for x in delays])
        for k, t in enumerate(delays, 1):
            self.assertGreaterEqual(t, expected(k) * 0.85, (k, delays))
            self.assertLess(t, expected(k) + 0.35, (k, delays))
        # Both nodes served some, and named the client, never HAProxy.
        for d, mark in zip(NODES, marks):
            text = d.log()[mark:]
            self.assertRegex(text,
                             r"auth result=fail .*client=127\.0\.9\.1 ")
            self.assertNotRegex(text,
                                r"auth result=\w+ .*client=127\.0\.0\.1 ")
        # Another client behind the same balancer: its first failure
        # gets the first delay, not the guesser's.
        t, r = one_attempt(LB.port, "neighbour@example.org", "wrong-x",
                           "127.0.9.2")
        self.assertTrue(r.startswith("535 5.7.8"), r)
        self.assertLess(t, expected(1) + 0.35)

    def test_2_stuffing_meets_the_account_limit_not_the_owner(self):
        user, password = "victim@example.org", "v-pw"
        t, r = one_attempt(LB.port, user, password, "127.0.9.50")
        self.assertTrue(r.startswith("235 "), r)
        replies = []
        for k in range(10):
            t, r = one_attempt(LB.port, user, "stuff-%d" % k,
                               "127.0.10.%d" % (k + 1))
            replies.append(r[:9])
        print("\n    10 addresses through HAProxy: %s" % replies)
        self.assertEqual(replies, ["535 5.7.8"] * 6 + ["454 4.7.0"] * 4)
        # The owner, from the address that logged in, on either node.
        for _ in range(2):
            t, r = one_attempt(LB.port, user, password, "127.0.9.50")
            self.assertTrue(r.startswith("235 "), r)
        t, r = one_attempt(LB.port, user, password, "127.0.10.99")
        self.assertTrue(r.startswith("454 4.7.0"), r)


if __name__ == "__main__":
    unittest.main()
