"""
test_proxy.py -- listeners behind a balancer: a real HAProxy (Debian's
haproxy, TCP mode) in front of portcullisd, sending the PROXY protocol
header version 1 (send-proxy) and version 2 (send-proxy-v2) to a
STARTTLS and an implicit-TLS listener, with its health checks on.

The client binds 127.0.0.7, so the address HAProxy passes on differs
from its own (127.0.0.1, the only balancer the listeners accept): the
log, the EHLO reply, the Received header and authd's audit line (read
by the shipped fail2ban filter) must name 127.0.0.7.  Then, straight to
the listeners: a forged header from a host that is no balancer, garbage,
truncated and overlong headers, a silent client, a header that arrives
in pieces, and version 2 TLVs and IPv6 addresses.

HAProxy and portcullisd are started once for the module.
"""

import base64
import collections
import os
import shutil
import smtplib
import socket
import struct
import subprocess
import tempfile
import time
import unittest

from daemon import Daemon, free_port, read_reply
from smtp_helpers import (envelope_fields, parse_spooled, queued_id,
                          received_rx, tls_client_context)

TOP = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
F2B = shutil.which("fail2ban-regex")
F2B_FILTER = os.path.join(TOP, "etc", "fail2ban", "portcullis.conf")
F2B_COMMON = "/etc/fail2ban/filter.d/common.conf"

CLIENT = "127.0.0.7"        # the real client, as HAProxy sees it
BALANCER = "127.0.0.1"      # HAProxy's own address towards portcullis
TESTER = "127.0.0.2"        # another balancer: the tests' raw headers
STRANGER = "127.0.0.9"      # a host that is not a balancer
SENDER = "sender@example.org"
RCPT = "user@test.local"
TIMEOUT_PROXY = 2           # seconds, "timeout proxy"

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

AUTH_BLOCK = """auth {
	checker "demo" static {
		user "alice@example.org" password "secret"
	}
	failure-delay 0s
	failure-delay-max 0s
}
"""

# frontend name: (portcullis listener, server options)
FRONTENDS = {
    "v1_starttls": ("main", "send-proxy"),
    "v2_starttls": ("main", "send-proxy-v2"),
    "v1_smtps": ("smtps", "send-proxy"),
    "v2_smtps": ("smtps", "send-proxy-v2"),
}

D = None
H = None


class HAProxy:
    """haproxy -db with one frontend per FRONTENDS entry on free ports."""

    def __init__(self, daemon):
        self.dir = tempfile.mkdtemp(prefix="portcullis-haproxy-")
        self.ports = {name: free_port() for name in FRONTENDS}
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        self.logfile = os.path.join(self.dir, "log")
        text = ("global\n"
                "\tlog stdout format raw local0 info\n"
                "defaults\n"
                "\tmode tcp\n"
                "\tlog global\n"
                "\toption tcplog\n"
                "\toption log-health-checks\n"
                "\ttimeout connect 2s\n"
                "\ttimeout client 30s\n"
                "\ttimeout server 30s\n")
        for name, (listener, opts) in FRONTENDS.items():
            # Health checks every 500 ms, as the README has them:
            # version 2 sends them as LOCAL; on STARTTLS they wait for
            # the greeting and say EHLO, on implicit TLS they shake
            # hands.
            if listener == "smtps":
                check, tls = "", " check-ssl verify none"
            else:
                check, tls = "\toption smtpchk EHLO lb.example\n", ""
            text += ("frontend %s\n\tbind 127.0.0.1:%d\n"
                     "\tdefault_backend b_%s\n"
                     "backend b_%s\n%s\tserver s 127.0.0.1:%d %s "
                     "check inter 500ms%s\n"
                     % (name, self.ports[name], name, name, check,
                        daemon.ports[listener], opts, tls))
        with open(self.conf, "w") as f:
            f.write(text)
        self.log_fh = open(self.logfile, "wb")
        self.proc = subprocess.Popen(
            [HAPROXY, "-db", "-f", self.conf], stdin=subprocess.DEVNULL,
            stdout=self.log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + 10
        for port in self.ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port),
                                             timeout=1).close()
                    break
                except OSError:
                    if (self.proc.poll() is not None or
                            time.monotonic() > deadline):
                        self.stop()
                        raise AssertionError("haproxy did not start:\n"
                                             + self.log())
                    time.sleep(0.05)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

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


