"""
test_relay.py -- "deliver to relay" against a real next hop on loopback:
aiosmtpd (Debian's python3-aiosmtpd) speaking SMTP or LMTP, run as a
subprocess by smtp_helpers.NextHop.  The envelope and the message must
arrive as sent; the next hop's refusals come back to the client as 554
or 451 with its enhanced status and its text cleaned; a next hop that
is down gives 451 4.4.1.
"""

import os
import random
import shutil
import smtplib
import string
import tempfile
import unittest

from daemon import free_port, make_cert
from smtp_helpers import (DaemonTestCase, NextHop, flood,
                          parse_spooled, received_rx, rss_kib, transaction)
from test_foundation import session_owner

MAIL_OK = "250 2.1.0 Ok\r\n"
RCPT_OK = "250 2.1.5 Ok\r\n"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>\r\n"
RELAYED = "250 2.0.0 Ok: relayed (Message accepted for delivery)\r\n"
SENDER = "sender@client.example"

RULES = [
    ("data", "refuse", "550 5.7.1 no"),
    ("data", "nasty", "550 5.7.1 no\x01way\x7f \u00e9 "),
    ("data", "later", "451 4.3.0 busy"),
    ("rcpt", "unknown", "550 5.1.1 no such user"),
    ("rcpt", "greylist", "450 4.2.0 greylisted"),
    ("data", "slow", "sleep 2"),
]


def split_received(content):
    """(Received header, rest) of what the next hop got."""
    _, received, message = parse_spooled(content)
    return received, message


class RelayTestCase(DaemonTestCase):
    lmtp = False
    hop_tls = False
    relay_opts = ""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="portcullis-relay-")
        tls = None
        if cls.hop_tls:
            tls = (os.path.join(cls.tmp, "cert.pem"),
                   os.path.join(cls.tmp, "key.pem"))
            make_cert(tls[0], tls[1], "nexthop.example")
        cls.hop = NextHop(lmtp=cls.lmtp, rules=RULES, tls=tls)
        cls.daemon_args = dict(
            deliver='relay "%s://127.0.0.1:%d"%s'
            % ("lmtp" if cls.lmtp else "smtp", cls.hop.port, cls.relay_opts))
        try:
            super().setUpClass()
        except BaseException:
            cls.hop.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hop.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.hop.clear()

    def relay_one(self, rcpts, body=b"Subject: relay\r\n\r\nhello\r\n",
                  sender=SENDER):
        s = self.session()
        r = transaction(s, sender=sender, rcpts=rcpts, body=body)
        self.assertEqual(r[:-1], [MAIL_OK] + [RCPT_OK] * len(rcpts) +
                         [GO_AHEAD])
        return s, r[-1]

    def assertArrived(self, sender, rcpts, message, greeting="EHLO",
                      proto="ESMTP", helo="client.example", tls=False):
        (m,) = self.hop.messages()
        self.assertEqual(m["greeting"], greeting)
        self.assertEqual(m["helo"], "test.local")
        self.assertEqual(m["tls"], tls)
        self.assertEqual(m["mail_from"], sender)
        self.assertEqual(m["rcpt_tos"], rcpts)
        received, rest = split_received(m["content"])
        self.assertRegex(received, r"^Received: from %s \(\[127\.0\.0\.1\]\)"
                                   r"\r\n\tby test\.local \(portcullis\) "
                                   r"with %s id [0-9a-f]{16}\.1"
                         % (helo.replace(".", r"\."), proto))
        self.assertEqual(rest, message)
        # Relayed mail is not spooled as well.
        self.assertEqual(self.d.spooled(), [])
        return m


