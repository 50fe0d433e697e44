"""
test_auth.py -- SMTP AUTH end to end: real clients log in through the
worker, imsg, authd's checker chain and a password hash, then send.
"""

import base64
import os
import re
import signal
import smtplib
import ssl
import subprocess
import time
import unittest

from daemon import Daemon, read_reply

# alice has a sha512-crypt hash (the hash path of the static checker);
# bob a plain-text password (its constant-time comparison).
AUTH_BLOCK = """auth {
	checker "demo" static {
		user "alice@example.org" password "%s"
		user "bob@example.org" password "plainpw"
	}
	failure-delay %s
	failure-delay-max 2s
	max-auth-failures 3
}
"""


def hash_secret():
    """sha512-crypt of "secret", made by the system's own crypt."""
    out = subprocess.run(["openssl", "passwd", "-6", "-salt", "portcullis",
                          "secret"], capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


class AuthTest(unittest.TestCase):
    delay = "300ms"
    listen = ""
    listeners = None

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(listen=cls.listen, listeners=cls.listeners,
                       local_domains=["example.org"],
                       conf_extra=AUTH_BLOCK % (hash_secret(), cls.delay))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def smtp(self):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        s.ehlo("client.example")
        return s

    def raw(self):
        s = self.d.connect()
        self.assertTrue(read_reply(s).startswith("220 "))
        s.sendall(b"EHLO client.example\r\n")
        self.assertIn("250", read_reply(s))
        return s

    def cmd(self, s, line):
        s.sendall(line.encode() + b"\r\n")
        return read_reply(s)


class TestAuthLoopback(AuthTest):
    def test_ehlo_advertises_password_mechanisms(self):
        s = self.smtp()
        self.assertEqual(s.esmtp_features.get("auth", "").strip(), "PLAIN LOGIN")
        s.quit()

    def test_smtplib_plain_then_send_to_a_foreign_domain(self):
        s = self.smtp()
        s.login("alice@example.org", "secret",
                initial_response_ok=True)
        # Authenticated: relaying is allowed, as the user.
        s.sendmail("alice@example.org", ["someone@elsewhere.test"],
                   "Subject: x\r\n\r\nhi\r\n")
        s.quit()
        files = self.d.spooled("new")
        self.assertTrue(files)

    def test_smtplib_login_mechanism(self):
        s = self.smtp()
        s.user, s.password = "bob@example.org", "plainpw"
        code, text = s.auth("LOGIN", s.auth_login, initial_response_ok=True)
        self.assertEqual(code, 235)
        s.quit()

    def test_curl_plain(self):
        msg = os.path.join(self.d.dir, "msg.txt")
        with open(msg, "w") as f:
            f.write("Subject: curl\r\n\r\nbody\r\n")
        p = subprocess.run(
            ["curl", "-sS", "smtp://127.0.0.1:%d" % self.d.port,
             "--login-options", "AUTH=PLAIN", "-u",
             "alice@example.org:secret", "--mail-from",
             "alice@example.org", "--mail-rcpt", "x@elsewhere.test",
             "--upload-file", msg], capture_output=True, text=True,
            timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_swaks_login(self):
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(self.d.port),
             "--auth", "LOGIN", "--auth-user", "bob@example.org",
             "--auth-password", "plainpw", "--from", "bob@example.org",
             "--to", "x@elsewhere.test", "--silent", "2"],
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_wrong_password_gets_535_after_the_delay(self):
        s = self.raw()
        cred = base64.b64encode(b"\0alice@example.org\0wrong").decode()
        t0 = time.monotonic()
        self.assertEqual(self.cmd(s, "AUTH PLAIN " + cred),
                         "535 5.7.8 Authentication credentials invalid\r\n")
        self.assertGreaterEqual(time.monotonic() - t0, 0.25)
        s.close()

    def test_audit_line_and_fail2ban_filter(self):
        secret = "Zq9-never-in-a-log"
        mark = self.d.log_offset()
        s = self.raw()
        cred = base64.b64encode(b"\0alice@example.org\0" +
                                secret.encode()).decode()
        self.assertTrue(self.cmd(s, "AUTH PLAIN " + cred)
                        .startswith("535 5.7.8"))
        s.close()
        text = self.d.wait_log(r"auth result=fail", since=mark)
        self.assertNotIn(secret, self.d.log())
        self.assertNotIn(cred, self.d.log())
        self.assertRegex(text, r'auth result=fail user="alice@example.org" '
                               r'mech=PLAIN checker=none session=[0-9a-f]+ '
                               r'client=127.0.0.1 listener=\S+ ms=\d+')
        # The shipped fail2ban filter finds the client in that line.
        conf = os.path.join(os.path.dirname(__file__), "..", "..", "etc",
                            "fail2ban", "portcullis.conf")
        with open(conf) as f:
            rx = [l.split("=", 1)[1].strip() for l in f
                  if l.startswith("failregex")][0]
        # fail2ban's syslog prefix is empty on a -d line (the real
        # fail2ban-regex reads whole logs in test_fail2ban).
        rx = rx.replace("%(__prefix_line)s", "")
        rx = re.compile(rx.replace("<HOST>", r"(?P<host>\S+)"))
        hosts = [m.group("host") for m in map(rx.search, text.splitlines())
                 if m]
        self.assertEqual(hosts, ["127.0.0.1"])

    def test_unknown_user_gets_535(self):
        s = self.raw()
        cred = base64.b64encode(b"\0nobody@example.org\0x").decode()
        self.assertEqual(self.cmd(s, "AUTH PLAIN " + cred),
                         "535 5.7.8 Authentication credentials invalid\r\n")
        s.close()

    def test_three_failures_close_the_session(self):
        s = self.raw()
        cred = base64.b64encode(b"\0bob@example.org\0nope").decode()
        for _ in range(2):
            self.assertTrue(self.cmd(s, "AUTH PLAIN " + cred)
                            .startswith("535 5.7.8"))
        s.sendall(b"AUTH PLAIN " + cred.encode() + b"\r\n")
        s.settimeout(10)
        data = b""
        while b"421" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        self.assertIn(b"535 5.7.8", data)
        self.assertIn(b"421 4.7.0", data)
        s.close()

    def test_framing_errors(self):
        s = self.raw()
        self.assertEqual(self.cmd(s, "AUTH CRAM-MD5"),
                         "504 5.5.4 Unrecognized authentication type\r\n")
        self.assertEqual(self.cmd(s, "AUTH PLAIN not*base64"),
                         "501 5.5.2 Invalid base64 data\r\n")
        self.assertEqual(self.cmd(s, "AUTH PLAIN"), "334 \r\n")
        self.assertEqual(self.cmd(s, "*"),
                         "501 5.0.0 Authentication cancelled\r\n")
        self.assertEqual(self.cmd(s, "AUTH LOGIN"), "334 VXNlcm5hbWU6\r\n")
        self.assertEqual(self.cmd(s, base64.b64encode(b"bob@example.org")
                                  .decode()), "334 UGFzc3dvcmQ6\r\n")
        self.assertEqual(self.cmd(s, base64.b64encode(b"plainpw").decode()),
                         "235 2.7.0 Authentication successful\r\n")
        self.assertEqual(self.cmd(s, "AUTH PLAIN"),
                         "503 5.5.1 Already authenticated\r\n")
        s.close()

    def test_auth_inside_a_transaction(self):
        s = self.raw()
        self.assertTrue(self.cmd(s, "MAIL FROM:<a@example.org>")
                        .startswith("250"))
        self.assertEqual(self.cmd(s, "AUTH PLAIN"),
                         "503 5.5.1 AUTH not permitted in a mail "
                         "transaction\r\n")
        s.close()

    def test_empty_initial_response(self):
        s = self.raw()
        self.assertEqual(self.cmd(s, "AUTH PLAIN ="),
                         "501 5.5.2 Malformed PLAIN message\r\n")
        s.close()

    def test_sender_must_belong_to_the_user(self):
        s = self.smtp()
        s.login("alice@example.org", "secret")
        code, text = s.mail("bob@example.org")
        self.assertEqual(code, 553)
        self.assertIn(b"5.7.1", text)
        s.quit()


class TestAuthTLSRequired(AuthTest):
    listen = "tls require"

    def test_no_auth_before_starttls(self):
        s = self.smtp()
        self.assertNotIn("auth", s.esmtp_features)
        code, _ = s.docmd("AUTH", "PLAIN")
        self.assertEqual(code, 530)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s.starttls(context=ctx)
        s.ehlo("client.example")
        self.assertEqual(s.esmtp_features.get("auth", "").strip(), "PLAIN LOGIN")
        s.login("alice@example.org", "secret")
        s.quit()


class TestAuthOverTLS(AuthTest):
    """Every client, PLAIN and LOGIN, over STARTTLS and implicit TLS."""
    listen = "tls"
    listeners = {"smtps": "smtps"}

    def msgfile(self):
        path = os.path.join(self.d.dir, "msg.txt")
        with open(path, "w") as f:
            f.write("Subject: tls\r\n\r\nbody\r\n")
        return path

    def curl(self, url, mech, user, password):
        p = subprocess.run(
            ["curl", "-sS", "-k", url, "--login-options", "AUTH=" + mech,
             "-u", "%s:%s" % (user, password), "--mail-from", user,
             "--mail-rcpt", "x@elsewhere.test", "--upload-file",
             self.msgfile()] + (["--ssl-reqd"] if url.startswith("smtp:")
                                else []),
            capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def swaks(self, tls, mech, user, password, port):
        p = subprocess.run(
            ["swaks", "--server", "127.0.0.1", "--port", str(port), tls,
             "--auth", mech, "--auth-user", user, "--auth-password",
             password, "--from", user, "--to", "x@elsewhere.test",
             "--silent", "2"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def assert_esmtpsa(self):
        newest = max(self.d.spooled("new"),
                     key=lambda n: os.stat(os.path.join(self.d.spool, "new",
                                                        n)).st_mtime_ns)
        with open(os.path.join(self.d.spool, "new", newest), "rb") as f:
            self.assertIn(b"with ESMTPSA", f.read())

    def test_curl_starttls_plain_and_login(self):
        url = "smtp://127.0.0.1:%d" % self.d.port
        self.curl(url, "PLAIN", "alice@example.org", "secret")
        self.assert_esmtpsa()
        self.curl(url, "LOGIN", "bob@example.org", "plainpw")

    def test_curl_implicit_tls_plain_and_login(self):
        url = "smtps://127.0.0.1:%d" % self.d.ports["smtps"]
        self.curl(url, "PLAIN", "alice@example.org", "secret")
        self.assert_esmtpsa()
        self.curl(url, "LOGIN", "bob@example.org", "plainpw")

    def test_swaks_starttls_and_implicit_tls(self):
        self.swaks("-tls", "PLAIN", "alice@example.org", "secret",
                   self.d.port)
        self.swaks("-tls", "LOGIN", "bob@example.org", "plainpw",
                   self.d.port)
        self.swaks("--tls-on-connect", "PLAIN", "alice@example.org",
                   "secret", self.d.ports["smtps"])
        self.swaks("--tls-on-connect", "LOGIN", "bob@example.org",
                   "plainpw", self.d.ports["smtps"])
        self.assert_esmtpsa()

    def test_smtplib_starttls_and_implicit_tls(self):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = self.smtp()
        s.starttls(context=ctx)
        s.ehlo("client.example")
        s.login("alice@example.org", "secret")
        s.sendmail("alice@example.org", ["x@elsewhere.test"],
                   "Subject: a\r\n\r\nb\r\n")
        s.quit()
        s = smtplib.SMTP_SSL("127.0.0.1", self.d.ports["smtps"],
                             context=ctx, timeout=10)
        s.ehlo("client.example")
        s.user, s.password = "bob@example.org", "plainpw"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=True)
        self.assertEqual(code, 235)
        s.sendmail("bob@example.org", ["x@elsewhere.test"],
                   "Subject: a\r\n\r\nb\r\n")
        s.quit()
        self.assert_esmtpsa()


class TestAuthdKilled(AuthTest):
    delay = "0s"

    def test_logins_recover_after_authd_dies(self):
        (victim,) = self.d.pids("authd")
        os.kill(victim, signal.SIGKILL)
        # While authd is gone: 454 at once, never a hang.
        s = self.raw()
        cred = base64.b64encode(b"\0bob@example.org\0plainpw").decode()
        s.settimeout(5)
        reply = self.cmd(s, "AUTH PLAIN " + cred)
        self.assertTrue(reply.startswith("454 4.7.0") or
                        reply.startswith("235 2.7.0"), reply)
        s.close()
        deadline = time.monotonic() + 2.5
        while True:
            s = self.smtp()
            try:
                s.login("bob@example.org", "plainpw")
                s.quit()
                break
            except smtplib.SMTPException:
                s.close()
                self.assertLess(time.monotonic(), deadline,
                                "logins did not come back")
                time.sleep(0.1)


if __name__ == "__main__":
    unittest.main()
