"""
test_protocol.py -- binaries of two builds tell each other so.

Master checks PROTO_VERSION in each child's CHILD_READY: a worker that
speaks another version (here a fake one, put where master looks for its
children) is named in one log line with both versions, killed, serves
nobody, and is tried again only at the longest back-off.  authd checks
authctl's CTL_HELLO the same way on the control socket; a client that
says anything before its hello is refused, and authctl says which
versions differ when authd speaks another one.
"""

import os
import re
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from daemon import BUILD, TOP, Daemon, base_env
from test_abuse import imsg_types

AUTHCTL = os.path.join(BUILD, "authctl")
HDR = struct.Struct("=IIII")            # type, len, peerid, pid
HELLO = struct.Struct("=II")            # version, id
IMSG_FD_MARK = 0x80000000


def proto_version():
    with open(os.path.join(TOP, "common", "proto.h")) as f:
        return int(re.search(r"#define\s+PROTO_VERSION\s+(\d+)",
                             f.read()).group(1))


T = imsg_types()
VERSION = proto_version()
OTHER = VERSION + 1

# A worker of another build: it reads its configuration on fd 3 like a
# real one, then says CHILD_READY with another version, and waits.
FAKE_WORKER = r'''#!/usr/bin/env python3
import socket, struct, sys
wid = int(sys.argv[sys.argv.index("-i") + 1])
s = socket.socket(fileno=3)
buf = b""
while True:
    data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(64 * 4))
    if not data:
        sys.exit(0)
    buf += data
    done = False
    while len(buf) >= 16:
        t, n, _, _ = struct.unpack_from("=IIII", buf)
        n &= ~0x80000000
        if len(buf) < n:
            break
        buf = buf[n:]
        done = done or t == %(conf_end)d
    if done:
        break
open("%(marker)s", "w").write("configuration read\n")
s.sendall(struct.pack("=IIII", %(ready)d, 24, wid, 0) +
          struct.pack("=II", %(version)d, wid))
while s.recv(65536):
    pass
'''


def imsg(type_, payload=b""):
    return HDR.pack(type_, HDR.size + len(payload), 0, 0) + payload


def recv_imsg(sock):
    """One message (type, payload), or None at EOF."""
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data
    hdr = exact(HDR.size)
    if hdr is None:
        return None
    type_, n, _, _ = HDR.unpack(hdr)
    body = exact((n & ~IMSG_FD_MARK) - HDR.size)
    return type_, body


class TestChildVersion(unittest.TestCase):
    """A worker of another protocol version is not used."""

    def setUp(self):
        self.libexec = tempfile.mkdtemp(prefix="portcullis-libexec-")
        self.marker = os.path.join(self.libexec, "fake-ran")
        os.chmod(self.libexec, 0o755)
        for prog in ("portcullis-authd", "portcullis-keys"):
            os.symlink(os.path.join(BUILD, prog),
                       os.path.join(self.libexec, prog))
        fake = os.path.join(self.libexec, "portcullis-worker")
        with open(fake, "w") as f:
            f.write(FAKE_WORKER % {"conf_end": T["IMSG_CONF_END"],
                                   "ready": T["IMSG_CHILD_READY"],
                                   "version": OTHER,
                                   "marker": self.marker})
        os.chmod(fake, 0o755)
        self.d = Daemon(workers=1)

    def tearDown(self):
        self.d.stop()
        subprocess.run(["rm", "-rf", self.libexec])

    def start(self):
        env = base_env()
        env["PORTCULLIS_LIBEXEC"] = self.libexec
        d = self.d
        d.log_fh = open(d.logfile, "wb")
        d.proc = subprocess.Popen(
            [os.path.join(BUILD, "portcullisd"), "-d", "-v", "-f", d.conf],
            env=env, stdin=subprocess.DEVNULL, stdout=d.log_fh,
            stderr=subprocess.STDOUT, start_new_session=True)

    def test_other_version_is_killed_and_serves_nobody(self):
        self.start()
        text = self.d.wait_log(r"worker \d+: refused CHILD_READY")
        line = re.search(r".*refused CHILD_READY.*", text).group(0)
        self.assertRegex(line, r"protocol version %d, master speaks %d: "
                         r"binaries upgraded under a running master\? "
                         r"restart portcullisd" % (OTHER, VERSION))
        self.assertTrue(os.path.exists(self.marker))
        # Killed, and not back for a long while: no spin.
        text = self.d.wait_log(r"restarting worker \d+ in \d+ ms")
        self.assertRegex(text, r"worker \d+ \(pid \d+\) killed by signal 9")
        self.assertRegex(text, r"restarting worker \d+ in 30000 ms")
        self.assertNotRegex(text, r"worker \d+ ready")
        # Nobody answers SMTP: the port has no worker.  On Linux the
        # dead worker's own socket went with it, and the connection is
        # refused; where workers share master's socket it hangs.
        try:
            s = self.d.connect(timeout=1.5)
        except ConnectionRefusedError:
            s = None
        if s is not None:
            try:
                with self.assertRaises(socket.timeout):
                    s.recv(100)
            finally:
                s.close()
        time.sleep(0.5)
        self.assertEqual(len(re.findall(r"refused CHILD_READY",
                                        self.d.log())), 1)
        # authd, of the same build, came up.
        self.assertRegex(self.d.log(), r"authd ready")


