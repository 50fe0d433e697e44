"""
test_tls.py -- STARTTLS (RFC 3207) and implicit TLS (RFC 8314) against a
real portcullisd with a self-signed certificate made by openssl(1):
whole transactions with smtplib, curl and swaks, the EHLO keywords
before and after TLS, "tls require", and the STARTTLS command
injection (CVE-2011-0411 class).
"""

import select
import smtplib
import socket
import unittest

from smtp_helpers import (DaemonTestCase, Session, curl_server_lines,
                          queued_id, run_curl, run_swaks, swaks_server_lines,
                          tls_client_context, transaction)

OK = "250 2.0.0 Ok\r\n"
MAIL_OK = "250 2.1.0 Ok\r\n"
RCPT_OK = "250 2.1.5 Ok\r\n"
GO_AHEAD = "354 End data with <CR><LF>.<CR><LF>\r\n"
READY = "220 2.0.0 Ready to start TLS\r\n"
BYE = "221 2.0.0 Bye\r\n"
SENDER = "sender@client.example"
RCPT = "user@test.local"
EHLO_HEAD = ("250-test.local Hello 127.0.0.1\r\n"
             "250-PIPELINING\r\n"
             "250-SIZE 36700160\r\n"
             "250-8BITMIME\r\n"
             "250-ENHANCEDSTATUSCODES\r\n")


