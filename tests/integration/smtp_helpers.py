"""
smtp_helpers.py -- what the ESMTP integration tests share.

- Session: a raw SMTP conversation over a socket (plain or TLS), with a
  buffered reader that returns one whole reply at a time, so that
  pipelined replies can be taken one by one.
- parse_spooled(): split a file of spool/new into its envelope block,
  its Received header and the message exactly as it was received.
- the real clients: run_curl(), run_swaks(), tls_client_context().
- NextHop: a real SMTP or LMTP server (aiosmtpd from Debian's
  python3-aiosmtpd) on loopback in a subprocess, for the relay tests.

This file is also the next hop's program: "/usr/bin/python3
smtp_helpers.py nexthop ..." (Debian's python3, which has aiosmtpd,
whatever python3 runs the tests).
"""

import json
import os
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

from daemon import Daemon, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"

QUEUED_RX = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9a-f]{16})\r\n$")
ENVELOPE_HEADERS = ("Return-Path:", "X-Portcullis-")


def tls_client_context():
    """A client context that accepts the tests' self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Session:
    """A raw SMTP conversation.  reply() returns one whole reply (all
    its lines, CR LF included) as text; whatever came after it stays
    buffered for the next call."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    @classmethod
    def open(cls, d, listener="main", timeout=5.0, greet=True, tls=False):
        s = cls(d.connect_to(listener, timeout=timeout))
        if tls:
            s.sock = tls_client_context().wrap_socket(s.sock)
        if greet:
            s.greeting = s.reply()
        return s

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            raise EOFError("connection closed; unread: %r" % self.buf)
        self.buf += chunk

    def reply(self):
        """One reply; EOFError if the server closes before it is whole."""
        start = 0
        while True:
            while b"\r\n" not in self.buf[start:]:
                self._fill()
            end = self.buf.index(b"\r\n", start) + 2
            line = self.buf[start:end]
            if len(line) < 4 or line[3:4] != b"-":
                text = self.buf[:end].decode(errors="replace")
                self.buf = self.buf[end:]
                return text
            start = end

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, line):
        """Send one command line (CR LF added) and return its reply."""
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.example"):
        r = self.cmd("EHLO " + name)
        assert r.startswith("250-"), r
        return r

    def read_all(self, timeout=5.0):
        """Everything until the server closes the connection."""
        self.sock.settimeout(timeout)
        data = self.buf
        self.buf = b""
        self.reset = False
        while True:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                # A server that closes with input unread sends RST
                # after its last reply; what came before still counts.
                self.reset = True
                chunk = b""
            except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
                chunk = b""     # closed without close_notify
            if not chunk:
                return data.decode(errors="replace")
            data += chunk

    def nothing_within(self, seconds):
        """True if the server sent nothing (and did not close) in time."""
        if self.buf:
            return False
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return True
        finally:
            self.sock.settimeout(5.0)
        self.buf += chunk
        return False

    def closed_within(self, seconds):
        """True if the server closes (EOF) within seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, TimeoutError):
                return False
            except (ConnectionResetError, ssl.SSLEOFError,
                    ssl.SSLZeroReturnError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def starttls(self):
        """STARTTLS and the handshake; returns the 220 reply."""
        r = self.cmd("STARTTLS")
        if r.startswith("220 "):
            assert self.buf == b"", self.buf
            self.sock = tls_client_context().wrap_socket(self.sock)
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rss_kib(pid):
    """Resident memory of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def flood(sock, data, total, seconds=1.0):
    """Send data repeatedly, up to total octets, without reading
    anything; stop when the peer stops reading (a send blocks for
    seconds).  Returns the octets sent."""
    sock.settimeout(seconds)
    sent = 0
    try:
        while sent < total:
            sock.sendall(data)
            sent += len(data)
    except (socket.timeout, TimeoutError):
        pass
    finally:
        sock.settimeout(5.0)
    return sent


def transaction(s, sender="sender@client.example",
                rcpts=("user@example.org",), body=b"Subject: t\r\n\r\nhi\r\n"):
    """MAIL, RCPT..., DATA, the body, the dot; returns every reply."""
    out = [s.cmd("MAIL FROM:<%s>" % sender)]
    for r in rcpts:
        out.append(s.cmd("RCPT TO:<%s>" % r))
    out.append(s.cmd("DATA"))
    s.send(body + b".\r\n")
    out.append(s.reply())
    return out


def queued_id(reply):
    m = QUEUED_RX.match(reply)
    if m is None:
        raise AssertionError("not a queued reply: %r" % reply)
    return m.group(1)