class TestControlHello(unittest.TestCase):
    """authd and authctl compare versions before anything else."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon().start()
        cls.sock = os.path.join(cls.d.dir, "control.sock")

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.sock)
        self.addCleanup(s.close)
        return s

    def authctl(self, *args, conf=None):
        env = base_env()
        env.pop("ASAN_OPTIONS", None)
        p = subprocess.run([AUTHCTL, "-f", conf or self.d.conf] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           env=env, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_other_version_is_told_ours_and_refused(self):
        mark = self.d.log_offset()
        s = self.connect()
        s.sendall(imsg(T["IMSG_CTL_HELLO"], HELLO.pack(OTHER, 0)))
        got = recv_imsg(s)
        self.assertEqual(got[0], T["IMSG_CTL_HELLO"])
        self.assertEqual(HELLO.unpack(got[1])[0], VERSION)
        self.assertIsNone(recv_imsg(s))         # then closed
        self.d.wait_log(r"control: refused CTL_HELLO: authctl speaks "
                        r"protocol version %d, authd speaks %d\n"
                        % (OTHER, VERSION), since=mark)

    def test_nothing_before_the_hello(self):
        mark = self.d.log_offset()
        s = self.connect()
        s.sendall(imsg(T["IMSG_CTL_STATS"]))
        self.assertIsNone(recv_imsg(s))
        self.d.wait_log(r"control: refused CTL_STATS: unexpected type",
                        since=mark)

    def test_same_version_is_served(self):
        s = self.connect()
        s.sendall(imsg(T["IMSG_CTL_HELLO"], HELLO.pack(VERSION, 0)) +
                  imsg(T["IMSG_CTL_STATS"]))
        got = recv_imsg(s)
        self.assertEqual(got, (T["IMSG_CTL_HELLO"], HELLO.pack(VERSION, 0)))
        types = []
        while True:
            got = recv_imsg(s)
            types.append(got[0])
            if got[0] == T["IMSG_CTL_END"]:
                break
        # The checkers' rows, their own lines, then authd's counters.
        answers = (T["IMSG_CTL_STATS_REPLY"], T["IMSG_CTL_STATS_LINE"],
                   T["IMSG_CTL_COUNTER"])
        self.assertTrue(all(t in answers for t in types[:-1]), types)

    def test_real_authctl_works(self):
        rc, out, err = self.authctl("stats")
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[0].split(),
                         ["checker", "ok", "fail", "tempfail"])

    def test_authctl_names_both_versions(self):
        """An authd of another build answers the hello: authctl says so
        and fails."""
        tmp = tempfile.mkdtemp(prefix="portcullis-fake-authd-")
        self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
        path = os.path.join(tmp, "control.sock")
        conf = os.path.join(tmp, "portcullis.conf")
        with open(conf, "w") as f:
            f.write('control-socket "%s"\nlisten on 127.0.0.1 port 2525\n'
                    % path)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(10)
        self.addCleanup(srv.close)
        heard = []

        def fake_authd():
            c, _ = srv.accept()
            with c:
                c.settimeout(10)
                heard.append(recv_imsg(c))
                c.sendall(imsg(T["IMSG_CTL_HELLO"], HELLO.pack(OTHER, 0)))
                time.sleep(0.2)

        t = threading.Thread(target=fake_authd, daemon=True)
        t.start()
        rc, out, err = self.authctl("stats", conf=conf)
        t.join(10)
        self.assertEqual(heard, [(T["IMSG_CTL_HELLO"],
                                  HELLO.pack(VERSION, 0))])
        self.assertNotEqual(rc, 0)
        self.assertEqual(out, "")
        self.assertRegex(err, r"authd speaks protocol version %d, authctl "
                         r"speaks %d" % (OTHER, VERSION))
        self.assertEqual(len(err.strip().splitlines()), 1, err)


if __name__ == "__main__":
    unittest.main()