class TestRelaySMTP(RelayTestCase):

    def test_relayed_with_envelope(self):
        rcpts = ["a@test.local", "b@other.example.net"]
        # b@other... is not local: only a local recipient is accepted.
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<%s>" % SENDER), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % rcpts[0]), RCPT_OK)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % rcpts[1]),
                         "554 5.7.1 <%s>: Relay access denied\r\n" % rcpts[1])
        self.assertEqual(s.cmd("RCPT TO:<c@test.local>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        # "..dot" on the wire is the line ".dot": it must reach the next
        # hop stuffed again, and be ".dot" there.
        s.send(b"Subject: relay\r\n\r\nhello\r\n..dot\r\n.\r\n")
        self.assertEqual(s.reply(), RELAYED)
        m = self.assertArrived(SENDER, ["a@test.local", "c@test.local"],
                               b"Subject: relay\r\n\r\nhello\r\n.dot\r\n")
        self.assertEqual(m["mail_options"], [])
        self.assertRegex(self.d.log(), r"relay: >>> RCPT TO:<c@test\.local>")

    def test_received_header_names_the_one_recipient(self):
        s, r = self.relay_one(["one@test.local"])
        self.assertEqual(r, RELAYED)
        (m,) = self.hop.messages()
        received, _ = split_received(m["content"])
        sid = received.split(" id ")[1].split(".")[0]
        self.assertRegex(received, received_rx("client.example", "ESMTP",
                                               sid, rcpt="one@test.local"))

    def test_null_sender(self):
        s, r = self.relay_one(["a@test.local"], sender="")
        self.assertEqual(r, RELAYED)
        # aiosmtpd records the null reverse-path as "<>".
        self.assertArrived("<>", ["a@test.local"],
                           b"Subject: relay\r\n\r\nhello\r\n")
        self.assertRegex(self.d.log(), r"relay: >>> MAIL FROM:<>\n")

    def test_next_hop_refuses(self):
        s, r = self.relay_one(["refuse@test.local"])
        self.assertEqual(r, "554 5.7.1 Next hop refused: no\r\n")
        self.assertEqual(self.hop.messages(), [])
        # The session goes on, and the next message gets through.
        r = transaction(s, rcpts=["a@test.local"])
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD, RELAYED])

    def test_refusal_text_sanitised(self):
        s, r = self.relay_one(["nasty@test.local"])
        self.assertEqual(r, "554 5.7.1 Next hop refused: no?way? ??\r\n")

    def test_next_hop_temporary_failure(self):
        s, r = self.relay_one(["later@test.local"])
        self.assertEqual(r, "451 4.3.0 Next hop temporarily refused: "
                            "busy\r\n")
        self.assertEqual(self.hop.messages(), [])

    def test_next_hop_refuses_recipient(self):
        s, r = self.relay_one(["a@test.local", "unknown@test.local"])
        self.assertEqual(r, "554 5.1.1 Next hop refused: no such user\r\n")
        s, r = self.relay_one(["greylist@test.local"])
        self.assertEqual(r, "451 4.2.0 Next hop temporarily refused: "
                            "greylisted\r\n")
        self.assertEqual(self.hop.messages(), [])

    def test_pipelined_transactions_wait_for_the_next_hop(self):
        s = self.session()
        batch = b""
        for i, rcpt in enumerate(("a@test.local", "refuse@test.local",
                                  "b@test.local")):
            batch += (b"MAIL FROM:<p%d@client.example>\r\n"
                      b"RCPT TO:<%s>\r\nDATA\r\n"
                      b"Subject: %d\r\n\r\nbody %d\r\n.\r\n"
                      % (i, rcpt.encode(), i, i))
        s.send(batch + b"QUIT\r\n")
        out = s.read_all()
        self.assertEqual(out, (MAIL_OK + RCPT_OK + GO_AHEAD + RELAYED +
                               MAIL_OK + RCPT_OK + GO_AHEAD +
                               "554 5.7.1 Next hop refused: no\r\n" +
                               MAIL_OK + RCPT_OK + GO_AHEAD + RELAYED +
                               "221 2.0.0 Bye\r\n"))
        msgs = self.hop.messages()
        self.assertEqual([(m["mail_from"], m["rcpt_tos"]) for m in msgs],
                         [("p0@client.example", ["a@test.local"]),
                          ("p2@client.example", ["b@test.local"])])
        self.assertTrue(msgs[1]["content"].endswith(b"\r\n\r\nbody 2\r\n"))

    def test_input_while_waiting_for_the_next_hop_is_bounded(self):
        """While the session waits for the next hop's answer to the dot
        it takes no commands; what the client sends meanwhile must not
        pile up in the worker's memory without limit."""
        s = self.session()
        worker = session_owner(self.d, s.sock)
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<slow@test.local>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        before = rss_kib(worker)
        s.send(b"Subject: slow\r\n\r\nx\r\n.\r\n")
        # The next hop takes 2 s to answer; meanwhile, a flood.
        sent = flood(s.sock, b"NOOP\r\n" * 100000, 24 * 1000 * 1000,
                     seconds=0.5)
        grown = rss_kib(worker) - before
        s.sock.settimeout(10)
        self.assertEqual(s.reply(), RELAYED)
        self.assertLess(grown, 8 * 1024,
                        "worker grew by %d KiB after %d octets sent while "
                        "waiting for the next hop" % (grown, sent))

    def test_8bitmime_and_smtputf8_passed_on(self):
        s = self.session()
        sender = "j\u00f6rg@client.example"
        self.assertEqual(s.cmd("MAIL FROM:<%s> BODY=8BITMIME SMTPUTF8"
                               % sender), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<a@test.local>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        body = "Subject: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n".encode()
        s.send(body + b".\r\n")
        self.assertEqual(s.reply(), RELAYED)
        m = self.assertArrived(sender, ["a@test.local"], body)
        self.assertEqual(sorted(m["mail_options"]),
                         ["BODY=8BITMIME", "SMTPUTF8"])

    def test_large_message_streams_through(self):
        # Over DELIVER_HIGH_WATER: the session must pause and resume.
        rnd = random.Random(7)
        lines = [b"Subject: large", b""]
        size = 0
        while size < 1024 * 1024:
            line = "".join(rnd.choice(string.ascii_letters + ". ")
                           for _ in range(rnd.randrange(0, 78))).encode()
            lines.append(line)
            size += len(line) + 2
        body = b"\r\n".join(lines) + b"\r\n"
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as c:
            c.ehlo("large.example")
            self.assertEqual(c.mail(SENDER), (250, b"2.1.0 Ok"))
            self.assertEqual(c.rcpt("a@test.local"), (250, b"2.1.5 Ok"))
            self.assertEqual(c.data(body), (250, b"2.0.0 Ok: relayed "
                                                 b"(Message accepted for "
                                                 b"delivery)"))
        self.assertArrived(SENDER, ["a@test.local"], body,
                           helo="large.example")


class TestRelayLMTP(RelayTestCase):
    lmtp = True

    def test_relayed_over_lmtp(self):
        s, r = self.relay_one(["a@test.local", "b@test.local"],
                              body=b"Subject: lmtp\r\n\r\n..dot\r\n")
        self.assertEqual(r, RELAYED)
        self.assertArrived(SENDER, ["a@test.local", "b@test.local"],
                           b"Subject: lmtp\r\n\r\n.dot\r\n", greeting="LHLO")

    def test_one_recipient_refused_fails_the_message(self):
        s, r = self.relay_one(["a@test.local", "refuse@test.local"])
        self.assertEqual(r, "554 5.7.1 Next hop refused: no\r\n")

    def test_temporary_failure_wins(self):
        s, r = self.relay_one(["refuse@test.local", "later@test.local",
                               "a@test.local"])
        self.assertEqual(r, "451 4.3.0 Next hop temporarily refused: "
                            "busy\r\n")


class TestRelayDown(DaemonTestCase):
    daemon_args = dict(deliver='relay "smtp://127.0.0.1:%d"' % free_port())

    def test_next_hop_unreachable(self):
        s = self.session()
        r = transaction(s, rcpts=["a@test.local"])
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD,
                             "451 4.4.1 Next hop unreachable\r\n"])
        self.assertEqual(self.d.spooled(), [])
        self.assertEqual(s.cmd("NOOP"), "250 2.0.0 Ok\r\n")


class TestRelayTLS(RelayTestCase):
    hop_tls = True
    relay_opts = " tls"

    def test_relayed_over_starttls(self):
        s, r = self.relay_one(["a@test.local"])
        self.assertEqual(r, RELAYED)
        self.assertArrived(SENDER, ["a@test.local"],
                           b"Subject: relay\r\n\r\nhello\r\n", tls=True)
        self.assertRegex(self.d.log(), r"relay: >>> STARTTLS")


if __name__ == "__main__":
    unittest.main()
