"""
test_smtp.py -- the ESMTP engine against a real portcullisd, over
plaintext: whole transactions with real clients (smtplib, curl, swaks),
every error reply, pipelining, DATA edge cases and SMTP smuggling,
limits, timeouts, and the spool's behaviour when a worker dies.

Every reply is checked whole: code, enhanced status code and text.
"""

import os
import random
import signal
import smtplib
import string
import time
import unittest

from smtp_helpers import (DaemonTestCase, Session, curl_server_lines,
                          envelope_fields, flood, parse_spooled, queued_id,
                          rss_kib, run_curl, run_swaks, swaks_server_lines,
                          transaction)
from test_foundation import session_owner

OK = "250 2.0.0 Ok\r\n"
MAIL_OK = "250 2.1.0 Ok\r\n"
RCPT_OK = "250 2.1.5 Ok\r\n"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>\r\n"
BYE = "221 2.0.0 Bye\r\n"
BARE_NL = ("550 5.5.2 Bare CR or LF in message; lines must end with "
           "CR LF\r\n")
TOO_BIG = ("552 5.3.4 Message size exceeds fixed maximum message "
           "size\r\n")
SENDER = "sender@client.example"
RCPT = "user@example.org"
MAX_SIZE = 2 * 1024 * 1024


def split_replies(text):
    """A stream of replies, as a list of whole replies."""
    out, cur = [], ""
    for line in text.split("\r\n")[:-1]:
        cur += line + "\r\n"
        if line[3:4] != "-":
            out.append(cur)
            cur = ""
    assert cur == "" and text.endswith("\r\n") or text == "", repr(text)
    return out