def setUpModule():
    global D, H
    if not os.path.exists(HAPROXY):
        raise unittest.SkipTest("needs haproxy (make deps)")
    src = "proxy-protocol from { %s %s/32 }" % (BALANCER, TESTER)
    D = Daemon(listen="tls " + src, listeners={"smtps": "smtps " + src},
               local_domains=["example.org", "test.local"],
               timeout={"proxy": "%ds" % TIMEOUT_PROXY},
               conf_extra=AUTH_BLOCK)
    D.start()
    try:
        H = HAProxy(D)
    except BaseException:
        D.stop()
        raise


def tearDownModule():
    if H is not None:
        H.stop()
    if D is not None:
        D.stop()


def v2_header(cmd=1, fam=0x11, addr=b"", tlvs=b""):
    body = addr + tlvs
    return V2_SIG + bytes([0x20 | cmd, fam]) + struct.pack("!H",
                                                           len(body)) + body


def v2_inet(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET, src) +
            socket.inet_pton(socket.AF_INET, dst) +
            struct.pack("!HH", sport, dport))


def v2_inet6(src, dst, sport, dport):
    return (socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!HH", sport, dport))


class ProxyTest(unittest.TestCase):

    # --- helpers ------------------------------------------------------

    def direct(self, listener="main", source=TESTER):
        """A connection straight to a listener, from source."""
        s = socket.create_connection(("127.0.0.1", D.ports[listener]),
                                     timeout=10,
                                     source_address=(source, 0))
        self.addCleanup(s.close)
        return s

    def assertClosedSilently(self, s, within=3.0):
        """The server closes without a byte, within seconds."""
        s.settimeout(within + 2)
        t0 = time.monotonic()
        try:
            data = s.recv(4096)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")
        elapsed = time.monotonic() - t0
        self.assertLess(elapsed, within)
        return elapsed

    def smtp_via(self, frontend):
        port = H.ports[frontend]
        if frontend.endswith("smtps"):
            c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10,
                                 source_address=(CLIENT, 0),
                                 context=tls_client_context())
        else:
            c = smtplib.SMTP("127.0.0.1", port, timeout=10,
                             source_address=(CLIENT, 0))
        self.addCleanup(c.close)
        return c

    def deliver_via(self, frontend):
        """A whole transaction as CLIENT through HAProxy."""
        mark = D.log_offset()
        c = self.smtp_via(frontend)
        helo = frontend.replace("_", "-") + ".example"
        code, text = c.ehlo(helo)
        self.assertEqual(code, 250)
        self.assertIn(b"Hello " + CLIENT.encode(), text)
        if not frontend.endswith("smtps"):
            c.starttls(context=tls_client_context())
            c.ehlo(helo)
        body = b"Subject: %s\r\n\r\nThrough HAProxy.\r\n" % helo.encode()
        c.mail(SENDER)
        c.rcpt(RCPT)
        code, text = c.data(body)
        self.assertEqual(code, 250, text)
        c.quit()
        qid = queued_id("250 %s\r\n" % text.decode())
        env, received, message = parse_spooled(D.spool_file(qid))
        f = envelope_fields(env)
        self.assertEqual(f["X-Portcullis-Client"], [CLIENT])
        (sid,) = f["X-Portcullis-Session"]
        self.assertRegex(received, received_rx(
            helo, "ESMTPS", sid, rcpt=RCPT, tls=True, client=CLIENT))
        self.assertEqual(message, body)
        D.wait_log(r"session %s: connection from %s on \S+ via %s "
                   r"\(PROXY %s\)" % (sid, CLIENT.replace(".", r"\."),
                                      BALANCER.replace(".", r"\."),
                                      frontend[:2]), since=mark)

    def refused(self, pattern, since):
        return D.wait_log(r"refused [0-9.:a-f]+ on \S+: " + pattern,
                          since=since)

    # --- through HAProxy ----------------------------------------------

    def test_starttls_v1(self):
        self.deliver_via("v1_starttls")

    def test_starttls_v2(self):
        self.deliver_via("v2_starttls")

    def test_smtps_v1(self):
        self.deliver_via("v1_smtps")

    def test_smtps_v2(self):
        self.deliver_via("v2_smtps")

    def test_failed_login_names_the_client_for_fail2ban(self):
        mark = D.log_offset()
        for frontend in ("v1_starttls", "v2_smtps"):
            c = self.smtp_via(frontend)
            c.ehlo("client.example")
            if not frontend.endswith("smtps"):
                c.starttls(context=tls_client_context())
                c.ehlo("client.example")
            with self.assertRaises(smtplib.SMTPAuthenticationError):
                c.login("alice@example.org", "wrong")
        # smtplib tries PLAIN, then LOGIN: two failures a login.
        text = D.wait_log(r"auth result=fail", count=4, since=mark)
        lines = [l for l in text.splitlines() if "auth result=fail" in l]
        for line in lines:
            self.assertIn(" client=%s " % CLIENT, line)
        if not (F2B and os.path.exists(F2B_COMMON)):
            self.skipTest("needs fail2ban's fail2ban-regex (make deps)")
        tmp = tempfile.mkdtemp(prefix="portcullis-f2b-")
        self.addCleanup(shutil.rmtree, tmp, True)
        os.mkdir(os.path.join(tmp, "filter.d"))
        shutil.copy(F2B_COMMON, os.path.join(tmp, "filter.d"))
        shutil.copy(F2B_FILTER, os.path.join(tmp, "filter.d"))
        path = os.path.join(tmp, "log")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        p = subprocess.run(
            [F2B, "--datepattern", "{NONE}", "--out", "ip", path,
             os.path.join(tmp, "filter.d", "portcullis.conf")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=60, env={k: v for k, v in os.environ.items()
                             if not k.startswith("PYTHON")})
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(collections.Counter(p.stdout.split()),
                         {CLIENT: len(lines)})

    def test_health_checks_pass(self):
        # HAProxy's checks connect every 300 ms through each backend:
        # version 2 says LOCAL, and those sessions keep its address.
        D.wait_log(r"connection from %s on \S+ via %s "
                   r"\(PROXY v2 LOCAL\)" % (BALANCER, BALANCER), count=2,
                   timeout=5)
        time.sleep(1)
        # smtpchk had its answer to EHLO after either header, and
        # check-ssl its TLS handshake.
        for name in FRONTENDS:
            self.assertRegex(H.log(), r"Health check for server b_%s/s "
                             r"succeeded.*Layer%d check passed"
                             % (name, 6 if name.endswith("smtps") else 7))
        self.assertNotIn(" is DOWN", H.log())
        self.assertNotRegex(D.log(), r"refused %s on \S+: PROXY header"
                            % BALANCER.replace(".", r"\."))

    # --- straight to the listeners ------------------------------------

    def test_forged_header_from_a_stranger_is_refused(self):
        for listener in ("main", "smtps"):
            mark = D.log_offset()
            s = self.direct(listener, source=STRANGER)
            s.sendall(b"PROXY TCP4 6.6.6.6 127.0.0.1 1234 587\r\n")
            self.assertClosedSilently(s)
            self.refused("not a proxy-protocol source", mark)
            self.assertNotIn("6.6.6.6", D.log()[mark:])

    def test_garbage_is_refused_at_once(self):
        cases = [
            (b"EHLO client.example\r\n", "not a PROXY protocol header"),
            (b"\x16\x03\x01\x02\x00\x01", "not a PROXY protocol header"),
            (b"PROXY TCP4 1.2.3.400 127.0.0.1 1 2\r\n", "bad TCP4 address"),
            (b"PROXY TCP4 1.2.3.4 127.0.0.1 01 2\r\n", "bad port"),
            (b"PROXY TCP4  1.2.3.4 127.0.0.1 1 2\r\n", "want 5 fields"),
            (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2 \r\n", "want 5 fields"),
            (b"PROXY TCP4 ::1 127.0.0.1 1 2\r\n", "bad TCP4 address"),
            (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad TCP6 address"),
            (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 65536\r\n", "bad port"),
            (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\rX", "CR without LF"),
            (b"PROXY TCP5 1.2.3.4 127.0.0.1 1 2\r\n", "unknown protocol"),
            (b"PROXY TCP4 1.2.3.4 127.0.0.1 1 2\n", "octet 0x0a"),
            (b"PROXY TCP6 " + b"1" * 120, "no CR LF within 107 octets"),
            (V2_SIG + b"\x31\x11\x00\x0c" + b"\0" * 12, "version 3"),
            (V2_SIG + b"\x22\x11\x00\x0c" + b"\0" * 12, "command 2"),
            (V2_SIG + b"\x21\x41\x00\x0c" + b"\0" * 12, "family"),
            (V2_SIG + b"\x21\x11\x02\x10", "more than 536"),
            (v2_header(addr=b"\0" * 8), "address block of 8"),
            (v2_header(addr=v2_inet("1.2.3.4", "5.6.7.8", 1, 2),
                       tlvs=b"\x04\x00\x09abc"), "TLV type 0x04"),
        ]
        for data, why in cases:
            with self.subTest(data=data):
                mark = D.log_offset()
                s = self.direct("main")
                s.sendall(data)
                self.assertClosedSilently(s)
                self.refused("PROXY header: .*" + why.replace(".", r"\."),
                             mark)

    def test_truncated_header_is_refused(self):
        for data in (b"PROXY TCP4 1.2.3.4 5.6.7.8 12",
                     V2_SIG + b"\x21\x11\x00\x0c\x01\x02"):
            with self.subTest(data=data):
                mark = D.log_offset()
                s = self.direct("smtps")
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                self.assertClosedSilently(s)
                self.refused(r"closed after %d octets of a PROXY header"
                             % len(data), mark)

    def test_silent_client_is_closed_at_the_timeout(self):
        mark = D.log_offset()
        s = self.direct("main")
        s.sendall(b"PROXY TCP4 1.2.")     # and then nothing
        elapsed = self.assertClosedSilently(s, within=TIMEOUT_PROXY + 2)
        self.assertGreater(elapsed, TIMEOUT_PROXY - 0.5)
        self.refused(r"no PROXY header within %ds" % TIMEOUT_PROXY, mark)
        mark = D.log_offset()
        s = self.direct("smtps")
        elapsed = self.assertClosedSilently(s, within=TIMEOUT_PROXY + 2)
        self.assertGreater(elapsed, TIMEOUT_PROXY - 0.5)
        self.refused(r"no PROXY header within %ds" % TIMEOUT_PROXY, mark)

    def test_header_in_pieces(self):
        # TCP may cut the header anywhere (section 2); nothing is taken
        # past its end.
        for header in (b"PROXY TCP4 192.0.2.33 127.0.0.1 40000 587\r\n",
                       v2_header(addr=v2_inet("192.0.2.33", "127.0.0.1",
                                              40000, 587))):
            with self.subTest(header=header):
                s = self.direct("main")
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for i in range(0, len(header), 5):
                    s.sendall(header[i:i + 5])
                    time.sleep(0.02)
                self.assertEqual(read_reply(s),
                                 "220 test.local ESMTP portcullis\r\n")
                s.sendall(b"EHLO x\r\n")
                self.assertIn("Hello 192.0.2.33\r\n", read_reply(s))

    def test_octets_after_the_header_are_the_clients(self):
        # Header and an early EHLO in one segment: the EHLO is left for
        # the session, which refuses a client that talks first.
        s = self.direct("main")
        s.sendall(b"PROXY TCP4 192.0.2.34 127.0.0.1 40000 587\r\n"
                  b"EHLO early.example\r\n")
        self.assertTrue(read_reply(s).startswith("554 5.5.0"))
        D.wait_log(r"refused 192\.0\.2\.34 on \S+: talked before")

    def test_v2_tlvs_and_ipv6(self):
        tlvs = (b"\x02\x00\x0bexample.org" +     # PP2_TYPE_AUTHORITY
                b"\x04\x00\x00" +                # PP2_TYPE_NOOP, empty
                b"\xe0\x00\x03abc")              # a custom type
        cases = [
            (v2_header(fam=0x21, addr=v2_inet6("2001:db8::7", "::1", 1, 2),
                       tlvs=tlvs), "2001:db8::7"),
            (v2_header(fam=0x21, addr=v2_inet6("::ffff:192.0.2.35", "::1",
                                               1, 2)), "192.0.2.35"),
            (b"PROXY TCP6 2001:db8::8 ::1 40000 587\r\n", "2001:db8::8"),
            (b"PROXY UNKNOWN\r\n", TESTER),
            (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", TESTER),
            (v2_header(cmd=0, fam=0x00), TESTER),               # LOCAL
            (v2_header(cmd=0, fam=0x11, addr=v2_inet(
                "192.0.2.1", "127.0.0.1", 1, 2)), TESTER),       # LOCAL
            (v2_header(cmd=1, fam=0x00), TESTER),               # UNSPEC
            (v2_header(fam=0x12, addr=v2_inet("192.0.2.1", "127.0.0.1",
                                              1, 2)), TESTER),    # UDP
        ]
        for header, client in cases:
            with self.subTest(header=header):
                s = self.direct("main")
                s.sendall(header)
                self.assertEqual(read_reply(s),
                                 "220 test.local ESMTP portcullis\r\n")
                s.sendall(b"EHLO x\r\n")
                self.assertIn("Hello %s\r\n" % client, read_reply(s))
                s.sendall(b"QUIT\r\n")
                read_reply(s)

    def test_plain_auth_line_via_balancer(self):
        # AUTH over the proxied session: the penalty and authd see the
        # client, and a good password still works.
        c = self.smtp_via("v2_starttls")
        c.ehlo("client.example")
        c.starttls(context=tls_client_context())
        c.ehlo("client.example")
        mark = D.log_offset()
        self.assertEqual(c.login("alice@example.org", "secret")[0], 235)
        D.wait_log(r"auth result=ok .* client=%s " % CLIENT.replace(
            ".", r"\."), since=mark)


if __name__ == "__main__":
    unittest.main()