class TestTLS(DaemonTestCase):
    daemon_args = dict(listen="tls",
                       listeners={"smtps": "smtps", "tlsreq": "tls require",
                                  "plain": ""})

    # --- whole transactions, each client, both kinds of TLS ----------

    def smtplib_transaction(self, c, helo):
        body = (b"From: <sender@client.example>\r\nSubject: %s\r\n\r\n"
                b"Over TLS.\r\n..dot\r\n" % helo.encode())
        self.assertEqual(c.ehlo(helo)[0], 250)
        self.assertNotIn("starttls", c.esmtp_features)
        self.assertEqual(c.mail(SENDER), (250, b"2.1.0 Ok"))
        self.assertEqual(c.rcpt(RCPT), (250, b"2.1.5 Ok"))
        code, text = c.data(body)
        self.assertEqual(code, 250)
        qid = queued_id("250 %s\r\n" % text.decode())
        self.assertSpooled(qid, SENDER, [RCPT], helo, "ESMTPS", body,
                           tls=True)

    def test_smtplib_starttls(self):
        c = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        self.addCleanup(c.close)
        c.ehlo("before.example")
        self.assertIn("starttls", c.esmtp_features)
        self.assertEqual(c.starttls(context=tls_client_context()),
                         (220, b"2.0.0 Ready to start TLS"))
        self.smtplib_transaction(c, "smtplib-starttls.example")

    def test_smtplib_smtps(self):
        c = smtplib.SMTP_SSL("127.0.0.1", self.d.ports["smtps"], timeout=10,
                             context=tls_client_context())
        self.addCleanup(c.close)
        self.smtplib_transaction(c, "smtplib-smtps.example")
        self.assertEqual(c.quit(), (221, b"2.0.0 Bye"))

    def curl_transaction(self, url, extra, helo):
        body = (b"From: <sender@client.example>\r\nSubject: curl\r\n\r\n"
                b"curl over TLS\r\n")
        rc, err = run_curl(["--url", url, "-k", "--mail-from", SENDER,
                            "--mail-rcpt", RCPT] + extra, body)
        self.assertEqual(rc, 0, err)
        self.assertIn("* SSL connection using TLSv1.3", err)
        lines = curl_server_lines(err)
        (queued,) = [l for l in lines if l.startswith("250 2.0.0 Ok: queued")]
        self.assertSpooled(queued_id(queued + "\r\n"), SENDER, [RCPT], helo,
                           "ESMTPS", body, tls=True)
        return lines

    def test_curl_starttls(self):
        lines = self.curl_transaction(
            "smtp://127.0.0.1:%d/curl-starttls.example" % self.d.port,
            ["--ssl-reqd"], "curl-starttls.example")
        self.assertIn("220 2.0.0 Ready to start TLS", lines)
        # STARTTLS is offered before TLS and not after.
        self.assertEqual(lines.count("250-STARTTLS"), 1)

    def test_curl_smtps(self):
        lines = self.curl_transaction(
            "smtps://127.0.0.1:%d/curl-smtps.example" % self.d.ports["smtps"],
            [], "curl-smtps.example")
        self.assertNotIn("250-STARTTLS", lines)

    def swaks_transaction(self, port, tls_opt, helo):
        rc, out = run_swaks(
            ["--server", "127.0.0.1", "--port", str(port), tls_opt,
             "--helo", helo, "--from", SENDER, "--to", RCPT,
             "--data", "Subject: swaks\n\nswaks over TLS\n.dot"])
        lines = swaks_server_lines(out)
        queued = [l for l in lines if l.startswith("250 2.0.0 Ok: queued")]
        self.assertEqual(len(queued), 1, out)
        self.assertSpooled(queued_id(queued[0] + "\r\n"), SENDER, [RCPT],
                           helo, "ESMTPS",
                           b"Subject: swaks\r\n\r\nswaks over TLS\r\n.dot\r\n",
                           tls=True)
        return rc, out, lines

    def assertSwaksQuit(self, rc, out, lines):
        # swaks ends with QUIT and fails (exit 6) if the 221 is lost.
        self.assertEqual(lines[-1], "221 2.0.0 Bye", out)
        self.assertEqual(rc, 0, out)

    def test_swaks_starttls(self):
        rc, out, lines = self.swaks_transaction(self.d.port, "-tls",
                                                "swaks-starttls.example")
        self.assertIn("220 2.0.0 Ready to start TLS", lines)
        # swaks marks what went over TLS with "~".
        self.assertIn("\n<~  250 2.1.0 Ok\n", out)
        self.assertSwaksQuit(rc, out, lines)

    def test_swaks_smtps(self):
        rc, out, lines = self.swaks_transaction(
            self.d.ports["smtps"], "--tls-on-connect", "swaks-smtps.example")
        self.assertEqual(lines[0], "220 test.local ESMTP portcullis")
        self.assertIn("\n<~  250 2.1.0 Ok\n", out)
        self.assertSwaksQuit(rc, out, lines)

    # --- EHLO keywords --------------------------------------------

    def test_ehlo_offers_starttls_only_before_tls(self):
        s = self.session(ehlo=False)
        self.assertEqual(s.cmd("EHLO client.example"),
                         EHLO_HEAD + "250-STARTTLS\r\n250 SMTPUTF8\r\n")
        self.assertEqual(s.starttls(), READY)
        self.assertEqual(s.cmd("EHLO client.example"),
                         EHLO_HEAD + "250 SMTPUTF8\r\n")

    def test_ehlo_on_smtps_and_plain_listeners(self):
        s = self.session("smtps", ehlo=False, tls=True)
        self.assertEqual(s.cmd("EHLO client.example"),
                         EHLO_HEAD + "250 SMTPUTF8\r\n")
        p = self.session("plain", ehlo=False)
        self.assertEqual(p.cmd("EHLO client.example"),
                         EHLO_HEAD + "250 SMTPUTF8\r\n")
        self.assertEqual(p.cmd("STARTTLS"),
                         "502 5.5.1 STARTTLS not available\r\n")

    # --- STARTTLS rules -------------------------------------------

    def test_starttls_injection_not_executed(self):
        s = self.session()
        # STARTTLS and a command in the same packet, in the clear.
        s.send(b"STARTTLS\r\nNOOP\r\n")
        self.assertEqual(s.reply(), READY)
        self.assertEqual(s.buf, b"")
        # Nothing else came in the clear (the server waits for our
        # ClientHello): no 250 for the NOOP.
        readable, _, _ = select.select([s.sock], [], [], 0.3)
        self.assertEqual(readable, [],
                         s.sock.recv(64, socket.MSG_PEEK) if readable
                         else None)
        s.sock = tls_client_context().wrap_socket(s.sock)
        # The NOOP was thrown away: nothing arrives until we talk.
        self.assertTrue(s.nothing_within(0.5))
        # And the session started over: no EHLO yet.
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "503 5.5.1 Send HELO or EHLO first\r\n")
        self.assertEqual(s.cmd("EHLO client.example"),
                         EHLO_HEAD + "250 SMTPUTF8\r\n")
        r = transaction(s, rcpts=[RCPT])
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        queued_id(r[3])

    def test_starttls_resets_helo_and_transaction_state(self):
        s = self.session()
        self.assertEqual(s.starttls(), READY)
        self.assertEqual(s.cmd("RCPT TO:<user@test.local>"),
                         "503 5.5.1 Need MAIL before RCPT\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "503 5.5.1 Send HELO or EHLO first\r\n")

    def test_starttls_errors(self):
        s = self.session()
        self.assertEqual(s.cmd("STARTTLS now"),
                         "501 5.5.4 Syntax: STARTTLS\r\n")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"), MAIL_OK)
        self.assertEqual(s.cmd("STARTTLS"),
                         "503 5.5.1 STARTTLS inside a mail transaction\r\n")
        self.assertEqual(s.cmd("RSET"), OK)
        self.assertEqual(s.starttls(), READY)
        s.ehlo()
        self.assertEqual(s.cmd("STARTTLS"),
                         "503 5.5.1 TLS already active\r\n")
        self.assertEqual(s.cmd("NOOP"), OK)

    def test_tls_require(self):
        s = self.session("tlsreq")
        self.assertEqual(s.cmd("MAIL FROM:<a@client.example>"),
                         "530 5.7.0 Must issue a STARTTLS command first\r\n")
        self.assertEqual(s.starttls(), READY)
        s.ehlo("tlsreq.example")
        body = b"Subject: required\r\n\r\nTLS was required\r\n"
        r = transaction(s, rcpts=[RCPT], body=body)
        self.assertEqual(r[:3], [MAIL_OK, RCPT_OK, GO_AHEAD])
        self.assertSpooled(queued_id(r[3]), SENDER, [RCPT], "tlsreq.example",
                           "ESMTPS", body, tls=True)

    def test_plaintext_on_smtps_port_is_dropped(self):
        s = Session.open(self.d, "smtps", greet=False)
        self.addCleanup(s.close)
        s.send(b"EHLO client.example\r\n")
        out = s.read_all(timeout=3)
        self.assertNotIn("250", out)
        self.assertNotIn("220", out)

    # --- closing a TLS session ------------------------------------

    def test_quit_after_starttls_gets_221(self):
        s = self.session()
        self.assertEqual(s.starttls(), READY)
        s.ehlo()
        s.send(b"QUIT\r\n")
        self.assertEqual(s.read_all(), BYE)

    def test_error_limit_421_after_starttls(self):
        s = self.session()
        self.assertEqual(s.starttls(), READY)
        s.ehlo()
        s.send(b"FOO\r\n" * 10)
        self.assertEqual(s.read_all(),
                         "500 5.5.1 Command unrecognized\r\n" * 10 +
                         "421 4.7.0 test.local Too many errors, closing "
                         "transmission channel\r\n")

    def test_quit_over_smtps_gets_221(self):
        s = self.session("smtps", tls=True)
        s.send(b"QUIT\r\n")
        self.assertEqual(s.read_all(), BYE)


if __name__ == "__main__":
    unittest.main()
