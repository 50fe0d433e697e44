"""
test_keys.py -- the TLS private keys live in the key processes only
(keys/keys.c): not in any worker, not in master after start-up, and
every key process does hold them (so the search can find a key where
there is one).  RSA and ECDSA certificates both sign through them, over
TLS 1.3 (RSA-PSS, ECDSA) and TLS 1.2 (PKCS #1 v1.5, ECDSA).  The key
processes run as keys-user, a user of their own, and authd's user
cannot read their memory.  One of them killed under load is back within
2 s and clients see a finished handshake, a 454 or a closed connection,
never a hang.  A reload with a new certificate and key reaches the key
processes and the workers, and a session open across it goes on.  While
a handshake waits for its key process, the worker serves its other
sessions (the handshake is an OpenSSL async job); a key process that
does not answer fails the handshake after two one-second tries; a
session freed while its handshake waits (its timeout) leaves the worker
up, serving, with no descriptor left behind.

The memory search reads /proc/PID/mem and needs root; the malformed
requests a worker could send are unit-tested on the key process's
validator (tests/unit/test_keys_request.c) and fuzzed
(tests/fuzz/fuzz_keys_request.c).
"""

import os
import pwd
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

from daemon import AUTH_USER, KEYS_USER, WORKER_USER, Daemon, IS_ROOT
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
                       workers=2, key_processes=2)
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
        cls.d.wait_log(r"keys \d+ ready", count=2)

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
        self.assertEqual(len(keys), 2, self.d.children())
        self.assertEqual(len(workers), 2, self.d.children())
        # Each key process holds each secret number, in some byte order.
        for pid in keys:
            in_keys = memory_has(pid, secrets)
            for what in ("priv", "privateExponent", "prime1"):
                self.assertTrue(any(n.startswith(what) for n in in_keys),
                                "%s not found in key process %d: the "
                                "search does not work (%r)"
                                % (what, pid, in_keys))
        for pid in workers + [self.d.proc.pid]:
            self.assertEqual(memory_has(pid, secrets), set(),
                             "private key material in pid %d" % pid)


@unittest.skipUnless(IS_ROOT, "optional: the key process's privilege "
                     "drop and the kill need root")
class TestKeyProcessFailure(unittest.TestCase):

    def setUp(self):
        self.d = Daemon(listen="tls", listeners={"smtps": "smtps"},
                        workers=2, key_processes=2, tls_tickets="off")
        self.d.start()
        self.d.wait_log(r"keys \d+ ready", count=2)

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
        self.assertEqual(len(old), 2, self.d.children())
        off = self.d.log_offset()
        killed = time.monotonic()
        # One of the two: only its worker's handshakes are disturbed.
        os.kill(old[0], signal.SIGKILL)
        new = self.d.wait_pids("keys", 1, exclude=old, timeout=2.0)
        self.d.wait_log(r"keys \d+ ready", since=off, timeout=2.0)
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
        self.assertNotIn(new[0], old)
        self.assertIn(old[1], self.d.pids("keys"))
        # The other key process was not restarted.
        self.assertEqual(len(re.findall(r"keys \d+ ready",
                                        self.d.log()[off:])), 1)
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
                        count=2, since=off)
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


    def test_reload_keeps_the_number_of_key_processes(self):
        before = self.d.pids("keys")
        self.d.settings["key_processes"] = 1
        self.d.write_conf()
        off = self.d.log_offset()
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait_log(r"key-processes: 2 now, 1 after a restart",
                        since=off)
        self.d.wait_log(r"authd ping ok", count=2, since=off)
        self.assertEqual(self.d.pids("keys"), before)
        for li in ("main", "smtps"):
            r = handshake(self.d, li, self.d.hostname,
                          ssl.TLSVersion.TLSv1_3)
            self.assertIsInstance(r, tuple, r)


@unittest.skipUnless(IS_ROOT, "optional: stopping the key process "
                     "needs root")
class TestNoStall(unittest.TestCase):
    """One worker: while its handshake waits for a key process that does
    not answer, the worker's other sessions are served; the handshake
    ends (done or failed) by its deadline, never hangs."""

    def setUp(self):
        self.d = Daemon(listen="tls", workers=1, tls_tickets="off")
        self.d.start()
        self.d.wait_log(r"keys \d+ ready")

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

    def test_never_more_key_processes_than_workers(self):
        # The default is one per core; with one worker, one.
        self.assertEqual(len(self.d.pids("keys")), 1, self.d.children())

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



