"""
test_scram.py -- SCRAM-SHA-256(-PLUS) and app passwords end to end.

One portcullisd (STARTTLS on its main listener, an lmdb store) for the
whole module.  Real clients: gsasl 2.2 (SCRAM-SHA-256 over STARTTLS,
-PLUS with tls-exporter under TLS 1.3 and tls-unique under TLS 1.2),
msmtp, curl and smtplib (app passwords over PLAIN).  A small SCRAM
client of our own (ScramClient) does what no real client does on
purpose: a tampered proof, a wrong channel binding, a "y" flag after
-PLUS was offered, a replayed client-final, tls-server-end-point.
"""

import base64
import hashlib
import hmac
import os
import re
import smtplib
import socket
import ssl
import subprocess
import time
import unittest

import daemon
from daemon import BUILD, Daemon, read_reply

AUTHCTL = os.path.join(BUILD, "authctl")
D = None
APP = {}            # label -> password, made in setUpModule


def authctl(*args, stdin=None, check=True):
    p = subprocess.run([AUTHCTL, "-f", D.conf] + list(args),
                       input=stdin, capture_output=True, text=True,
                       timeout=60)
    if check and p.returncode != 0:
        raise AssertionError("authctl %s: %s" % (args, p.stderr))
    return p


def setUpModule():
    global D
    D = Daemon(listen="tls", local_domains=["example.org"])
    # "idp" stands for what follows the store in a real chain (an oauth
    # checker's password grant): frank's password there must not log
    # him in, since his account is passwordless (app passwords only).
    D.conf_extra = ('auth {\n\tchecker "local" lmdb "%s/db" mechanisms '
                    'PLAIN LOGIN SCRAM-SHA-256 SCRAM-SHA-256-PLUS\n'
                    '\tchecker "idp" static {\n'
                    '\t\tuser "frank" password "idp-pw"\n'
                    '\t\tuser "gina" password "idp-pw"\n\t}\n'
                    "\tfailure-delay 0s\n\tscram-iterations 5000\n"
                    "\tpenalty account 12 per 1h\n"
                    "\tpasswordless app-passwords-only\n}\n" % D.dir)
    D.write_conf()
    authctl("user", "add", "--password-stdin", "alice", stdin="secret\n")
    authctl("user", "add", "--password-stdin", "carol", stdin="pw-carol\n")
    authctl("user", "add", "--password-stdin", "heidi", stdin="pw-heidi\n")
    imp = os.path.join(D.dir, "import.txt")
    h = subprocess.run(["openssl", "passwd", "-6", "imported"],
                       capture_output=True, text=True, check=True)
    with open(imp, "w") as f:
        f.write("dave:%s\n" % h.stdout.strip())
    authctl("user", "import", imp)
    authctl("user", "add", "--no-password", "frank")
    APP["frank"] = authctl("app-password", "add", "frank",
                           "laptop").stdout.strip()
    for label, opts in (("phone", []), ("script", ["--send-only"]),
                        ("brief", ["--expires", "3s"]),
                        ("old", []), ("unused", [])):
        APP[label] = authctl("app-password", "add", *opts, "alice",
                             label).stdout.strip()
    D.start()
    # A login whose last-used time test_z_last_used looks for.
    smtp_login("alice", APP["unused"])


def tearDownModule():
    if D is not None:
        D.stop()


def smtp_login(user, password, mech="PLAIN"):
    s = smtplib.SMTP("127.0.0.1", D.port, timeout=10)
    try:
        s.starttls(context=insecure_ctx())
        s.ehlo("client.example")
        s.user, s.password = user, password
        code, _ = s.auth(mech, s.auth_plain if mech == "PLAIN"
                         else s.auth_login, initial_response_ok=True)
        return code
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    finally:
        s.close()