def parse_spooled(data):
    """(envelope lines, Received header, message) of a spool/new file.

    The envelope block is the run of Return-Path: and X-Portcullis-*
    lines at the top; the Received header is the next header with its
    continuation lines; the message is the rest, byte for byte."""
    pos = 0
    env = []
    while True:
        end = data.index(b"\r\n", pos) + 2
        line = data[pos:end].decode("utf-8")
        if not line.startswith(ENVELOPE_HEADERS):
            break
        env.append(line[:-2])
        pos = end
    if not data.startswith(b"Received: ", pos):
        raise AssertionError("no Received header after the envelope: %r"
                             % data[pos:pos + 200])
    start = pos
    while True:
        pos = data.index(b"\r\n", pos) + 2
        if data[pos:pos + 1] not in (b"\t", b" "):
            break
    return env, data[start:pos].decode(), data[pos:]


def envelope_fields(env):
    """{'Return-Path': [...], 'X-Portcullis-Envelope-To': [...], ...}"""
    out = {}
    for line in env:
        name, value = line.split(": ", 1)
        out.setdefault(name, []).append(value)
    return out


def received_rx(helo, proto, session_id, rcpt=None, tls=False,
                hostname="test.local", client="127.0.0.1", n=1):
    """A regex for the whole Received header the engine writes."""
    rx = (r"Received: from %s \(\[%s\]\)\r\n"
          r"\tby %s \(portcullis\) with %s id %s\.%d"
          % (re.escape(helo), re.escape(client), re.escape(hostname),
             proto, session_id, n))
    if tls:
        rx += r"\r\n\t\(using TLSv1\.[23] [A-Z0-9_-]+\)"
    if rcpt is not None:
        rx += r"\r\n\tfor <%s>" % re.escape(rcpt)
    rx += (r";\r\n\t(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} "
           r"\d{4} \d\d:\d\d:\d\d \+0000\r\n")
    return "^" + rx + r"\Z"


class DaemonTestCase(unittest.TestCase):
    """One daemon for the whole class: daemon_args are Daemon's."""

    daemon_args = {}

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(**cls.daemon_args)
        try:
            cls.d.start()
        except BaseException:
            cls.d.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def session(self, listener="main", ehlo=True, **kw):
        s = Session.open(self.d, listener, **kw)
        self.addCleanup(s.close)
        self.assertEqual(s.greeting,
                         "220 %s ESMTP portcullis\r\n" % self.d.hostname)
        if ehlo:
            s.ehlo()
        return s

    def assertSpooled(self, qid, sender, rcpts, helo, proto, body,
                      tls=False, n=1):
        """spool/new/<qid> holds the envelope, our Received header and
        exactly body; returns the session id it names."""
        self.assertIn(qid, self.d.spooled())
        data = self.d.spool_file(qid)
        env, received, message = parse_spooled(data)
        f = envelope_fields(env)
        self.assertEqual(env[0], "Return-Path: <%s>" % sender)
        self.assertEqual(f["X-Portcullis-Envelope-To"],
                         ["<%s>" % r for r in rcpts])
        self.assertEqual(f["X-Portcullis-Client"], ["127.0.0.1"])
        (sid,) = f["X-Portcullis-Session"]
        self.assertRegex(sid, r"^[0-9a-f]{16}$")
        self.assertRegex(received, received_rx(
            helo, proto, sid, rcpt=rcpts[0] if len(rcpts) == 1 else None,
            tls=tls, hostname=self.d.hostname, n=n))
        self.assertEqual(message, body)
        # The log ties the queue id to the same session.
        self.assertRegex(self.d.log(),
                         r"session %s: queued as %s," % (sid, qid))
        return sid

    def assertNothingSpooled(self, before=()):
        self.assertEqual([n for n in self.d.spooled() if n not in before],
                         [])
        # A refused message leaves nothing behind in tmp/ either.
        self.assertEqual(self.d.spooled("tmp"), [])


def run_curl(args, data, timeout=20):
    """curl with data on standard input; (exit status, stderr text)."""
    p = subprocess.run(
        ["curl", "-sS", "-v", "--upload-file", "-"] + args,
        input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        timeout=timeout)
    return p.returncode, p.stderr.decode(errors="replace")


def curl_server_lines(stderr):
    """The server's lines as curl -v shows them ("< 250 ...")."""
    return [l[2:] for l in stderr.splitlines() if l.startswith("< ")]