class TestTransactions(DaemonTestCase):
    """Full transactions, over plaintext, with each real client."""

    daemon_args = dict(local_domains=["example.org"], max_recipients=3,
                       max_message_size="2M",
                       listeners={"auth": "auth require"})

    def test_smtplib(self):
        body = (b"From: <sender@client.example>\r\nTo: <user@example.org>\r\n"
                b"Subject: smtplib\r\n\r\nHello over plaintext.\r\n"
                b"..a line that started with a dot\r\n")
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=10) as c:
            self.assertEqual(c.ehlo("smtplib.example")[0], 250)
            self.assertEqual(c.mail(SENDER), (250, b"2.1.0 Ok"))
            self.assertEqual(c.rcpt(RCPT), (250, b"2.1.5 Ok"))
            code, text = c.data(body)
            self.assertEqual(code, 250)
            qid = queued_id("250 %s\r\n" % text.decode())
            self.assertEqual(c.quit(), (221, b"2.0.0 Bye"))
        # smtplib stuffs the dots and the engine takes them out again:
        # the spool holds the message as given to smtplib.
        self.assertSpooled(qid, SENDER, [RCPT], "smtplib.example", "ESMTP",
                           body)

    def test_curl(self):
        body = (b"From: <sender@client.example>\r\nSubject: curl\r\n\r\n"
                b"Hello from curl.\r\n.leading dot\r\n")
        rc, err = run_curl(
            ["--url", "smtp://127.0.0.1:%d/curl.example" % self.d.port,
             "--mail-from", SENDER, "--mail-rcpt", RCPT], body)
        self.assertEqual(rc, 0, err)
        lines = curl_server_lines(err)
        self.assertIn("250 2.1.0 Ok", lines)
        self.assertIn("250 2.1.5 Ok", lines)
        self.assertIn("354 End data with <CR><LF>.<CR><LF>", lines)
        (queued,) = [l for l in lines if l.startswith("250 2.0.0 Ok: queued")]
        qid = queued_id(queued + "\r\n")
        self.assertSpooled(qid, SENDER, [RCPT], "curl.example", "ESMTP", body)

    def test_swaks(self):
        rc, out = run_swaks(
            ["--server", "127.0.0.1", "--port", str(self.d.port),
             "--helo", "swaks.example", "--from", SENDER, "--to", RCPT,
             "--data", "Subject: swaks\n\nHello from swaks.\n.dot line"])
        self.assertEqual(rc, 0, out)
        lines = swaks_server_lines(out)
        self.assertEqual(lines[0], "220 test.local ESMTP portcullis")
        self.assertIn("250 2.1.0 Ok", lines)
        self.assertIn("250 2.1.5 Ok", lines)
        (queued,) = [l for l in lines if l.startswith("250 2.0.0 Ok: queued")]
        self.assertEqual(lines[-1], "221 2.0.0 Bye")
        qid = queued_id(queued + "\r\n")
        self.assertSpooled(qid, SENDER, [RCPT], "swaks.example", "ESMTP",
                           b"Subject: swaks\r\n\r\nHello from swaks.\r\n"
                           b".dot line\r\n")

    def test_helo_transaction_says_smtp(self):
        s = self.session(ehlo=False)
        self.assertEqual(s.cmd("HELO old.example"),
                         "250 test.local Hello\r\n")
        body = b"Subject: helo\r\n\r\nplain SMTP\r\n"
        r = transaction(s, body=body)
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "old.example",
                           "SMTP", body)

    def test_null_sender_and_two_messages_in_one_session(self):
        s = self.session()
        r1 = transaction(s, sender="", body=b"Subject: one\r\n\r\n1\r\n")
        r2 = transaction(s, body=b"Subject: two\r\n\r\n2\r\n")
        self.assertEqual(r1[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertEqual(r2[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        q1, q2 = queued_id(r1[3]), queued_id(r2[3])
        self.assertNotEqual(q1, q2)
        sid1 = self.assertSpooled(q1, "", [RCPT], "client.example", "ESMTP",
                                  b"Subject: one\r\n\r\n1\r\n")
        # The second message of the session is numbered .2.
        sid2 = self.assertSpooled(q2, SENDER, [RCPT], "client.example",
                                  "ESMTP", b"Subject: two\r\n\r\n2\r\n",
                                  n=2)
        self.assertEqual(sid1, sid2)

    def test_ehlo_keywords(self):
        s = self.session(ehlo=False)
        self.assertEqual(s.cmd("EHLO client.example"),
                         "250-test.local Hello 127.0.0.1\r\n"
                         "250-PIPELINING\r\n"
                         "250-SIZE %d\r\n"
                         "250-8BITMIME\r\n"
                         "250-ENHANCEDSTATUSCODES\r\n"
                         # This daemon has an auth listener, so a checker
                         # (lmdb): AUTH is offered, in the clear on
                         # loopback only, and without TLS no -PLUS.
                         "250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"
                         "250 SMTPUTF8\r\n" % MAX_SIZE)

    def test_pipelined_transactions(self):
        s = self.session()
        bodies = [("Subject: pipelined %d\r\n\r\nmessage %d\r\n" % (i, i))
                  .encode() for i in range(3)]
        batch = b""
        for i, body in enumerate(bodies):
            batch += (b"MAIL FROM:<p%d@client.example>\r\n"
                      b"RCPT TO:<user@example.org>\r\nDATA\r\n" % i)
            batch += body + b".\r\n"
        batch += b"NOOP\r\nQUIT\r\n"
        s.send(batch)
        replies = split_replies(s.read_all())
        self.assertEqual(len(replies), 3 * 4 + 2, replies)
        qids = []
        for i in range(3):
            self.assertEqual(replies[4 * i:4 * i + 3],
                             [MAIL_OK, RCPT_OK, GO_AHEAD])
            qids.append(queued_id(replies[4 * i + 3]))
        self.assertEqual(replies[12:], [OK, BYE])
        self.assertEqual(len(set(qids)), 3)
        for i, (qid, body) in enumerate(zip(qids, bodies)):
            self.assertSpooled(qid, "p%d@client.example" % i, [RCPT],
                               "client.example", "ESMTP", body, n=i + 1)

    def test_one_mebibyte_message(self):
        rnd = random.Random(1)
        lines = [b"From: <sender@client.example>", b"Subject: big", b""]
        size = 0
        while size < 1024 * 1024:
            line = "".join(rnd.choice(string.ascii_letters + " .")
                           for _ in range(rnd.randrange(0, 78))).encode()
            if rnd.random() < 0.05:
                line = b"." + line      # dot-stuffing on the way
            lines.append(line)
            size += len(line) + 2
        body = b"\r\n".join(lines) + b"\r\n"
        self.assertGreater(len(body), 1024 * 1024)
        with smtplib.SMTP("127.0.0.1", self.d.port, timeout=20) as c:
            c.ehlo("big.example")
            self.assertEqual(c.mail(SENDER, ["SIZE=%d" % len(body)]),
                             (250, b"2.1.0 Ok"))
            self.assertEqual(c.rcpt(RCPT), (250, b"2.1.5 Ok"))
            code, text = c.data(body)
            self.assertEqual(code, 250, text)
            qid = queued_id("250 %s\r\n" % text.decode())
        self.assertSpooled(qid, SENDER, [RCPT], "big.example", "ESMTP", body)

    def test_bare_lf_refused(self):
        before = self.d.spooled()
        s = self.session()
        r = transaction(s, body=b"Subject: bare\r\n\r\none\ntwo\r\n")
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD, BARE_NL])
        self.assertNothingSpooled(before)
        # The session goes on, with a fresh transaction.
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"),
                         "503 5.5.1 Need MAIL before RCPT\r\n")
        self.assertEqual(s.cmd("NOOP"), OK)

    def test_bare_cr_refused(self):
        before = self.d.spooled()
        s = self.session()
        r = transaction(s, body=b"Subject: bare\r\n\r\none\rtwo\r\n")
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD, BARE_NL])
        self.assertNothingSpooled(before)

    def test_smuggling(self):
        smuggled = (b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@example.org>\r\n"
                    b"DATA\r\nsmuggled\r\n.\r\n")
        for seq in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"):
            with self.subTest(seq=seq):
                before = self.d.spooled()
                s = self.session()
                s.send(b"MAIL FROM:<sender@client.example>\r\n"
                       b"RCPT TO:<user@example.org>\r\nDATA\r\n"
                       b"Subject: innocent\r\n\r\nhello" + seq + smuggled +
                       b"QUIT\r\n")
                replies = split_replies(s.read_all())
                # One final reply for the whole thing, never a 250 for
                # the smuggled message.
                self.assertEqual(replies, [MAIL_OK, RCPT_OK, GO_AHEAD,
                                           BARE_NL, BYE])
                self.assertNothingSpooled(before)

    def test_smuggling_without_bare_newlines_is_one_message(self):
        # A real CR LF . CR LF ends the message: what follows is
        # commands, and each gets its reply.
        s = self.session()
        s.send(b"MAIL FROM:<sender@client.example>\r\n"
               b"RCPT TO:<user@example.org>\r\nDATA\r\n"
               b"Subject: t\r\n\r\nhello\r\n.\r\n"
               b"MAIL FROM:<second@x>\r\nRCPT TO:<user@example.org>\r\n"
               b"DATA\r\nsecond\r\n.\r\nQUIT\r\n")
        replies = split_replies(s.read_all())
        self.assertEqual(len(replies), 9, replies)
        self.assertEqual(replies[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertEqual(replies[4:7], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertEqual(replies[8], BYE)
        self.assertSpooled(queued_id(replies[3]), SENDER, [RCPT],
                           "client.example", "ESMTP",
                           b"Subject: t\r\n\r\nhello\r\n")
        self.assertSpooled(queued_id(replies[7]), "second@x", [RCPT],
                           "client.example", "ESMTP", b"second\r\n", n=2)

    def test_long_line_in_message_refused(self):
        before = self.d.spooled()
        s = self.session()
        r = transaction(s, body=b"Subject: long\r\n\r\n" + b"l" * 1001 +
                        b"\r\n")
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD,
                             "554 5.6.0 Message has lines over 1000 "
                             "octets\r\n"])
        self.assertNothingSpooled(before)
        # 998 octets and CR LF is the longest line allowed.
        body = b"Subject: long\r\n\r\n" + b"l" * 998 + b"\r\n"
        r = transaction(s, body=body)
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "client.example",
                           "ESMTP", body, n=1)

    def test_nul_in_message_refused(self):
        before = self.d.spooled()
        s = self.session()
        r = transaction(s, body=b"Subject: nul\r\n\r\na\0b\r\n")
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD,
                             "554 5.6.0 NUL octet in message\r\n"])
        self.assertNothingSpooled(before)

    def test_empty_message(self):
        s = self.session()
        r = transaction(s, body=b"")
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "client.example",
                           "ESMTP", b"")

    def test_helo_name_cleaned_in_received(self):
        s = self.session(ehlo=False)
        s.ehlo("evil(x)\u00e9")
        r = transaction(s, body=b"Subject: h\r\n\r\nx\r\n")
        # Only printable ASCII, without parentheses, reaches the header.
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "evil_x___",
                           "ESMTP", b"Subject: h\r\n\r\nx\r\n")

    def test_nothing_after_quit_is_executed(self):
        s = self.session()
        s.send(b"NOOP\r\nQUIT\r\nMAIL FROM:<a@client.example>\r\n"
               b"NOOP\r\n")
        self.assertEqual(s.read_all(), OK + BYE)

    # --- sequence errors -------------------------------------------

    def test_rcpt_before_mail(self):
        s = self.session()
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"),
                         "503 5.5.1 Need MAIL before RCPT\r\n")

    def test_data_before_rcpt(self):
        s = self.session()
        self.assertEqual(s.cmd("DATA"),
                         "503 5.5.1 Need RCPT before DATA\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        # RFC 5321 3.3 allows 503 or 554 when no RCPT was accepted.
        self.assertEqual(s.cmd("DATA"),
                         "554 5.5.1 No valid recipients\r\n")
        self.assertEqual(s.cmd("DATA extra"), "501 5.5.4 Syntax: DATA\r\n")

    def test_mail_before_ehlo(self):
        s = self.session(ehlo=False)
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "503 5.5.1 Send HELO or EHLO first\r\n")

    def test_nested_mail(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("MAIL FROM:<b@client.example>"),
                         "503 5.5.1 Nested MAIL command\r\n")

    # --- syntax errors ---------------------------------------------

    def test_mail_without_brackets(self):
        s = self.session()
        for arg in ("FROM:a@client.example", "FROM:<a@client.example",
                    "FROM <a@client.example>", "FROM:<a b@client.example>"):
            with self.subTest(arg=arg):
                self.assertEqual(s.cmd("MAIL " + arg),
                                 "501 5.1.7 Bad sender address syntax\r\n")
        # Still usable afterwards (max-errors is 10 here).
        self.assertEqual(s.cmd("MAIL FROM: <a@client.example>"), MAIL_OK)

    def test_rcpt_bad_syntax(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        for arg in ("TO:user@example.org", "TO:<no-at-sign>", "TO:<>",
                    "TO:<a@b@example.org>"):
            with self.subTest(arg=arg):
                self.assertEqual(s.cmd("RCPT " + arg),
                                 "501 5.1.3 Bad recipient address "
                                 "syntax\r\n")
        self.assertEqual(s.cmd("RCPT TO:<user@example.org> NOTIFY=NEVER"),
                         "555 5.5.4 Unsupported RCPT parameter\r\n")

    def test_helo_without_argument(self):
        s = self.session(ehlo=False)
        self.assertEqual(s.cmd("HELO"), "501 5.5.4 Syntax: HELO hostname\r\n")
        self.assertEqual(s.cmd("EHLO"), "501 5.5.4 Syntax: EHLO hostname\r\n")
        self.assertEqual(s.cmd("EHLO two words"),
                         "501 5.5.4 Syntax: EHLO hostname\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "503 5.5.1 Send HELO or EHLO first\r\n")

    def test_unknown_command(self):
        s = self.session()
        self.assertEqual(s.cmd("FROBNICATE now"),
                         "500 5.5.1 Command unrecognized\r\n")
        for verb in ("EXPN postmaster", "ETRN example.org", "BDAT 10"):
            self.assertEqual(s.cmd(verb),
                             "502 5.5.1 Command not implemented\r\n")

    def test_line_too_long(self):
        s = self.session()
        line = "NOOP " + "x" * 595
        self.assertEqual(len(line), 600)
        self.assertEqual(s.cmd(line), "500 5.5.2 Line too long\r\n")
        self.assertEqual(s.cmd("NOOP"), OK)
        r = transaction(s)
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        queued_id(r[3])

    def test_huge_line_gets_one_reply(self):
        """An overlong line that arrives in pieces gets one 500, and the
        command pipelined after it is answered at once."""
        s = self.session()
        s.sock.settimeout(2)
        for _ in range(10):
            s.send(b"X" * 1000)
            time.sleep(0.01)
        s.send(b"\r\nNOOP\r\n")
        self.assertEqual(s.reply(), "500 5.5.2 Line too long\r\n")
        self.assertEqual(s.reply(), OK)
        self.assertTrue(s.nothing_within(0.2))

    def test_nul_in_command(self):
        s = self.session()
        self.assertEqual(s.cmd("NOOP \0x"),
                         "500 5.5.2 NUL octet in command\r\n")
        self.assertEqual(s.cmd("NOOP"), OK)

    # --- limits and policy -----------------------------------------

    def test_too_many_recipients(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        rcpts = ["r%d@example.org" % i for i in range(4)]
        for r in rcpts[:3]:
            self.assertEqual(s.cmd("RCPT TO:<%s>" % r), RCPT_OK)
        self.assertEqual(s.cmd("RCPT TO:<%s>" % rcpts[3]),
                         "452 4.5.3 Too many recipients\r\n")
        # The transaction goes on with the three accepted.
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        s.send(b"Subject: three\r\n\r\nx\r\n.\r\n")
        qid = queued_id(s.reply())
        self.assertSpooled(qid, "a@client.example", rcpts[:3],
                           "client.example", "ESMTP",
                           b"Subject: three\r\n\r\nx\r\n")

    def test_size_announced_too_big(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> SIZE=%d"
                               % (MAX_SIZE + 1)), TOO_BIG)
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> SIZE=%d"
                               % MAX_SIZE), MAIL_OK)
        self.assertEqual(s.cmd("RSET"), OK)
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> SIZE=huge"),
                         "501 5.5.4 Bad SIZE parameter\r\n")

    def test_size_unannounced_too_big(self):
        before = self.d.spooled()
        s = self.session()
        line = b"y" * 998 + b"\r\n"
        body = b"Subject: big\r\n\r\n" + line * (MAX_SIZE // len(line) + 64)
        r = transaction(s, body=body)
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD, TOO_BIG])
        self.assertNothingSpooled(before)
        self.assertEqual(s.cmd("NOOP"), OK)

    def test_size_boundary(self):
        """max-message-size counts the message as received (after the
        dots are taken out, without our Received header)."""
        head = b"Subject: edge\r\n\r\n"
        line = b"e" * 998 + b"\r\n"
        n, rest = divmod(MAX_SIZE - len(head), len(line))
        body = head + line * n + b"f" * (rest - 2) + b"\r\n"
        self.assertEqual(len(body), MAX_SIZE)
        s = self.session()
        r = transaction(s, body=body)
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "client.example",
                           "ESMTP", body)
        before = self.d.spooled()
        r = transaction(s, body=b"g" + body)
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD, TOO_BIG])
        self.assertNothingSpooled(before)

    def test_unknown_mail_parameter(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> FOO=bar"),
                         "555 5.5.4 Unsupported MAIL parameter FOO\r\n")
        # RFC 5321 4.2: reply text is printable; a bare CR is part of
        # the line read, and was sent back (found by fuzz_smtp_cmd).
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> X\rY\x01"),
                         "555 5.5.4 Unsupported MAIL parameter X?Y?\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> BODY=BINARYMIME"),
                         "501 5.5.4 Bad BODY parameter\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example> BODY=8BITMIME "
                               "SMTPUTF8"), MAIL_OK)

    def test_body_and_smtputf8_in_the_envelope(self):
        s = self.session()
        sender = "j\u00f6rg@client.example"
        self.assertEqual(s.cmd("MAIL FROM:<%s> BODY=8BITMIME SMTPUTF8"
                               % sender), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<\u00fcser@example.org>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        body = "Subject: 8bit\r\n\r\nGr\u00fc\u00dfe\r\n".encode()
        s.send(body + b".\r\n")
        qid = queued_id(s.reply())
        env, _, message = parse_spooled(self.d.spool_file(qid))
        f = envelope_fields(env)
        self.assertEqual(f["Return-Path"], ["<%s>" % sender])
        self.assertEqual(f["X-Portcullis-Envelope-To"],
                         ["<\u00fcser@example.org>"])
        self.assertEqual(f["X-Portcullis-Body"], ["8BITMIME"])
        self.assertEqual(f["X-Portcullis-SMTPUTF8"], ["yes"])
        self.assertEqual(message, body)

    def test_non_ascii_address_needs_smtputf8(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<j\u00f6rg@client.example>"),
                         "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<j\u00f6rg@client.example> "
                               "SMTPUTF8"), MAIL_OK)

    def test_vrfy(self):
        s = self.session()
        self.assertEqual(s.cmd("VRFY user@example.org"),
                         "252 2.5.0 Cannot VRFY user, but will accept "
                         "message and attempt delivery\r\n")
        self.assertEqual(s.cmd("VRFY"), "501 5.5.4 Syntax: VRFY address\r\n")

    def test_noop_and_rset(self):
        s = self.session()
        self.assertEqual(s.cmd("NOOP"), OK)
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"), RCPT_OK)
        self.assertEqual(s.cmd("RSET"), OK)
        # RSET ended the transaction.
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"),
                         "503 5.5.1 Need MAIL before RCPT\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"), RCPT_OK)
        # So does EHLO (RFC 5321 4.1.4).
        s.ehlo()
        self.assertEqual(s.cmd("DATA"),
                         "503 5.5.1 Need RCPT before DATA\r\n")

    def test_help(self):
        s = self.session()
        self.assertEqual(s.cmd("HELP"),
                         "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
                         "NOOP QUIT VRFY HELP STARTTLS\r\n"
                         "214 2.0.0 See RFC 5321\r\n")

    def test_relay_denied_and_local_domains(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<x@foreign.example>"),
                         "554 5.7.1 <x@foreign.example>: Relay access "
                         "denied\r\n")
        # With local-domains set, the hostname is not local either.
        self.assertEqual(s.cmd("RCPT TO:<x@test.local>"),
                         "554 5.7.1 <x@test.local>: Relay access denied\r\n")
        self.assertEqual(s.cmd("DATA"), "554 5.5.1 No valid recipients\r\n")
        self.assertEqual(s.cmd("RCPT TO:<Someone@EXAMPLE.ORG>"), RCPT_OK)
        self.assertEqual(s.cmd("RCPT TO:<postmaster>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        s.send(b"Subject: local\r\n\r\nx\r\n.\r\n")
        qid = queued_id(s.reply())
        self.assertSpooled(qid, "a@client.example",
                           ["Someone@EXAMPLE.ORG", "postmaster"],
                           "client.example", "ESMTP",
                           b"Subject: local\r\n\r\nx\r\n")
        self.assertRegex(self.d.log(), r"relay to <x@foreign\.example> "
                                       r"denied")

    def test_auth_required_listener(self):
        s = self.session("auth")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "530 5.7.0 Authentication required\r\n")
        self.assertEqual(s.cmd("RCPT TO:<user@example.org>"),
                         "503 5.5.1 Need MAIL before RCPT\r\n")

    def test_starttls_not_offered(self):
        s = self.session()
        self.assertEqual(s.cmd("STARTTLS"),
                         "502 5.5.1 STARTTLS not available\r\n")
        self.assertEqual(s.cmd("NOOP"), OK)

    def test_quit(self):
        s = self.session()
        self.assertEqual(s.cmd("QUIT"), BYE)
        self.assertTrue(s.closed_within(2))


class TestMaxErrors(DaemonTestCase):
    daemon_args = dict(max_errors=3)

    def test_too_many_errors(self):
        s = self.session()
        s.send(b"FOO\r\nBAR\r\nMAIL FROM:a\r\nNOOP\r\n")
        self.assertEqual(s.read_all(),
                         "500 5.5.1 Command unrecognized\r\n"
                         "500 5.5.1 Command unrecognized\r\n"
                         "501 5.1.7 Bad sender address syntax\r\n"
                         "421 4.7.0 test.local Too many errors, closing "
                         "transmission channel\r\n")
        self.d.wait_log(r"too many errors, closing")

    def test_errors_are_per_session(self):
        for _ in range(2):
            s = self.session()
            self.assertEqual(s.cmd("FOO"), "500 5.5.1 Command unrecognized\r\n")
            self.assertEqual(s.cmd("FOO"), "500 5.5.1 Command unrecognized\r\n")
            self.assertEqual(s.cmd("NOOP"), OK)
            s.close()


class TestRecipientLimit(DaemonTestCase):
    daemon_args = dict(max_recipients=3, max_errors=3)

    def test_surplus_recipients_do_not_end_the_session(self):
        """RFC 5321 4.5.3.1.10: 452 for the recipients over the limit,
        and the client sends them in a later transaction.  That is not
        a client error: it must not count towards max-errors."""
        s = self.session()
        rcpts = ["r%d@test.local" % i for i in range(6)]
        s.send(b"MAIL FROM:<a@client.example>\r\n" +
               b"".join(b"RCPT TO:<%s>\r\n" % r.encode() for r in rcpts) +
               b"DATA\r\nSubject: many\r\n\r\nx\r\n.\r\nQUIT\r\n")
        replies = split_replies(s.read_all())
        self.assertEqual(replies[:7], [MAIL_OK] + [RCPT_OK] * 3 +
                         ["452 4.5.3 Too many recipients\r\n"] * 3)
        self.assertEqual(len(replies), 10, replies)
        self.assertEqual(replies[7], GO_AHEAD)
        self.assertEqual(replies[9], BYE)
        self.assertSpooled(queued_id(replies[8]), "a@client.example",
                           rcpts[:3], "client.example", "ESMTP",
                           b"Subject: many\r\n\r\nx\r\n")


class TestMaxSessions(DaemonTestCase):
    daemon_args = dict(workers=1, max_sessions=1)

    def test_second_session_refused(self):
        s1 = self.session(ehlo=False)
        s2 = Session.open(self.d, greet=False)
        self.addCleanup(s2.close)
        self.assertEqual(s2.read_all(),
                         "421 4.7.0 test.local Too many sessions, try again "
                         "later\r\n")
        self.assertEqual(s1.cmd("NOOP"), OK)


class TestOutputBounded(DaemonTestCase):
    daemon_args = dict(workers=1)

    def test_client_that_does_not_read_cannot_grow_worker_memory(self):
        """A client that pipelines commands and never reads the replies
        must be stopped by TCP flow control (the server stops reading
        while its replies are not taken), not buffered in the worker:
        one such client would otherwise take the memory of every
        session on that worker."""
        s = self.session()
        worker = session_owner(self.d, s.sock)
        before = rss_kib(worker)
        sent = flood(s.sock, b"NOOP\r\n" * 100000, 36 * 1000 * 1000)
        time.sleep(0.3)
        grown = rss_kib(worker) - before
        self.assertLess(grown, 16 * 1024,
                        "worker grew by %d KiB after %d octets of NOOP "
                        "that were never read" % (grown, sent))


class TestNormalize(DaemonTestCase):
    daemon_args = dict(bare_newlines="normalize")

    def test_bare_newlines_normalized(self):
        s = self.session()
        r = transaction(s, rcpts=["user@test.local"],
                        body=b"Subject: n\r\n\r\none\ntwo\rthree\r\n")
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertSpooled(queued_id(r[3]), SENDER, ["user@test.local"],
                           "client.example", "ESMTP",
                           b"Subject: n\r\n\r\none\r\ntwo\r\nthree\r\n")

    def test_smuggling_is_still_one_message(self):
        for seq in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"):
            with self.subTest(seq=seq):
                before = self.d.spooled()
                s = self.session()
                s.send(b"MAIL FROM:<sender@client.example>\r\n"
                       b"RCPT TO:<user@test.local>\r\nDATA\r\n"
                       b"Subject: innocent\r\n\r\nhello" + seq +
                       b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@test.local>"
                       b"\r\nDATA\r\nsmuggled\r\n.\r\nQUIT\r\n")
                replies = split_replies(s.read_all())
                self.assertEqual(len(replies), 5, replies)
                self.assertEqual(replies[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
                self.assertEqual(replies[4], BYE)
                qid = queued_id(replies[3])
                new = [n for n in self.d.spooled() if n not in before]
                self.assertEqual(new, [qid])
                _, _, message = parse_spooled(self.d.spool_file(qid))
                # The would-be commands are text of the one message.
                self.assertEqual(message,
                                 b"Subject: innocent\r\n\r\nhello\r\n.\r\n"
                                 b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@"
                                 b"test.local>\r\nDATA\r\nsmuggled\r\n")


class TestEarlyTalker(DaemonTestCase):
    daemon_args = dict(workers=2)

    def test_early_talker_refused(self):
        workers = self.d.pids("worker")
        self.assertEqual(len(workers), 2)
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        try:
            c = self.d.connect()
            c.sendall(b"EHLO x\r\n")
            time.sleep(0.1)
        finally:
            for pid in workers:
                os.kill(pid, signal.SIGCONT)
        s = Session(c)
        self.addCleanup(s.close)
        self.assertEqual(s.read_all(),
                         "554 5.5.0 Protocol error: talked before the "
                         "greeting\r\n")
        self.d.wait_log(r"refused 127\.0\.0\.1 on \S+: talked before the "
                        r"greeting")
        # A polite client is served as usual.
        s2 = self.session()
        self.assertEqual(s2.cmd("QUIT"), BYE)


class TestTimeout(DaemonTestCase):
    daemon_args = dict(timeout={"command": "2s", "data": "2s"},
                       listen="tls", listeners={"smtps": "smtps"})

    TIMEOUT = ("421 4.4.2 test.local Timeout, closing transmission "
               "channel\r\n")

    def test_idle_clients_get_421(self):
        """Three sessions wait at once (so the test waits once): idle
        after the greeting, idle after STARTTLS, stalled inside DATA."""
        before = self.d.spooled()
        idle = self.session(ehlo=False)
        tls = self.session()
        self.assertEqual(tls.starttls(), "220 2.0.0 Ready to start TLS\r\n")
        tls.ehlo()
        data = self.session()
        self.assertEqual(data.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(data.cmd("RCPT TO:<user@test.local>"), RCPT_OK)
        self.assertEqual(data.cmd("DATA"), GO_AHEAD)
        data.send(b"Subject: stalled\r\n\r\nand then nothing")
        # A client of the smtps port that never starts its handshake.
        silent = Session.open(self.d, "smtps", greet=False)
        self.addCleanup(silent.close)
        t0 = time.monotonic()
        for name, s in (("idle", idle), ("data", data), ("tls", tls)):
            with self.subTest(session=name):
                s.sock.settimeout(max(0.1, t0 + 3.5 - time.monotonic()))
                self.assertEqual(s.read_all(timeout=max(
                    0.1, t0 + 3.5 - time.monotonic())), self.TIMEOUT)
                self.assertLess(time.monotonic() - t0, 3.5)
        with self.subTest(session="smtps"):
            self.assertTrue(silent.closed_within(
                max(0.1, t0 + 3.5 - time.monotonic())))
            self.assertEqual(silent.buf, b"")
        # The stalled message was thrown away.
        self.assertNothingSpooled(before)

    def test_activity_resets_the_timer(self):
        s = self.session()
        for _ in range(3):
            time.sleep(0.8)
            self.assertEqual(s.cmd("NOOP"), OK)


class TestPerAddressLimit(DaemonTestCase):
    daemon_args = dict(workers=1, max_sessions_per_address=2)

    def test_third_connection_refused(self):
        s1 = self.session(ehlo=False)
        s2 = self.session(ehlo=False)
        s3 = Session.open(self.d, greet=False)
        self.addCleanup(s3.close)
        self.assertEqual(s3.read_all(),
                         "421 4.7.0 test.local Too many connections from "
                         "your address\r\n")
        # The two sessions are still served; once one ends, a new one
        # is accepted.
        self.assertEqual(s2.cmd("NOOP"), OK)
        self.assertEqual(s1.cmd("QUIT"), BYE)
        self.assertTrue(s1.closed_within(2))
        deadline = time.monotonic() + 2
        while True:
            s4 = Session.open(self.d, greet=False)
            self.addCleanup(s4.close)
            r = s4.reply()
            if r.startswith("220 ") or time.monotonic() > deadline:
                break
        self.assertEqual(r, "220 test.local ESMTP portcullis\r\n")


class TestWorkerKilledInData(DaemonTestCase):
    daemon_args = dict(workers=2)

    def test_kill_during_data_leaves_nothing_in_new(self):
        s = self.session()
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("RCPT TO:<user@test.local>"), RCPT_OK)
        self.assertEqual(s.cmd("DATA"), GO_AHEAD)
        # Lines of legal length: an overlong one would refuse the
        # message, and the spool would drop its file before the kill.
        s.send(b"Subject: half\r\n\r\n" + (b"z" * 900 + b"\r\n") * 80)
        # The delivery has started: tmp/ holds the file being written.
        deadline = time.monotonic() + 3
        while not self.d.spooled("tmp"):
            self.assertLess(time.monotonic(), deadline, "nothing in tmp/")
            time.sleep(0.02)
        holder = session_owner(self.d, s.sock)
        os.kill(holder, signal.SIGKILL)
        self.assertTrue(s.closed_within(3))
        self.d.wait_pids("worker", 2, exclude=[holder])
        self.assertEqual(self.d.spooled("new"), [])
        # The other sessions go on: a full message still gets through.
        s2 = self.session()
        r = transaction(s2, rcpts=["user@test.local"])
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertEqual(self.d.spooled("new"), [queued_id(r[3])])


class TestConsole(DaemonTestCase):
    daemon_args = dict(deliver="console")

    def test_message_in_the_log(self):
        s = self.session()
        r = transaction(s, rcpts=["user@test.local"],
                        body=b"Subject: console\r\n\r\nhello console\r\n")
        self.assertEqual(r, [MAIL_OK, RCPT_OK, GO_AHEAD,
                             "250 2.0.0 Ok: printed to the log\r\n"])
        text = self.d.wait_log(r"\| hello console")
        sid = text.split("console delivery from")[0].rsplit("session ", 1)[1]
        sid = sid.split(":")[0]
        self.assertRegex(sid, r"^[0-9a-f]{16}$")
        self.assertRegex(text, r"session %s: console delivery from "
                               r"<sender@client\.example> to "
                               r"<user@test\.local>, \d+ octets" % sid)
        self.assertIn("session %s: | Subject: console\n" % sid, text)
        self.assertIn("session %s: | hello console\n" % sid, text)
        self.assertRegex(text, r"session %s: \| \\x09by test\.local "
                               r"\(portcullis\) with ESMTP id %s\.1" %
                         (sid, sid))
        self.assertEqual(self.d.spooled(), [])


if __name__ == "__main__":
    unittest.main()