def uid_of(pid):
    """The real uid of pid, from /proc."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid line for pid %d" % pid)


def read_mem_as(uid, gid, pid):
    """Try, in a child that dropped to uid:gid, to read one page of
    pid's memory through /proc/PID/mem (its first readable mapping: a
    sanitizer's heap is no [heap]); the error's text, or "read"."""
    with open("/proc/%d/maps" % pid) as f:
        first = next(line for line in f if line.split()[1][0] == "r")
    start = int(first.split("-")[0], 16)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(r)
        what = b"read"
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
                mem.seek(start)
                mem.read(4096)
        except OSError as e:
            what = (os.strerror(e.errno) if e.errno else str(e)).encode()
        os.write(w, what)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(child, 0)
    return out


@unittest.skipUnless(IS_ROOT, "optional: the privilege drop and reading "
                     "another user's memory need root")
class TestKeysUser(unittest.TestCase):
    """The key processes run as keys-user, not as authd's user; authd's
    user cannot read their memory."""

    @classmethod
    def setUpClass(cls):
        # Named, though it is the default: the keyword is read too.
        cls.d = Daemon(listen="tls", workers=2, key_processes=2,
                       keys_user='"%s"' % KEYS_USER)
        cls.d.start()
        cls.d.wait_log(r"keys \d+ ready", count=2)

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def test_key_processes_run_as_their_own_user(self):
        keys_uid = pwd.getpwnam(KEYS_USER).pw_uid
        self.assertNotIn(keys_uid, (pwd.getpwnam(AUTH_USER).pw_uid,
                                    pwd.getpwnam(WORKER_USER).pw_uid, 0))
        keys = self.d.pids("keys")
        self.assertEqual(len(keys), 2, self.d.children())
        for pid in keys:
            self.assertEqual(uid_of(pid), keys_uid)
        for pid in self.d.pids("authd") + self.d.pids("worker"):
            self.assertNotEqual(uid_of(pid), keys_uid)
        self.assertRegex(self.d.log(), r"keys\[\d+\]: running as %s in "
                         % re.escape(KEYS_USER))

    def test_authd_user_cannot_read_key_memory(self):
        auth = pwd.getpwnam(AUTH_USER)
        for pid in self.d.pids("keys"):
            what = read_mem_as(auth.pw_uid, auth.pw_gid, pid)
            self.assertNotEqual(what, "read", "authd's user read the "
                                "memory of key process %d" % pid)
            self.assertIn(what, ("Permission denied",
                                 "Operation not permitted"), what)
        # Root can (the search above depends on it): the check is real.
        pid = self.d.pids("keys")[0]
        self.assertEqual(read_mem_as(0, 0, pid), "read")


@unittest.skipUnless(IS_ROOT, "optional: stopping the key processes "
                     "needs root")
class TestFreedWhilePaused(unittest.TestCase):
    """Sessions freed (their command timeout) while their handshakes
    wait for stopped key processes: tls.c leaves each handshake to end
    on its own (abandoned), with its socket.  Once the key processes
    answer, or their deadline passes, the workers are the same
    processes, serve a full handshake, and hold no more descriptors
    than before; under SANITIZE=1 Daemon.stop() fails on any report."""

    CLIENTS = 6

    def setUp(self):
        self.d = Daemon(listen="tls", workers=2, key_processes=2,
                        tls_tickets="off", timeout={"command": "1s"})
        self.d.start()
        self.d.wait_log(r"keys \d+ ready", count=2)

    def tearDown(self):
        for pid in self.d.pids("keys"):
            os.kill(pid, signal.SIGCONT)
        self.d.stop()

    def fds(self):
        return {pid: len(os.listdir("/proc/%d/fd" % pid))
                for pid in self.d.pids("worker")}

    def _client(self, out):
        s = socket.create_connection(("127.0.0.1", self.d.port), timeout=10)
        try:
            f = s.makefile("rb")
            f.readline()
            s.sendall(b"EHLO c\r\n")
            while f.readline()[3:4] == b"-":
                pass
            s.sendall(b"STARTTLS\r\n")
            f.readline()
            # The main thread hangs up through a copy of the socket,
            # which wakes this thread's handshake.
            out.append(s.dup())
            ctx = tls_client_context()
            t = ctx.wrap_socket(s, server_hostname=self.d.hostname)
            out.append("done")
            t.close()
        except (OSError, ssl.SSLError) as e:
            out.append(e)

    def _freed_while_paused(self, resume_after):
        for _ in range(4):
            handshake(self.d, "main", self.d.hostname,
                      ssl.TLSVersion.TLSv1_3)
        workers = self.d.pids("worker")
        before = self.fds()
        keys = self.d.pids("keys")
        off = self.d.log_offset()
        for pid in keys:
            os.kill(pid, signal.SIGSTOP)
        outs = [[] for _ in range(self.CLIENTS)]
        threads = [threading.Thread(target=self._client, args=(o,))
                   for o in outs]
        for t in threads:
            t.start()
        # Each session times out (1 s) while its handshake waits.
        self.d.wait_log(r"session [0-9a-f]+: its handshake waits for the "
                        r"key process", count=self.CLIENTS, since=off,
                        timeout=5)
        for o in outs:
            if o and isinstance(o[0], socket.socket):
                o[0].shutdown(socket.SHUT_RDWR)
                o[0].close()
        time.sleep(resume_after)
        for pid in keys:
            os.kill(pid, signal.SIGCONT)
        for t in threads:
            t.join(10)
            self.assertFalse(t.is_alive(), "a client hangs")
        # The abandoned handshakes end: answered, or by their deadline.
        time.sleep(2.5)
        self.assertEqual(self.d.pids("worker"), workers, self.d.log()[off:])
        self.assertNotRegex(self.d.log()[off:], r"worker \d+ \(pid")
        for _ in range(4):
            r = handshake(self.d, "main", self.d.hostname,
                          ssl.TLSVersion.TLSv1_3)
            self.assertIsInstance(r, tuple, r)
        deadline = time.monotonic() + 5
        while self.fds() != before and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.fds(), before, "descriptors left behind")

    def test_answer_comes_after_the_session_is_gone(self):
        self._freed_while_paused(0.2)

    def test_deadline_passes_after_the_session_is_gone(self):
        self._freed_while_paused(2.5)


if __name__ == "__main__":
    unittest.main()