def run_swaks(args, timeout=20):
    """swaks; (exit status, its transcript)."""
    p = subprocess.run(
        ["swaks", "--hide-informational"] + args, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def swaks_server_lines(out):
    """The server's lines of a swaks transcript ("<-  250 ...",
    "<~  250 ..." once TLS is up, "<** 5xx" for an error)."""
    return [re.sub(r"^<(-|~|\*\*|~\*\*)\s+", "", l)
            for l in out.splitlines() if re.match(r"^<(-|~|\*\*|~\*\*)\s", l)]


# ---------------------------------------------------------------------
# The next hop for relay tests.

class NextHop:
    """A real SMTP or LMTP server on 127.0.0.1 (aiosmtpd).

    rules: (stage, local part, reply) triples: at stage "mail", "rcpt"
    or "data", an address with that local part (the sender for mail,
    the recipient for rcpt, any recipient for data; over LMTP, that
    recipient's own reply after the dot) gets reply instead of a 250,
    e.g. ("data", "refuse", "550 5.7.1 no"); a reply "sleep 2" at data
    accepts after 2 seconds.  tls: offer STARTTLS with
    this (cert, key).  Each message accepted is recorded; messages()
    returns them as dicts with greeting (EHLO/LHLO), helo, tls,
    mail_from, mail_options, rcpt_tos and content (bytes)."""

    def __init__(self, lmtp=False, rules=(), tls=None):
        self.dir = tempfile.mkdtemp(prefix="portcullis-nexthop-")
        self.port = free_port()
        args = [SYSTEM_PYTHON, os.path.join(HERE, "smtp_helpers.py"),
                "nexthop", "--port", str(self.port), "--dir", self.dir]
        if lmtp:
            args.append("--lmtp")
        for stage, local, reply in rules:
            args += ["--rule", "%s:%s:%s" % (stage, local, reply)]
        if tls is not None:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PYTHON")}
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        r, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if r else b""
        if line.strip() != b"READY":
            self.stop()
            raise AssertionError("next hop did not start: %r" % line)

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".json"):
                with open(os.path.join(self.dir, name)) as f:
                    m = json.load(f)
                m["content"] = m["content"].encode("latin-1")
                out.append(m)
        return out

    def clear(self):
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def nexthop_main(argv):
    """Run the aiosmtpd next hop until SIGTERM (Debian's python3)."""
    import argparse
    import signal
    import threading
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lmtp", action="store_true")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    opts = ap.parse_args(argv)
    rules = {}
    for rule in opts.rule:
        stage, local, reply = rule.split(":", 2)
        rules[(stage, local.lower())] = reply
    counter = [0]

    def rule(stage, address):
        return rules.get((stage, address.split("@")[0].lower()))

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname,
                              responses):
            session.greeting = "LHLO" if opts.lmtp else "EHLO"
            session.host_name = hostname
            return responses

        async def handle_MAIL(self, server, session, envelope, address,
                              mail_options):
            reply = rule("mail", address)
            if reply:
                return reply
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 2.1.0 OK"

        async def handle_RCPT(self, server, session, envelope, address,
                              rcpt_options):
            reply = rule("rcpt", address)
            if reply:
                return reply
            envelope.rcpt_tos.append(address)
            return "250 2.1.5 OK"

        async def handle_DATA(self, server, session, envelope):
            import asyncio
            replies = [rule("data", r) for r in envelope.rcpt_tos]
            for i, r in enumerate(replies):
                if r and r.startswith("sleep "):
                    # A slow next hop: answer 250 after that long.
                    await asyncio.sleep(float(r.split()[1]))
                    replies[i] = None
            ok = "250 2.0.0 Message accepted for delivery"
            if opts.lmtp:
                # RFC 2033 4.2: one reply per recipient after the dot.
                out = [r or ok for r in replies]
            else:
                refused = [r for r in replies if r]
                out = [refused[0] if refused else ok]
            if any(r.startswith("250") for r in out):
                counter[0] += 1
                rec = {
                    "greeting": getattr(session, "greeting", None),
                    "helo": getattr(session, "host_name", None),
                    "tls": session.ssl is not None,
                    "mail_from": envelope.mail_from,
                    "mail_options": envelope.mail_options,
                    "rcpt_tos": [r for r, rep in zip(envelope.rcpt_tos, out)
                                 if rep.startswith("250")]
                    if opts.lmtp else envelope.rcpt_tos,
                    "content": envelope.original_content.decode("latin-1"),
                }
                path = os.path.join(opts.dir, "%04d.json" % counter[0])
                with open(path + ".tmp", "w") as f:
                    json.dump(rec, f)
                os.rename(path + ".tmp", path)
            return "\r\n".join(out)

    tls_context = None
    if opts.tls_cert:
        import ssl as ssl_
        tls_context = ssl_.SSLContext(ssl_.PROTOCOL_TLS_SERVER)
        tls_context.load_cert_chain(opts.tls_cert, opts.tls_key)

    class Ctl(Controller):
        def factory(self):
            cls = LMTP if opts.lmtp else SMTP
            return cls(self.handler, data_size_limit=None,
                       enable_SMTPUTF8=True, decode_data=False,
                       tls_context=tls_context)

    ctl = Ctl(Handler(), hostname="127.0.0.1", port=opts.port)
    ctl.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    print("READY", flush=True)
    done.wait()
    ctl.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "nexthop":
        nexthop_main(sys.argv[2:])
    else:
        sys.exit("usage: smtp_helpers.py nexthop --port N --dir D [--lmtp] "
                 "[--rule stage:localpart:reply]... "
                 "[--tls-cert F --tls-key F]")
