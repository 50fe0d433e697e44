"""
test_keys.py -- the TLS private keys live in the key process only
(keys/keys.c): not in any worker, not in master after start-up, and the
key process does hold them (so the search can find a key where there is
one).  RSA and ECDSA certificates both sign through it, over TLS 1.3
(RSA-PSS, ECDSA) and TLS 1.2 (PKCS #1 v1.5, ECDSA).  Killed under load,
the key process is back within 2 s and clients see a finished
handshake, a 454 or a closed connection, never a hang.  A reload with a
new certificate and key reaches the key process and the workers, and a
session open across it goes on.  While a handshake waits for the key
process, the worker serves its other sessions (the handshake is an
OpenSSL async job); a key process that does not answer fails the
handshake after two one-second tries.

The memory search reads /proc/PID/mem and needs root; the malformed
requests a worker could send are unit-tested on the key process's
validator (tests/unit/test_keys_request.c) and fuzzed
(tests/fuzz/fuzz_keys_request.c).
"""

import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from daemon import Daemon, IS_ROOT
from smtp_helpers import tls_client_context

RSA_HOST = "rsa.test.local"
CHUNK = 16 << 20
P384_HOST = "p384.test.local"


def make_rsa_cert(cert, key, hostname, bits=2048, newkey=None):
    subprocess.run(
        ["openssl", "req", "-x509"] +
        (newkey or ["-newkey", "rsa:%d" % bits]) + ["-nodes",
         "-days", "2", "-subj", "/CN=%s" % hostname,
         "-addext", "subjectAltName=DNS:%s" % hostname,
         "-keyout", key, "-out", cert],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=60)
    os.chmod(key, 0o600)
    os.chmod(cert, 0o644)


def key_secrets(key):
    """{name: big-endian bytes} of the key's secret numbers, from
    openssl pkey -text: RSA's private exponent and first prime, or the
    EC private scalar."""
    text = subprocess.run(["openssl", "pkey", "-in", key, "-text",
                           "-noout"], capture_output=True, text=True,
                          check=True).stdout
    out = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s*$", line)
        if m:
            name = m.group(1)
            out[name] = ""
            continue
        if name is not None and re.match(r"^\s+[0-9a-f:]+$", line):
            out[name] += line.strip()
        else:
            name = None
    want = {"privateExponent", "prime1", "priv"}
    secrets = {}
    for k, v in out.items():
        if k in want:
            b = bytes.fromhex(v.replace(":", "")).lstrip(b"\0")
            secrets[k] = b
    assert secrets, "no secret found in openssl's output:\n" + text
    return secrets


def needles(secrets):
    """16-octet slices of each secret, big- and little-endian (OpenSSL's
    big numbers are arrays of little-endian words on x86 and arm64)."""
    out = []
    for name, b in secrets.items():
        mid = len(b) // 2
        s = b[mid - 8:mid + 8]
        out.append((name + " (big-endian)", s))
        r = b[::-1]
        out.append((name + " (little-endian)", r[mid - 8:mid + 8]))
    return out