def insecure_ctx(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def gsasl(mech, password, *extra, user="alice"):
    cmd = ["gsasl", "--smtp", "--connect=127.0.0.1:%d" % D.port,
           "--starttls", "--x509-ca-file=", "-m", mech, "-a", user,
           "-p", password, "--quiet"] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def client_first_of(gsasl_out):
    """The client-first-message gsasl sent, from its transcript."""
    lines = gsasl_out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("AUTH SCRAM"):
            return base64.b64decode(lines[i + 2]).decode()
    raise AssertionError("no AUTH in gsasl's output: " + gsasl_out)


def H(b):
    return hashlib.sha256(b).digest()


def HMAC(k, m):
    return hmac.new(k, m, hashlib.sha256).digest()


class ScramClient:
    """SCRAM-SHA-256 over STARTTLS, with knobs to misbehave."""

    def __init__(self, tls=True, version=None):
        self.sock = socket.create_connection(("127.0.0.1", D.port), 10)
        assert read_reply(self.sock).startswith("220")
        self.cmd("EHLO client.example")
        if tls:
            assert self.cmd("STARTTLS").startswith("220")
            self.sock = insecure_ctx(version).wrap_socket(self.sock)
        self.ehlo = self.cmd("EHLO client.example")

    def cmd(self, line):
        self.sock.sendall(line.encode() + b"\r\n")
        return read_reply(self.sock)

    def cb_data(self, name):
        if name == "tls-exporter":
            raise unittest.SkipTest("optional: Python's ssl has no "
                                    "exporter")
        if name == "tls-server-end-point":
            return H(self.sock.getpeercert(binary_form=True))
        raise ValueError(name)

    def first(self, user="alice", mech="SCRAM-SHA-256", gs2="n,,"):
        self.gs2 = gs2
        self.cnonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = "n=%s,r=%s" % (user, self.cnonce)
        r = self.cmd("AUTH %s %s" % (mech, base64.b64encode(
            (gs2 + self.bare).encode()).decode()))
        if not r.startswith("334 "):
            return r, None
        self.sfirst = base64.b64decode(r[4:].strip()).decode()
        attrs = dict(a.split("=", 1) for a in self.sfirst.split(","))
        return r, attrs

    def final(self, password, attrs, cbind=None, tamper=False,
              nonce=None):
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(),
                                     base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        ckey = HMAC(salted, b"Client Key")
        if cbind is None:
            cbind = self.gs2.encode()
        without = "c=%s,r=%s" % (base64.b64encode(cbind).decode(),
                                 nonce or attrs["r"])
        am = ",".join([self.bare, self.sfirst, without]).encode()
        proof = bytes(a ^ b for a, b in zip(ckey, HMAC(H(ckey), am)))
        if tamper:
            proof = bytes([proof[0] ^ 1]) + proof[1:]
        self.server_sig = HMAC(HMAC(salted, b"Server Key"), am)
        self.last_final = without + ",p=" + base64.b64encode(proof).decode()
        return self.cmd(base64.b64encode(self.last_final.encode()).decode())

    def close(self):
        try:
            self.cmd("QUIT")
        except OSError:
            pass
        self.sock.close()


class TestScramRealClients(unittest.TestCase):
    def test_ehlo_plus_only_on_tls(self):
        c = ScramClient()
        self.assertIn("SCRAM-SHA-256-PLUS SCRAM-SHA-256", c.ehlo)
        c.close()
        c = ScramClient(tls=False)
        self.assertIn("SCRAM-SHA-256", c.ehlo)
        self.assertNotIn("-PLUS", c.ehlo)
        c.close()

    def test_gsasl_scram_starttls(self):
        # Over TLS gsasl binds unless told not to: plain SCRAM needs --no-cb.
        p = gsasl("SCRAM-SHA-256", "secret", "--no-cb")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("235 2.7.0", p.stdout)
        self.assertTrue(client_first_of(p.stdout).startswith("n,,"))

    def test_gsasl_wrong_password_535(self):
        p = gsasl("SCRAM-SHA-256", "wrong", "--no-cb")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("535 5.7.8", p.stdout)

    def test_gsasl_plus_tls13_exporter(self):
        off = D.log_offset()
        p = gsasl("SCRAM-SHA-256-PLUS", "secret")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(client_first_of(p.stdout).startswith(
            "p=tls-exporter,"))
        D.wait_log(r'auth result=ok user="alice" mech=SCRAM-SHA-256-PLUS',
                   since=off)

    def test_gsasl_plus_tls12_unique(self):
        # gsasl 2.2 binds with tls-unique under TLS 1.2 (GnuTLS sends the
        # extended master secret, which the worker insists on).
        p = gsasl("SCRAM-SHA-256-PLUS", "secret",
                  "--priority=NORMAL:-VERS-TLS1.3")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(client_first_of(p.stdout).startswith(
            "p=tls-unique,"))

    def test_msmtp_scram(self):
        cfg = os.path.join(D.dir, "msmtprc")
        with open(cfg, "w") as f:
            f.write("account default\nhost 127.0.0.1\nport %d\n"
                    "tls on\ntls_starttls on\ntls_certcheck off\n"
                    "auth scram-sha-256\nuser alice\npassword secret\n"
                    "from alice@example.org\n" % D.port)
        os.chmod(cfg, 0o600)
        off = D.log_offset()
        p = subprocess.run(["msmtp", "-C", cfg, "x@elsewhere.test"],
                           input="Subject: msmtp\n\nhi\n", text=True,
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        D.wait_log(r'auth result=ok user="alice" mech=SCRAM-SHA-256',
                   since=off)


class TestScramHostile(unittest.TestCase):
    def test_server_end_point_tls12_and_tls13(self):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            c = ScramClient(version=v)
            gs2 = "p=tls-server-end-point,,"
            r, attrs = c.first(mech="SCRAM-SHA-256-PLUS", gs2=gs2)
            self.assertIsNotNone(attrs, r)
            r = c.final("secret", attrs, cbind=gs2.encode() +
                        c.cb_data("tls-server-end-point"))
            self.assertTrue(r.startswith("334 "), r)
            v_ = base64.b64decode(r[4:].strip()).decode()
            self.assertEqual(v_, "v=" + base64.b64encode(
                c.server_sig).decode())
            self.assertTrue(c.cmd("").startswith("235"))
            c.close()

    def test_tampered_proof(self):
        c = ScramClient()
        r, attrs = c.first()
        self.assertTrue(c.final("secret", attrs, tamper=True)
                        .startswith("535"))
        c.close()

    def test_wrong_channel_binding(self):
        c = ScramClient()
        gs2 = "p=tls-server-end-point,,"
        r, attrs = c.first(mech="SCRAM-SHA-256-PLUS", gs2=gs2)
        off = D.log_offset()
        r = c.final("secret", attrs, cbind=gs2.encode() + b"\0" * 32)
        self.assertTrue(r.startswith("535"), r)
        D.wait_log("reason=channel binding mismatch", since=off)
        c.close()

    def test_y_flag_after_plus_was_offered(self):
        c = ScramClient()
        off = D.log_offset()
        r, attrs = c.first(gs2="y,,")
        self.assertTrue(r.startswith("535"), r)
        D.wait_log("reason=downgrade", since=off)
        c.close()
        # Without TLS -PLUS was not offered: y is honest there.
        c = ScramClient(tls=False)
        r, attrs = c.first(gs2="y,,")
        self.assertIsNotNone(attrs, r)
        self.assertTrue(c.final("secret", attrs).startswith("334 "))
        c.close()

    def test_p_flag_without_plus_and_plus_without_p(self):
        c = ScramClient()
        r, _ = c.first(gs2="p=tls-server-end-point,,")
        self.assertTrue(r.startswith("535"), r)
        r, _ = c.first(mech="SCRAM-SHA-256-PLUS", gs2="n,,")
        self.assertTrue(r.startswith("535"), r)
        c.close()

    def test_replayed_client_final(self):
        c = ScramClient()
        r, attrs = c.first()
        self.assertTrue(c.final("secret", attrs).startswith("334 "))
        old = c.last_final
        c.close()
        c = ScramClient()
        r, attrs = c.first()
        r = c.cmd(base64.b64encode(old.encode()).decode())
        self.assertTrue(r.startswith("535"), r)
        c.close()

    def test_unknown_user_stable_fake_salt(self):
        salts = []
        for user in ("nobody", "nobody", "nobody2", "dave"):
            c = ScramClient()
            r, attrs = c.first(user=user)
            self.assertIsNotNone(attrs, r)
            # scram-iterations, as the known users' keys have.
            self.assertEqual(attrs["i"], "5000")
            salts.append(attrs["s"])
            self.assertTrue(c.final("x", attrs).startswith("535"))
            c.close()
        self.assertEqual(salts[0], salts[1])
        self.assertNotEqual(salts[0], salts[2])
        self.assertNotEqual(salts[0], salts[3])

    def test_imported_hash_has_no_scram_keys(self):
        p = authctl("user", "list", "--missing-scram")
        self.assertIn("dave", p.stdout.split())
        self.assertNotIn("alice", p.stdout.split())
        c = ScramClient()
        r, attrs = c.first(user="dave")
        off = D.log_offset()
        self.assertTrue(c.final("imported", attrs).startswith("535"))
        D.wait_log('user="dave".*reason=no SCRAM keys', since=off)
        c.close()
        # PLAIN still works for him.
        self.assertEqual(smtp_login("dave", "imported"), 235)


class TestScramPenalties(unittest.TestCase):
    def test_locked_account_refused_before_the_salt(self):
        # Twelve wrong passwords (PLAIN, or SCRAM's proof) lock heidi's
        # account; from an address that never logged in as her, a
        # SCRAM exchange then gets 454 at once: no salt, no iteration
        # count, no proof checked, as PLAIN gets it before its password
        # is checked.
        for k in range(6):
            self.assertEqual(smtp_login("heidi", "wrong-%d" % k), 535)
        for k in range(6):
            c = ScramClient()
            r, attrs = c.first(user="heidi")
            self.assertIsNotNone(attrs, r)
            self.assertTrue(c.final("wrong-s%d" % k, attrs).startswith(
                "535"))
            c.close()
        off = D.log_offset()
        c = ScramClient()
        r, attrs = c.first(user="heidi")
        c.close()
        self.assertIsNone(attrs, r)
        self.assertTrue(r.startswith("454 4.7.0"), r)
        D.wait_log(r'auth result=tempfail user="heidi" mech=SCRAM-SHA-256 '
                   r"checker=none .*reason=account locked", since=off)
        authctl("penalty", "clear", "heidi")
        c = ScramClient()
        r, attrs = c.first(user="heidi")
        self.assertIsNotNone(attrs, r)
        self.assertTrue(c.final("pw-heidi", attrs).startswith("334 "))
        c.close()


class TestAppPasswords(unittest.TestCase):
    def test_shape(self):
        pw = APP["phone"]
        self.assertRegex(pw, r"^([a-z2-9]{4}-){6}[a-z2-9]{2}$")

    def test_smtplib_plain_and_login_audit_names_label(self):
        off = D.log_offset()
        self.assertEqual(smtp_login("alice", APP["phone"]), 235)
        D.wait_log(r'auth result=ok user="alice" mech=PLAIN checker=local '
                   r"app-password=phone session=", since=off)
        # Typed by a person: other case, without the dashes.
        self.assertEqual(smtp_login("alice", APP["phone"].upper()
                                    .replace("-", ""), "LOGIN"), 235)
        # The account's password still works, and is audited as such.
        off = D.log_offset()
        self.assertEqual(smtp_login("alice", "secret"), 235)
        line = D.wait_log(r'auth result=ok user="alice" mech=PLAIN',
                          since=off)
        self.assertNotIn("app-password", D.log()[off:])
        # Another user's app password is nobody else's.
        self.assertEqual(smtp_login("carol", APP["phone"]), 535)

    def test_curl(self):
        msg = os.path.join(D.dir, "msg.txt")
        with open(msg, "w") as f:
            f.write("Subject: curl\r\n\r\nbody\r\n")
        p = subprocess.run(
            ["curl", "-sS", "-k", "--ssl-reqd",
             "smtp://127.0.0.1:%d" % D.port, "--login-options",
             "AUTH=PLAIN", "-u", "alice:" + APP["phone"], "--mail-from",
             "alice@example.org", "--mail-rcpt", "x@elsewhere.test",
             "--upload-file", msg], capture_output=True, text=True,
            timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_revoke_is_at_once(self):
        self.assertEqual(smtp_login("alice", APP["old"]), 235)
        authctl("app-password", "revoke", "alice", "old")
        off = D.log_offset()
        self.assertEqual(smtp_login("alice", APP["old"]), 535)
        # Not one of hers any more: the chain goes on ("idp" does not
        # know her either).
        D.wait_log(r'auth result=fail user="alice" mech=PLAIN', since=off)
        self.assertNotIn("old", authctl("app-password", "list",
                                        "alice").stdout)

    def test_expired(self):
        time.sleep(3.5)     # "brief" was made with --expires 3s
        off = D.log_offset()
        self.assertEqual(smtp_login("alice", APP["brief"]), 535)
        D.wait_log(r"app-password=brief .*reason=app password expired",
                   since=off)

    def test_send_only(self):
        off = D.log_offset()
        self.assertEqual(smtp_login("alice", APP["script"]), 235)
        D.wait_log(r"app-password=script send-only=yes session=", since=off)
        # authctl test sends nothing: a send-only password is refused.
        p = authctl("test", "alice", "--password-stdin",
                    stdin=APP["script"] + "\n", check=False)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        D.wait_log(r"reason=send-only app password", since=off)
        p = authctl("test", "alice", "--password-stdin",
                    stdin=APP["phone"] + "\n", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_passwordless_account_app_passwords_only(self):
        off = D.log_offset()
        self.assertEqual(smtp_login("frank", "idp-pw"), 535)
        D.wait_log(r'auth result=fail user="frank" mech=PLAIN checker=none'
                   r".*reason=no password set, app password required",
                   since=off)
        self.assertEqual(smtp_login("frank", APP["frank"]), 235)
        # Who is not in the store goes on down the chain as before.
        self.assertEqual(smtp_login("gina", "idp-pw"), 235)

    def test_z_last_used_is_batched(self):
        # setUpModule logged in with "unused"; the write comes within
        # the flush interval (10 s), not at the login.
        deadline = time.time() + 15
        while time.time() < deadline:
            out = authctl("app-password", "list", "alice").stdout
            row = [l for l in out.splitlines() if l.startswith("unused ")]
            if row and "never" not in row[0].split()[2]:
                return
            time.sleep(0.5)
        self.fail("last-used never written: " + out)


class TestStore(unittest.TestCase):
    def test_upgrade_of_a_layout_3_store_says_so(self):
        p = authctl("upgrade")
        self.assertIn("has layout 3 already", p.stdout)

    def test_import_replace_drops_the_old_scram_keys(self):
        authctl("user", "add", "--password-stdin", "erin", stdin="old-pw\n")
        self.assertNotIn("erin", authctl("user", "list", "--missing-scram")
                         .stdout.split())
        h = subprocess.run(["openssl", "passwd", "-6", "new-pw"],
                           capture_output=True, text=True, check=True)
        imp = os.path.join(D.dir, "erin.txt")
        with open(imp, "w") as f:
            f.write("erin:%s\n" % h.stdout.strip())
        authctl("user", "import", "--replace", imp)
        self.assertIn("erin", authctl("user", "list", "--missing-scram")
                      .stdout.split())
        c = ScramClient()
        r, attrs = c.first(user="erin")
        self.assertTrue(c.final("old-pw", attrs).startswith("535"))
        c.close()
        self.assertEqual(smtp_login("erin", "new-pw"), 235)

    def test_show(self):
        out = authctl("user", "show", "alice").stdout
        self.assertIn("scram-sha-256: yes (5000 iterations)", out)
        authctl("user", "passwd", "--password-stdin",
                "--scram-iterations", "4100", "carol", stdin="pw-carol\n")
        self.assertIn("scram-sha-256: yes (4100 iterations)",
                      authctl("user", "show", "carol").stdout)
        out = authctl("user", "show", "dave").stdout
        self.assertIn("scram-sha-256: no", out)


OLD = os.environ.get("PORTCULLIS_OLD_BUILD", "")


@unittest.skipUnless(OLD, "optional: PORTCULLIS_OLD_BUILD names no build of "
                     "portcullis from before store layout 2 (building one "
                     "takes minutes)")
class TestLayoutUpgrade(unittest.TestCase):
    """A layout 1 store made by the old authctl, upgraded in place by
    this one with no user lost; the old daemon refuses layout 3 with a
    clear line, and its logins tempfail rather than being misread."""

    def test_upgrade_and_old_daemon(self):
        old_authctl = os.path.join(OLD, "authctl")
        d = Daemon(listen="tls")
        d.conf_extra = ('auth {\n\tchecker "local" lmdb "%s/db"\n'
                        "\tfailure-delay 0s\n}\n" % d.dir)
        d.write_conf()
        names = ["u%d" % i for i in range(20)] + ["x@example.org"]
        for n in names:
            subprocess.run([old_authctl, "-f", d.conf, "user", "add",
                            "--password-stdin", n], input="pw-%s\n" % n,
                           text=True, check=True, capture_output=True)
        run = lambda *a: subprocess.run(  # noqa: E731
            [AUTHCTL, "-f", d.conf] + list(a), capture_output=True,
            text=True, timeout=30)
        p = run("app-password", "add", "u1", "phone")
        self.assertIn("run authctl upgrade", p.stderr)
        p = run("upgrade")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("layout 1 -> 3, %d users rewritten" % len(names),
                      p.stdout)
        self.assertEqual(run("user", "list").stdout.split(), sorted(names))
        self.assertEqual(run("user", "list", "--missing-scram").stdout
                         .split(), sorted(names))
        p = subprocess.run([old_authctl, "-f", d.conf, "user", "list"],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 69)
        self.assertIn("has layout 3, this portcullis understands up to 1",
                      p.stderr)
        # This daemon: every old user logs in as before.
        d.start()
        global D
        saved, D = D, d
        try:
            for n in ("u0", "u19", "x@example.org"):
                self.assertEqual(smtp_login(n, "pw-" + n), 235)
        finally:
            D = saved
            # Stopped, its directory (and store) kept for the old one.
            d.proc.send_signal(15)
            d.proc.wait(timeout=15)
            try:
                os.killpg(d.proc.pid, 9)
            except ProcessLookupError:
                pass
            d.log_fh.close()
        # The old daemon: a clear refusal, 454 not 535.  (start()
        # begins a new log.)
        # Its master, and the children it finds through base_env().
        daemon.PORTCULLISD = os.path.join(OLD, "portcullisd")
        daemon.BUILD = OLD
        try:
            d.start()
        finally:
            daemon.PORTCULLISD = os.path.join(BUILD, "portcullisd")
            daemon.BUILD = BUILD
        try:
            s = smtplib.SMTP("127.0.0.1", d.port, timeout=10)
            s.starttls(context=insecure_ctx())
            s.ehlo("x")
            code, _ = s.docmd("AUTH", "PLAIN " + base64.b64encode(
                b"\0u0\0pw-u0").decode())
            s.close()
            self.assertEqual(code, 454)
            d.wait_log(r"has layout 3, this portcullis understands up to "
                       r"1: upgrade portcullis")
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
