"""
test_tls_tickets.py -- TLS session resumption with the ticket keys
master makes, hands every worker and rotates (master/tickets.c): a
ticket issued by one worker resumes on the others, on STARTTLS and on
implicit TLS, with TLS 1.3 and 1.2; a ticket whose key has rotated out
gets a full handshake; tls-tickets off means no resumption at all, and
turning it off by a reload wipes the keys.
"""

import os
import re
import signal
import socket
import ssl
import time
import unittest

from daemon import Daemon
from smtp_helpers import tls_client_context


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            raise AssertionError("connection closed: %r" % lines)
        lines.append(line)
        if line[3:4] != b"-":
            return lines


def login(d, ctx, session=None, listener="main"):
    """One TLS session to d; (reused, the session to resume next)."""
    s = socket.create_connection(("127.0.0.1", d.ports[listener]),
                                 timeout=10)
    try:
        if listener == "main":
            f = s.makefile("rb")
            read_reply(f)
            s.sendall(b"EHLO client.example\r\n")
            read_reply(f)
            s.sendall(b"STARTTLS\r\n")
            assert read_reply(f)[0].startswith(b"220"), "STARTTLS"
            f.close()
        t = ctx.wrap_socket(s, server_hostname="test.local",
                            session=session)
        f = t.makefile("rb")
        if listener != "main":
            read_reply(f)
        # TLS 1.3 tickets come after the handshake: read a reply first.
        t.sendall(b"EHLO client.example\r\n")
        read_reply(f)
        t.sendall(b"QUIT\r\n")
        read_reply(f)
        reused, sess = t.session_reused, t.session
        f.close()
        t.close()
        return reused, sess
    finally:
        s.close()


def context(version=None):
    ctx = tls_client_context()
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


class TestTickets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(workers=3, listen="tls",
                       listeners={"smtps": "smtps"})
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def resumes_everywhere(self, version, listener):
        ctx = context(version)
        mark = self.d.log_offset()
        reused, sess = login(self.d, ctx, listener=listener)
        self.assertFalse(reused)
        for _ in range(12):
            reused, sess = login(self.d, ctx, sess, listener=listener)
            self.assertTrue(reused)
        # Served by more than one worker: the keys are shared.
        text = self.d.log()[mark:]
        pids = set(re.findall(r"\[(\d+)\]: session \w+: TLS established, "
                              r"[^\n]*, resumed", text))
        self.assertGreater(len(pids), 1, text[-2000:])

    def test_tls13_starttls_resumes_on_every_worker(self):
        self.resumes_everywhere(ssl.TLSVersion.TLSv1_3, "main")

    def test_tls12_starttls_resumes_on_every_worker(self):
        self.resumes_everywhere(ssl.TLSVersion.TLSv1_2, "main")

    def test_tls13_smtps_resumes_on_every_worker(self):
        self.resumes_everywhere(ssl.TLSVersion.TLSv1_3, "smtps")

    def test_a_forged_ticket_gets_a_full_handshake(self):
        ctx = context(ssl.TLSVersion.TLSv1_2)
        _, sess = login(self.d, ctx)
        # Another server's ticket (another key name): a full handshake,
        # not a failure.
        other = Daemon(listen="tls")
        try:
            other.start()
            _, foreign = login(other, ctx)
        finally:
            other.stop()
        reused, _ = login(self.d, ctx, foreign)
        self.assertFalse(reused)
        reused, _ = login(self.d, ctx, sess)
        self.assertTrue(reused)


class TestRotation(unittest.TestCase):
    """A key seals for one period, opens for one more, and is gone."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(workers=2, listen="tls",
                       tls_ticket_lifetime="2s")
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_previous_key_still_opens_its_tickets(self):
        ctx = context(ssl.TLSVersion.TLSv1_3)
        mark = self.d.log_offset()
        self.d.wait_log(r"ticket keys rotated", since=mark)
        time.sleep(1.4)
        _, sess = login(self.d, ctx)
        # Sealed just before a rotation, opened just after it by the
        # key that is now the previous one, and replaced.
        mark = self.d.log_offset()
        self.d.wait_log(r"ticket keys rotated", since=mark)
        reused, renewed = login(self.d, ctx, sess)
        self.assertTrue(reused)
        self.assertTrue(login(self.d, ctx, renewed)[0])

    def test_rotated_out_ticket_gets_a_full_handshake(self):
        # (OpenSSL also ends a session at its lifetime, which is the
        # period: the keys are gone by then, whoever asks.)
        ctx = context(ssl.TLSVersion.TLSv1_3)
        _, sess = login(self.d, ctx)
        reused, _ = login(self.d, ctx, sess)
        self.assertTrue(reused)
        time.sleep(4.5)
        reused, fresh = login(self.d, ctx, sess)
        self.assertFalse(reused)
        # The new keys issue tickets that resume.
        reused, _ = login(self.d, ctx, fresh)
        self.assertTrue(reused)


class TestTicketsOff(unittest.TestCase):
    def test_off_never_resumes_and_a_reload_wipes_the_keys(self):
        d = Daemon(listen="tls")
        self.addCleanup(d.stop)
        d.start()
        ctx = context(ssl.TLSVersion.TLSv1_3)
        _, sess = login(d, ctx)
        self.assertTrue(login(d, ctx, sess)[0])
        d.settings["tls_tickets"] = "off"
        d.write_conf()
        mark = d.log_offset()
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log(r"session tickets off, keys wiped", since=mark)
        d.wait_log(r"configuration reloaded", since=mark)
        time.sleep(0.5)
        for _ in range(3):
            reused, s2 = login(d, ctx, sess)
            self.assertFalse(reused)
            self.assertFalse(login(d, ctx, s2)[0])
        # On again: new keys; the ticket from before is not opened.
        del d.settings["tls_tickets"]
        d.write_conf()
        mark = d.log_offset()
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log(r"configuration reloaded", since=mark)
        time.sleep(0.5)
        reused, s3 = login(d, ctx, sess)
        self.assertFalse(reused)
        self.assertTrue(login(d, ctx, s3)[0])


if __name__ == "__main__":
    unittest.main()
