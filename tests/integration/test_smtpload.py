"""
test_smtpload.py -- the benchmark's load generator against the real
daemon: what it counts must be what happened, and a wrong reply must
never pass for a success.
"""

import json
import os
import socket
import subprocess
import threading
import time
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

    def test_tls_replies_are_not_held_back(self):
        # A pipelined transaction over STARTTLS: each reply is a TLS
        # record of its own, written to the socket by OpenSSL.  Held by
        # Nagle's algorithm until the client's delayed ACK, a
        # transaction took 40 ms or more (STARTTLS c=1 fell from ~160
        # to ~20 sessions/s); sent at once, a few ms.
        rc, res = self.run_load("-n", 20, "-c", 1, "--auth", self.users,
                                "--starttls", "--to", "r@example.org")
        self.assertEqual(rc, 0, res)
        self.assertEqual(res["errors"], 0, res)
        self.assertLess(res["transaction_ms"]["p50"], 30, res)

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


class PatientServer:
    """A minimal SMTP server that offers PIPELINING and, before it
    answers a command, waits a moment and counts the commands received
    and not yet answered: a client that waits for each reply never has
    more than one outstanding; a pipelining one has MAIL, RCPT and DATA
    in flight together."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.max_outstanding = 0
        self.commands = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                self.session(conn)

    def session(self, conn):
        buf = b""
        conn.sendall(b"220 patient ESMTP\r\n")
        in_data = False
        while True:
            if in_data:
                while b"\r\n.\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                buf = buf.split(b"\r\n.\r\n", 1)[1]
                in_data = False
                conn.sendall(b"250 2.0.0 queued\r\n")
                continue
            while b"\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            # Give a pipelining client time to send what follows.
            time.sleep(0.05)
            conn.setblocking(False)
            try:
                buf += conn.recv(65536)
            except BlockingIOError:
                pass
            conn.setblocking(True)
            self.max_outstanding = max(self.max_outstanding,
                                       buf.count(b"\r\n"))
            line, buf = buf.split(b"\r\n", 1)
            self.commands += 1
            verb = line[:4].upper()
            if verb == b"EHLO":
                conn.sendall(b"250-patient\r\n250-PIPELINING\r\n"
                             b"250 8BITMIME\r\n")
            elif verb == b"DATA":
                conn.sendall(b"354 go ahead\r\n")
                in_data = True
            elif verb == b"QUIT":
                conn.sendall(b"221 bye\r\n")
                return
            else:
                conn.sendall(b"250 ok\r\n")

    def close(self):
        self.sock.close()


class TestNoPipelining(unittest.TestCase):
    def run_against(self, *extra):
        srv = PatientServer()
        try:
            p = subprocess.run([SMTPLOAD, "-p", str(srv.port), "--json",
                                "-n", "2", "-m", "2", "-s", "300"] +
                               list(extra), capture_output=True, text=True,
                               timeout=60)
        finally:
            srv.close()
        return p.returncode, json.loads(p.stdout), srv

    def test_waits_for_each_reply(self):
        rc, res, srv = self.run_against("--no-pipelining")
        self.assertEqual(rc, 0, res)
        self.assertEqual(res["messages"], 4)
        self.assertIs(res["pipelining"], False)
        # EHLO, then MAIL, RCPT, DATA per message, QUIT: each alone.
        self.assertEqual(srv.commands, 2 * (1 + 2 * 3 + 1))
        self.assertEqual(srv.max_outstanding, 1)

    def test_pipelines_when_offered(self):
        # The control: the same server does see a pipelining client.
        rc, res, srv = self.run_against()
        self.assertEqual(rc, 0, res)
        self.assertEqual(res["messages"], 4)
        self.assertIs(res["pipelining"], True)
        self.assertGreaterEqual(srv.max_outstanding, 3)


if __name__ == "__main__":
    unittest.main()