def memory_has(pid, needle_list):
    """The names of the needles found in pid's readable memory."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            addrs, perms = fields[0], fields[1]
            path = fields[5] if len(fields) > 5 else ""
            if "r" not in perms or path in ("[vvar]", "[vsyscall]",
                                            "[vvar_vclock]"):
                continue
            lo, hi = (int(x, 16) for x in addrs.split("-"))
            # A sanitizer's shadow: reserved terabytes, no heap in it.
            if hi - lo > 1 << 30:
                continue
            tail = b""
            for at in range(lo, hi, CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(CHUNK, hi - at))
                except (OSError, ValueError, OverflowError):
                    tail = b""
                    continue
                for name, n in needle_list:
                    if n in data:
                        found.add(name)
                tail = data[-16:]
    return found


def handshake(d, listener, server_name, version, timeout=10):
    """One TLS handshake; the negotiated version and cipher."""
    ctx = tls_client_context()
    ctx.minimum_version = version
    ctx.maximum_version = version
    s = socket.create_connection(("127.0.0.1", d.ports[listener]),
                                 timeout=timeout)
    try:
        if listener == "main":
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"EHLO c\r\n")
            while f.readline()[3:4] == b"-":
                pass
            s.sendall(b"STARTTLS\r\n")
            reply = f.readline()
            f.close()
            if not reply.startswith(b"220"):
                return reply.decode().strip()
        t = ctx.wrap_socket(s, server_hostname=server_name)
        r = (t.version(), t.cipher()[0],
             t.getpeercert(binary_form=True))
        t.close()
        return r
    finally:
        s.close()


@unittest.skipUnless(IS_ROOT, "optional: reading another process's "
                     "memory and the privilege drop need root")
class TestKeyMemory(unittest.TestCase):
    """One daemon, an ECDSA P-256 pki (the listener's), an RSA-2048 and
    an ECDSA P-384 one (by SNI)."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(listen="tls", listeners={"smtps": "smtps"},
                       workers=2)
        cls.rsa_cert = os.path.join(cls.d.dir, "rsa.pem")
        cls.rsa_key = os.path.join(cls.d.dir, "rsa.key")
        make_rsa_cert(cls.rsa_cert, cls.rsa_key, RSA_HOST)
        cls.p384_cert = os.path.join(cls.d.dir, "p384.pem")
        cls.p384_key = os.path.join(cls.d.dir, "p384.key")
        make_rsa_cert(cls.p384_cert, cls.p384_key, P384_HOST,
                      newkey=["-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:secp384r1"])
        cls.d.conf_extra = ('pki "%s" cert "%s" key "%s"\n'
                            'pki "%s" cert "%s" key "%s"'
                            % (RSA_HOST, cls.rsa_cert, cls.rsa_key,
                               P384_HOST, cls.p384_cert, cls.p384_key))
        cls.d.write_conf()
        cls.d.start()
        cls.d.wait_log(r"keys ready")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_both_key_types_sign_through_the_key_process(self):
        for host, kind in ((self.d.hostname, "ECDSA"), (RSA_HOST, "RSA"),
                           (P384_HOST, "ECDSA")):
            for v in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                for listener in ("main", "smtps"):
                    r = handshake(self.d, listener, host, v)
                    self.assertIsInstance(r, tuple, r)
                    if v == ssl.TLSVersion.TLSv1_2:
                        self.assertIn(kind, r[1])

    def test_secrets_only_in_the_key_process(self):
        # Every kind of signature first, so that any copy would be made.
        self.test_both_key_types_sign_through_the_key_process()
        secrets = needles(key_secrets(self.d.key))
        secrets += needles(key_secrets(self.rsa_key))
        keys = self.d.pids("keys")
        workers = self.d.pids("worker")
        self.assertEqual(len(keys), 1, self.d.children())
        self.assertEqual(len(workers), 2, self.d.children())
        in_keys = memory_has(keys[0], secrets)
        # The key process holds each secret number, in some byte order.
        for what in ("priv", "privateExponent", "prime1"):
            self.assertTrue(any(n.startswith(what) for n in in_keys),
                            "%s not found in the key process: the search "
                            "does not work (%r)" % (what, in_keys))
        for pid in workers + [self.d.proc.pid]:
            self.assertEqual(memory_has(pid, secrets), set(),
                             "private key material in pid %d" % pid)


@unittest.skipUnless(IS_ROOT, "optional: the key process's privilege "
                     "drop and the kill need root")
class TestKeyProcessFailure(unittest.TestCase):

    def setUp(self):
        self.d = Daemon(listen="tls", listeners={"smtps": "smtps"},
                        workers=2, tls_tickets="off")
        self.d.start()
        self.d.wait_log(r"keys ready")

    def tearDown(self):
        self.d.stop()

    def test_killed_under_load_no_hang_back_within_2s(self):
        stop = threading.Event()
        results = {"ok": 0, "454": 0, "closed": 0, "hang": 0}
        lock = threading.Lock()

        def client(listener):
            while not stop.is_set():
                t0 = time.monotonic()
                try:
                    r = handshake(self.d, listener, self.d.hostname,
                                  ssl.TLSVersion.TLSv1_3, timeout=5)
                    what = ("ok" if isinstance(r, tuple) else
                            "454" if r.startswith("454") else r)
                except (ssl.SSLError, ConnectionError, EOFError):
                    what = "closed"
                except socket.timeout:
                    what = "hang"
                if time.monotonic() - t0 > 4.5:
                    what = "hang"
                with lock:
                    results[what] = results.get(what, 0) + 1

        threads = [threading.Thread(target=client, args=(li,))
                   for li in ("main", "main", "smtps", "smtps")]
        for t in threads:
            t.start()
        time.sleep(0.5)
        old = self.d.pids("keys")
        off = self.d.log_offset()
        killed = time.monotonic()
        os.kill(old[0], signal.SIGKILL)
        new = self.d.wait_pids("keys", 1, exclude=old, timeout=2.0)
        self.d.wait_log(r"keys ready", since=off, timeout=2.0)
        back = time.monotonic() - killed
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(30)
        self.assertLess(back, 2.0)
        self.assertEqual(results["hang"], 0, results)
        self.assertTrue(set(results) <= {"ok", "454", "closed", "hang"},
                        results)
        self.assertGreater(results["ok"], 0, results)
        self.assertNotEqual(new, old)
        # After it: every handshake works again, on every worker.
        for _ in range(6):
            for li in ("main", "smtps"):
                r = handshake(self.d, li, self.d.hostname,
                              ssl.TLSVersion.TLSv1_2)
                self.assertIsInstance(r, tuple, r)

    def test_reload_new_certificate_and_key(self):
        before = handshake(self.d, "smtps", self.d.hostname,
                           ssl.TLSVersion.TLSv1_3)[2]
        # A session open across the reload, on the old generation.
        ctx = tls_client_context()
        s = socket.create_connection(("127.0.0.1", self.d.ports["smtps"]),
                                     timeout=10)
        t = ctx.wrap_socket(s, server_hostname=self.d.hostname)
        f = t.makefile("rb")
        f.readline()
        make_rsa_cert(self.d.cert, self.d.key, self.d.hostname)
        off = self.d.log_offset()
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait_log(r"keys\[\d+\]: generation 1: 1 of 1 keys loaded",
                        since=off)
        self.d.wait_log(r"authd ping ok", count=2, since=off)
        after = handshake(self.d, "smtps", self.d.hostname,
                          ssl.TLSVersion.TLSv1_2)
        self.assertIn("RSA", after[1])
        self.assertNotEqual(after[2], before)
        t.sendall(b"NOOP\r\n")
        self.assertTrue(f.readline().startswith(b"250"))
        t.sendall(b"QUIT\r\n")
        f.readline()
        t.close()


@unittest.skipUnless(IS_ROOT, "optional: stopping the key process "
                     "needs root")
class TestNoStall(unittest.TestCase):
    """One worker: while its handshake waits for a key process that does
    not answer, the worker's other sessions are served; the handshake
    ends (done or failed) by its deadline, never hangs."""

    def setUp(self):
        self.d = Daemon(listen="tls", workers=1, tls_tickets="off")
        self.d.start()
        self.d.wait_log(r"keys ready")

    def tearDown(self):
        for pid in self.d.pids("keys"):
            os.kill(pid, signal.SIGCONT)
        self.d.stop()

    def _starttls(self, out):
        t0 = time.monotonic()
        try:
            out["r"] = handshake(self.d, "main", self.d.hostname,
                                 ssl.TLSVersion.TLSv1_3, timeout=10)
        except (ssl.SSLError, ConnectionError, EOFError) as e:
            out["r"] = e
        out["t"] = time.monotonic() - t0

    def _noop_rtt(self):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=5)
        f = s.makefile("rb")
        t0 = time.monotonic()
        f.readline()
        s.sendall(b"NOOP\r\n")
        line = f.readline()
        rtt = time.monotonic() - t0
        f.close()
        s.close()
        self.assertTrue(line.startswith(b"250"), line)
        return rtt

    def test_other_sessions_go_on_while_a_handshake_waits(self):
        keys = self.d.pids("keys")[0]
        os.kill(keys, signal.SIGSTOP)
        out = {}
        th = threading.Thread(target=self._starttls, args=(out,))
        th.start()
        time.sleep(0.3)
        self.assertTrue(th.is_alive())
        # The handshake waits; the worker answers others at once.
        self.assertLess(self._noop_rtt(), 0.5)
        os.kill(keys, signal.SIGCONT)
        th.join(10)
        self.assertIsInstance(out["r"], tuple, out)

    def test_a_key_process_that_never_answers_fails_the_handshake(self):
        keys = self.d.pids("keys")[0]
        os.kill(keys, signal.SIGSTOP)
        out = {}
        th = threading.Thread(target=self._starttls, args=(out,))
        th.start()
        th.join(8)
        self.assertFalse(th.is_alive(), "the handshake hangs")
        self.assertNotIsInstance(out["r"], tuple, out)
        # Two tries of one second each, then a clean failure.
        self.assertLess(out["t"], 4.0)
        self.d.wait_log(r"no answer in 1000 ms, TLS handshake fails")
        self.assertLess(self._noop_rtt(), 0.5)


if __name__ == "__main__":
    unittest.main()
