"""
test_abuse.py -- hostile clients and a hostile worker (issue #7, part 6).

- slowloris: a thousand connections trickling one byte at a time do not
  keep a normal client from finishing its session within a second;
- a connection flood from one address meets the per-address limit
  (421, and the log says so) while another address is served;
- 500 wrong passwords meet the failure delay, which grows per address
  up to failure-delay-max;
- a 100 MB message is refused at the size limit (552) while the
  worker's memory stays flat;
- a compromised worker: garbage written into a worker's channel to
  authd (taken with pidfd_getfd(2) while the worker is stopped) costs
  that channel and nothing else: authd lives on, with the same pid, and
  the other workers' logins go on at their usual speed.

Each test prints its figures on standard error.
"""

import ctypes
import os
import random
import re
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import threading
import time
import unittest

from daemon import BUILD, TOP, Daemon
from smtp_helpers import Session, rss_kib
from test_fault import (LOCAL_USERS, note, plain_b64, probe,
                        static_auth_block)

USER, PASSWORD = LOCAL_USERS[0]


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard < need and os.geteuid() == 0:
        hard = need
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < need:
        raise unittest.SkipTest("RLIMIT_NOFILE below %d" % need)


def first_line(sock, timeout=5.0):
    """The first reply line the server sends, or "" at EOF."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = sock.recv(512)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    return data.split(b"\r\n")[0].decode(errors="replace")


def timed_session(port, source=None, n=1):
    """n normal sessions one after the other (AUTH PLAIN, one message,
    QUIT); the time each took, in seconds."""
    times = []
    for i in range(n):
        t0 = time.monotonic()
        code, stage = probe(port, USER, PASSWORD,
                            "normal.%d.%d@abuse.test" % (os.getpid(), i),
                            timeout=5.0, source=source)
        times.append(time.monotonic() - t0)
        if (code, stage) != ("250", "dot"):
            raise AssertionError("normal session: %s at %s" % (code, stage))
    return times


def sanitized(path):
    """True for a binary built with AddressSanitizer."""
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def can_bind(addr):
    try:
        with socket.socket() as s:
            s.bind((addr, 0))
        return True
    except OSError:
        return False


class AbuseCase(unittest.TestCase):
    def setUp(self):
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.stop()

    def start(self, **kw):
        args = dict(workers=2, local_domains=["example.org"],
                    conf_extra=static_auth_block())
        args.update(kw)
        d = Daemon(**args)
        self.daemons.append(d)
        return d.start()


# ---------------------------------------------------------------------

class Trickler:
    """Connections that send one byte of a command now and then, and
    never read.  Each first waits for its greeting (a byte sent before
    it would be an early talker, refused at once)."""

    LINE = b"EHLO slowloris.example.org"     # never its CR LF

    def __init__(self, port, count, interval=1.0):
        self.socks = []
        self.greetings = {}
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.socks.append(s)
        for s in self.socks:
            g = first_line(s)[:3] or "EOF"
            self.greetings[g] = self.greetings.get(g, 0) + 1
        self.live = [s for s in self.socks]
        self.interval = interval
        self.sent = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        pos = 0
        while not self.stopping.is_set():
            byte = self.LINE[pos % len(self.LINE):][:1]
            pos += 1
            for s in list(self.live):
                try:
                    s.send(byte, socket.MSG_DONTWAIT)
                    self.sent += 1
                except OSError:
                    self.live.remove(s)
            self.stopping.wait(self.interval)

    def close(self):
        self.stopping.set()
        self.thread.join()
        for s in self.socks:
            s.close()


class TestSlowloris(AbuseCase):
    COUNT = 1000

    def setUp(self):
        super().setUp()
        raise_nofile(self.COUNT + 512)

    def run_slowloris(self, d, source=None):
        mark = d.log_offset()
        t = Trickler(d.port, self.COUNT)
        self.addCleanup(t.close)
        admitted = len(re.findall(r"connection from 127\.0\.0\.1 ",
                                  d.log()[mark:]))
        time.sleep(1.5)         # a couple of bytes from each
        times = timed_session(d.port, source=source, n=5)
        alive = len(t.live)
        sent = t.sent
        t.close()
        return times, admitted, t.greetings, alive, sent

    def test_thousand_admitted(self):
        # Room for all of them: 4096 sessions per worker, and the
        # per-address limit (per worker) above the thousand.
        d = self.start(max_sessions_per_address=self.COUNT + 100)
        times, admitted, greetings, alive, sent = self.run_slowloris(d)
        note("slowloris, %d admitted (greetings %r, %d bytes trickled): "
             "normal sessions %s ms" % (admitted, greetings, sent,
                                         [round(x * 1000) for x in times]))
        self.assertEqual(greetings, {"220": self.COUNT})
        self.assertEqual(alive, self.COUNT)
        self.assertLess(max(times), 1.0)

    def test_per_address_limit_spares_others(self):
        if not can_bind("127.0.0.2"):
            self.skipTest("cannot bind 127.0.0.2")
        d = self.start(max_sessions_per_address=100)
        times, admitted, greetings, alive, sent = self.run_slowloris(
            d, source=("127.0.0.2", 0))
        note("slowloris over the per-address limit (100 per worker, "
             "2 workers): greetings %r; normal sessions from 127.0.0.2 "
             "%s ms" % (greetings, [round(x * 1000) for x in times]))
        # Each worker admits 100 from the address; which worker takes a
        # connection is the scheduler's choice, and one that runs while
        # the other waits for the CPU may refuse what the other would
        # have admitted.
        self.assertLessEqual(greetings.get("220", 0), 200, greetings)
        self.assertGreaterEqual(greetings.get("220", 0), 100, greetings)
        self.assertEqual(greetings.get("421", 0) + greetings["220"],
                         self.COUNT, greetings)
        self.assertRegex(d.log(), r"refused 127\.0\.0\.1 on \S+: 100 "
                                  r"sessions from that address")
        self.assertLess(max(times), 1.0)


# ---------------------------------------------------------------------

class TestConnectionFlood(AbuseCase):
    def test_flood_meets_per_address_limit(self):
        limit = 20
        # One worker: the limit is counted per worker.
        d = self.start(workers=1, max_sessions_per_address=limit)
        mark = d.log_offset()
        socks, replies = [], []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            socks.append(s)
            replies.append(first_line(s))
        first_421 = next(i for i, r in enumerate(replies)
                         if r.startswith("421"))
        note("flood of 200 connections: first 421 after %d, %d refused: %r"
             % (first_421, sum(r.startswith("421") for r in replies),
                replies[first_421]))
        self.assertEqual(first_421, limit)
        self.assertTrue(all(r.startswith("220 ") for r in replies[:limit]))
        self.assertEqual(set(replies[limit:]),
                         {"421 4.7.0 test.local Too many connections "
                          "from your address"})
        self.assertRegex(d.log()[mark:],
                         r"refused 127\.0\.0\.1 on \S+: %d sessions from "
                         r"that address" % limit)
        # Another address is served meanwhile.
        if can_bind("127.0.0.2"):
            times = timed_session(d.port, source=("127.0.0.2", 0))
            self.assertLess(times[0], 1.0)
        # Those admitted are still served; once they go, the address
        # gets in again.
        s = Session(socks[0])
        s.send("NOOP\r\n")
        self.assertEqual(s.reply(), "250 2.0.0 Ok\r\n")
        for s in socks:
            s.close()
        deadline = time.monotonic() + 5
        while True:
            with socket.create_connection(("127.0.0.1", d.port)) as s:
                if first_line(s).startswith("220 "):
                    break
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)


# ---------------------------------------------------------------------

class TestWrongPasswords(AbuseCase):
    """
    The delay starts at failure-delay and doubles with each failure from
    the address, up to failure-delay-max; authd keeps it for the node.
    Each attempt tries another wrong password (the same one again would
    not grow the delay: test_penalty), and the account lock is off here
    (500 failures for one account would reach it: test_penalty too).  With the defaults (2s, 15s) 500 attempts would take
    hours from one address: the test uses 20ms and 320ms, and 100
    sessions in parallel (each closed with 421 after max-auth-failures
    5), so that the 500 attempts take about two seconds.
    """

    DELAY, MAX, PER_SESSION = 0.020, 0.320, 5

    tries = 0

    def attempt(self, s):
        TestWrongPasswords.tries += 1
        t0 = time.monotonic()
        r = s.cmd("AUTH PLAIN " + plain_b64(
            USER, "wrong-%d" % TestWrongPasswords.tries))
        return time.monotonic() - t0, r

    def session_attempts(self, port, n, source=None, out=None):
        """One session, n wrong passwords; [(delay, reply)]."""
        sock = socket.create_connection(("127.0.0.1", port), timeout=10,
                                        source_address=source)
        s = Session(sock)
        res = []
        try:
            s.reply()
            s.ehlo()
            for _ in range(n):
                res.append(self.attempt(s))
            if n == self.PER_SESSION:
                res.append((None, s.reply()))       # the 421
        finally:
            s.close()
        if out is not None:
            out.append(res)
        return res

    def test_500_wrong_passwords(self):
        d = self.start(workers=1, max_sessions_per_address=200,
                       conf_extra=static_auth_block().replace(
                           "\tfailure-delay 0s\n\tmax-auth-failures 100\n",
                           "\tfailure-delay 20ms\n\tfailure-delay-max 320ms\n"
                           "\tpenalty account 0 per 1h\n"
                           "\tmax-auth-failures %d\n" % self.PER_SESSION))
        t_start = time.monotonic()
        # Two sessions one after the other: the delay grows.
        seq = []
        for _ in range(2):
            res = self.session_attempts(d.port, self.PER_SESSION)
            self.assertRegex(res[-1][1], r"^421 4\.7\.0 ")
            seq += [x for x in res if x[0] is not None]
        expect = [min(self.DELAY * 2 ** k, self.MAX) for k in range(len(seq))]
        # Then 98 sessions at once: 490 more attempts.
        results = []
        threads = [threading.Thread(target=self.session_attempts,
                                    args=(d.port, self.PER_SESSION),
                                    kwargs={"out": results})
                   for _ in range(98)]
        t_par = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        par_secs = time.monotonic() - t_par
        par = [x for res in results for x in res if x[0] is not None]
        total = len(seq) + len(par)
        codes = {r[:3] for _, r in seq + par}
        closings = sum(1 for res in results for x in res
                       if x[0] is None and "421 4.7.0" in x[1])
        # Another address starts from the bottom.
        other = None
        if can_bind("127.0.0.2"):
            other = self.session_attempts(d.port, 1,
                                          source=("127.0.0.2", 0))[0][0]
        # A right password is answered at once, and forgives.
        t0 = time.monotonic()
        code, stage = probe(d.port, USER, PASSWORD, "after.%d@abuse.test"
                            % os.getpid())
        ok_secs = time.monotonic() - t0
        after = self.session_attempts(d.port, 1)[0][0]
        pd = sorted(x[0] for x in par)
        note("%d wrong passwords in %.1f s: sequential delays %s ms "
             "(expected %s); %d in parallel (98 sessions, %.1f s): "
             "min %d, median %d, max %d ms; 127.0.0.2's first: %s ms; "
             "right password %d ms, then a failure %d ms"
             % (total, time.monotonic() - t_start,
                [round(x[0] * 1000) for x in seq],
                [round(x * 1000) for x in expect], len(par), par_secs,
                pd[0] * 1000, statistics.median(pd) * 1000, pd[-1] * 1000,
                None if other is None else round(other * 1000),
                ok_secs * 1000, after * 1000))
        self.assertEqual(total, 500)
        self.assertEqual(codes, {"535"})
        self.assertEqual(closings, 98)
        # libevent measures a timer from the time it cached for the
        # loop iteration that set it, which may be a few ms early.
        for got, want in zip([x[0] for x in seq], expect):
            self.assertGreaterEqual(got, want * 0.9, (seq, expect))
            self.assertLess(got, want + 0.5, (seq, expect))
        # Every one of the parallel attempts waited the maximum.
        self.assertGreaterEqual(pd[0], self.MAX * 0.9)
        self.assertLess(statistics.median(pd), self.MAX + 0.5)
        if other is not None:
            self.assertLess(other, self.MAX / 2)
        self.assertEqual((code, stage), ("250", "dot"))
        self.assertLess(ok_secs, 0.5)
        self.assertLess(after, self.MAX / 2)


# ---------------------------------------------------------------------

class TestHugeMessage(AbuseCase):
    TOTAL = 100 * 1024 * 1024

    def test_100mb_refused_memory_flat(self):
        # ASan keeps what is freed in a quarantine (256 MB) before it
        # reuses it: without one, RSS shows what the worker holds.
        asan = sanitized(os.path.join(BUILD, "portcullis-worker"))
        saved = os.environ.get("ASAN_OPTIONS")
        if asan:
            os.environ["ASAN_OPTIONS"] = ("detect_leaks=0:"
                                          "quarantine_size_mb=0:"
                                          "thread_local_quarantine_size_kb=0")
        try:
            d = self.start(workers=1, max_message_size="10M")
        finally:
            if saved is None:
                os.environ.pop("ASAN_OPTIONS", None)
            else:
                os.environ["ASAN_OPTIONS"] = saved
        (wpid,) = d.pids("worker")
        s = Session.open(d)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertTrue(s.cmd("AUTH PLAIN " + plain_b64(USER, PASSWORD))
                        .startswith("235 "))
        self.assertTrue(s.cmd("MAIL FROM:<%s>" % USER).startswith("250 "))
        self.assertTrue(s.cmd("RCPT TO:<big@example.org>")
                        .startswith("250 "))
        self.assertEqual(s.cmd("DATA")[:4], "354 ")
        line = b"x" * 76 + b"\r\n"
        chunk = line * (1024 * 1024 // len(line))
        before = rss_kib(wpid)
        samples = []
        done = threading.Event()

        def sampler():
            while not done.is_set():
                try:
                    samples.append(rss_kib(wpid))
                except (OSError, AssertionError):
                    return
                done.wait(0.01)

        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        t0 = time.monotonic()
        sent = 0
        s.sock.settimeout(60)
        while sent < self.TOTAL:
            s.sock.sendall(chunk)
            sent += len(chunk)
        s.send(b".\r\n")
        r = s.reply()
        secs = time.monotonic() - t0
        done.set()
        th.join()
        after = rss_kib(wpid)
        peak = max(samples + [after])
        note("100 MB DATA (%d octets in %.2f s), max-message-size 10M: "
             "%r; worker RSS before %d KiB, peak %d KiB (%d samples), "
             "after %d KiB%s"
             % (sent, secs, r.strip(), before, peak, len(samples), after,
                " (ASan, no quarantine)" if asan else ""))
        self.assertEqual(r, "552 5.3.4 Message size exceeds fixed maximum "
                            "message size\r\n")
        self.assertLess(peak - before, 4096)
        self.assertLess(after - before, 4096)
        self.assertEqual(d.spooled(), [])
        self.assertEqual(d.spooled("tmp"), [])
        # The session goes on.
        self.assertTrue(s.cmd("MAIL FROM:<%s>" % USER).startswith("250 "))
        s.cmd("QUIT")


# ---------------------------------------------------------------------
# A compromised worker.

SYS_pidfd_getfd = 438                   # x86_64, arm64, every arch since 5.6
IMSG_FD_MARK = 0x80000000
HDR = struct.Struct("=IIII")            # type, len, peerid, pid
AUTH_REQUEST = struct.Struct("=QQII64s64s")
PING = struct.Struct("=QII")


def imsg_types():
    """{IMSG_NAME: value} from common/proto.h's enum."""
    with open(os.path.join(TOP, "common", "proto.h")) as f:
        text = f.read()
    body = re.search(r"enum imsg_type \{(.*?)\};", text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    types, n = {}, 0
    for item in body.split(","):
        item = item.strip()
        if not item:
            continue
        if "=" in item:
            name, value = (x.strip() for x in item.split("="))
            n = int(value, 0)
        else:
            name = item
        types[name] = n
        n += 1
    return types


def sasl_plain_bit():
    """SASL_PLAIN from common/mech.h."""
    with open(os.path.join(TOP, "common", "mech.h")) as f:
        m = re.search(r"#define\s+SASL_PLAIN\s+(\S+)", f.read())
    return int(m.group(1).strip("()"), 0)


def pidfd_getfd(pid, fd):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        n = libc.syscall(SYS_pidfd_getfd, pidfd, fd, 0)
        if n < 0:
            e = ctypes.get_errno()
            raise OSError(e, "pidfd_getfd: " + os.strerror(e))
        return n
    finally:
        os.close(pidfd)


def socket_inodes(pid):
    """{fd: inode} of pid's sockets."""
    out = {}
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", t)
        if m:
            out[int(fd)] = m.group(1)
    return out


def authd_channel_fd(worker_pid, authd_pid):
    """The descriptor of worker_pid's end of its channel to authd: the
    socket whose peer (ss -x) is one of authd's."""
    theirs = set(socket_inodes(authd_pid).values())
    mine = {ino: fd for fd, ino in socket_inodes(worker_pid).items()}
    out = subprocess.run(["ss", "-xan"], capture_output=True, text=True,
                         timeout=10).stdout
    for m in re.finditer(r"\*\s+(\d+)\s+\*\s+(\d+)", out):
        local, peer = m.group(1), m.group(2)
        if local in mine and peer in theirs:
            return mine[local]
    raise AssertionError("no channel to authd in worker %d" % worker_pid)


def imsg(type_, payload=b"", peerid=0, length=None, fd_mark=False):
    n = HDR.size + len(payload) if length is None else length
    if fd_mark:
        n |= IMSG_FD_MARK
    return HDR.pack(type_, n, peerid, 0) + payload


def unlisten(wpid, port):
    """Take a stopped worker's own listening socket (Linux: one per
    worker, SO_REUSEPORT) out of the kernel's group, so that new
    connections go to the workers still running."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                inodes.add("socket:[%s]" % fields[9])
    for fd in os.listdir("/proc/%d/fd" % wpid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (wpid, fd))
        except OSError:
            continue
        if target not in inodes:
            continue
        dup = socket.socket(fileno=pidfd_getfd(wpid, int(fd)))
        try:
            dup.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        finally:
            dup.close()


class Channel:
    """A worker's channel to authd, taken from the stopped worker."""

    def __init__(self, wpid, apid, types):
        self.wpid = wpid
        self.types = types
        os.kill(wpid, signal.SIGSTOP)
        fd = pidfd_getfd(wpid, authd_channel_fd(wpid, apid))
        self.sock = socket.socket(fileno=fd)
        self.sock.settimeout(3.0)
        self.seq = 1000

    def send(self, data, fds=()):
        try:
            if fds:
                self.sock.sendmsg([data], [(socket.SOL_SOCKET,
                                            socket.SCM_RIGHTS,
                                            struct.pack("=%di" % len(fds),
                                                        *fds))])
            else:
                self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def recv_imsg(self):
        hdr = self._recv_exact(HDR.size)
        if hdr is None:
            return None
        type_, n, _, _ = HDR.unpack(hdr)
        body = self._recv_exact((n & ~IMSG_FD_MARK) - HDR.size)
        return type_, body

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def ping(self, fd_mark=False):
        """A PING and its PONG: the channel is alive."""
        self.seq += 1
        self.send(imsg(self.types["IMSG_PING"], PING.pack(self.seq, 0, 0),
                       fd_mark=fd_mark))
        got = self.recv_imsg()
        return (got is not None and got[0] == self.types["IMSG_PONG"] and
                PING.unpack(got[1][:PING.size])[0] == self.seq)

    def drain(self, want, seconds):
        """Read whole messages until want of them came: {type: count}."""
        counts, buf, n = {}, b"", 0
        deadline = time.monotonic() + seconds
        self.sock.settimeout(0.5)
        while n < want and time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 20)
            except (socket.timeout, BlockingIOError):
                continue
            if not chunk:
                break
            buf += chunk
            pos = 0
            while len(buf) - pos >= HDR.size:
                type_, length, _, _ = HDR.unpack_from(buf, pos)
                length &= ~IMSG_FD_MARK
                if len(buf) - pos < length:
                    break
                counts[type_] = counts.get(type_, 0) + 1
                n += 1
                pos += length
            buf = buf[pos:]
        self.sock.settimeout(3.0)
        return counts

    def closed_within(self, seconds):
        """True when authd closes its end (EOF, reset) in time."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [],
                                    max(0, deadline - time.monotonic()))
            if not r:
                return False
            try:
                if not self.sock.recv(65536):
                    return True
            except (ConnectionResetError, BrokenPipeError):
                return True
            except (BlockingIOError, socket.timeout):
                pass
        return False

    def close(self):
        self.sock.close()


def auth_request(types, cred, mechanism, cred_len=None, req_id=1):
    req = AUTH_REQUEST.pack(req_id, 0x1234, mechanism,
                            len(cred) if cred_len is None else cred_len,
                            b"192.0.2.66", b"evil")
    return imsg(types["IMSG_AUTH_REQUEST"], req + cred)


def scenarios(types, plain):
    """(name, what it sends on a channel): each must cost that channel
    and nothing else."""
    T = types
    rng = random.Random(20240607)
    good = b"\0%s\0wrong" % USER.encode()
    out = [
        ("64 KiB of random bytes",
         lambda ch: ch.send(rng.randbytes(65536))),
        ("header len 8, below the header size",
         lambda ch: ch.send(imsg(T["IMSG_PING"], length=8))),
        ("header len 0x7fffffff",
         lambda ch: ch.send(imsg(T["IMSG_AUTH_REQUEST"], length=0x7fffffff))),
        ("header len 1 MiB (above the maximum) and 1 MiB",
         lambda ch: ch.send(imsg(T["IMSG_AUTH_REQUEST"], b"A" * (1 << 20)))),
        ("AUTH_REQUEST with 10 octets of payload",
         lambda ch: ch.send(imsg(T["IMSG_AUTH_REQUEST"], b"B" * 10))),
        ("AUTH_REQUEST, cred_len 8192 for %d octets" % len(good),
         lambda ch: ch.send(auth_request(T, good, plain, cred_len=8192))),
        ("AUTH_REQUEST, cred_len 4 for %d octets" % len(good),
         lambda ch: ch.send(auth_request(T, good, plain, cred_len=4))),
        ("AUTH_REQUEST, cred_len 0xffffffff and none",
         lambda ch: ch.send(auth_request(T, b"", plain,
                                         cred_len=0xffffffff))),
        ("AUTH_REQUEST, mechanism 0x12345",
         lambda ch: ch.send(auth_request(T, good, 0x12345))),
        ("AUTH_REQUEST, PLAIN credential without NULs",
         lambda ch: ch.send(auth_request(T, b"u" * 300, plain))),
        ("AUTH_REQUEST, 8193 octets of credential",
         lambda ch: ch.send(auth_request(T, b"\0u\0" + b"p" * 8190, plain))),
        ("unknown type 0xdeadbeef",
         lambda ch: ch.send(imsg(0xdeadbeef, b"C" * 16))),
        ("AUTHD_CHANNEL (master's) with a payload",
         lambda ch: ch.send(imsg(T["IMSG_AUTHD_CHANNEL"], b"\0" * 8))),
        ("CONF_START (master's), empty",
         lambda ch: ch.send(imsg(T["IMSG_CONF_START"]))),
        ("PING with 3 octets",
         lambda ch: ch.send(imsg(T["IMSG_PING"], b"abc"))),
        ("AUTH_CANCEL with 100 octets",
         lambda ch: ch.send(imsg(T["IMSG_AUTH_CANCEL"], b"D" * 100))),
        ("PONG (authd's own)",
         lambda ch: ch.send(imsg(T["IMSG_PONG"], PING.pack(1, 0, 0)))),
    ]
    return out


class TestGarbageImsg(AbuseCase):
    """
    Every scenario takes the channel of one more worker: authd closes a
    channel at the first malformed message, and a worker gets a new one
    only when authd restarts.  The victims stay stopped, so the logins
    that show the others unharmed go to the one worker left untouched.
    """

    def setUp(self):
        super().setUp()
        if not hasattr(os, "pidfd_open"):
            self.skipTest("no os.pidfd_open")
        if os.geteuid() != 0:
            self.skipTest("pidfd_getfd of another user's process needs root")
        self.types = imsg_types()
        self.plain = sasl_plain_bit()
        self.stopped = []

    def tearDown(self):
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        super().tearDown()

    def login_ms(self, d):
        """A whole AUTH PLAIN on a fresh session through a healthy
        worker, in ms."""
        s = Session.open(d, timeout=5)
        try:
            s.ehlo()
            t0 = time.monotonic()
            r = s.cmd("AUTH PLAIN " + plain_b64(USER, PASSWORD))
            ms = (time.monotonic() - t0) * 1000
            self.assertTrue(r.startswith("235 "), r)
            return ms
        finally:
            s.close()

    def worker_ids(self, d):
        return {int(p): int(i) for i, p in re.findall(
            r"worker (\d+) started, pid (\d+)", d.log())}

    def test_garbage_costs_only_that_channel(self):
        cases = scenarios(self.types, self.plain)
        extra = ["fd claims", "partial header", "flood"]
        n = len(cases) + len(extra)
        d = self.start(workers=n + 1)
        d.wait_log(r"authd ping ok", count=n + 1)
        (apid,) = d.pids("authd")
        ids = self.worker_ids(d)
        victims = d.pids("worker")[:n]
        healthy = d.pids("worker")[n:]
        afds = len(os.listdir("/proc/%d/fd" % apid))
        base = [self.login_ms(d) for _ in range(5)]
        # "Normal time": a stalled authd would take seconds, or forever.
        self.normal = max(500, 10 * max(base))
        report = []

        def take():
            wpid = victims.pop(0)
            self.stopped.append(wpid)
            ch = Channel(wpid, apid, self.types)
            self.addCleanup(ch.close)
            unlisten(wpid, d.port)
            self.assertTrue(ch.ping(), "not the channel to authd")
            return ch, wpid

        def closed(ch, wpid, name, mark):
            t0 = time.monotonic()
            self.assertTrue(ch.closed_within(3), "%s: channel open" % name)
            ms = (time.monotonic() - t0) * 1000
            wid = ids[wpid]
            text = d.wait_log(r"authd\[%d\]: worker %d: channel closed\n"
                              % (apid, wid), since=mark)
            why = re.findall(r"authd\[%d\]: (worker %d: .*)\n"
                             % (apid, wid), text)
            others = set(re.findall(r"authd\[\d+\]: worker (\d+): channel "
                                    r"closed", text)) - {str(wid)}
            self.assertEqual(others, set(), "%s: other channels closed"
                             % name)
            self.assertEqual(d.pids("authd"), [apid])
            login = self.login_ms(d)
            report.append("%s: closed in %.0f ms (%s); then a login took "
                          "%.1f ms" % (name, ms, why[0] if why else "?",
                                       login))
            self.assertLess(login, self.normal, name)

        for name, act in cases:
            ch, wpid = take()
            mark = d.log_offset()
            act(ch)
            closed(ch, wpid, name, mark)

        # A message that claims a descriptor and has none is just a
        # message; a descriptor the channel did not ask for is closed.
        ch, wpid = take()
        mark = d.log_offset()
        self.assertTrue(ch.ping(fd_mark=True))
        secret = os.path.join(d.dir, "passed-file")
        with open(secret, "w") as f:
            f.write("x")
        with open(secret) as f:
            self.assertTrue(ch.send(auth_request(
                self.types, b"\0%s\0wrong" % USER.encode(), self.plain,
                req_id=77), fds=[f.fileno()]))
            got = ch.recv_imsg()
        self.assertEqual(got[0], self.types["IMSG_AUTH_VERDICT"])
        self.assertEqual(struct.unpack_from("=QI", got[1]), (77, 2))
        held = [os.readlink("/proc/%d/fd/%s" % (apid, fd))
                for fd in os.listdir("/proc/%d/fd" % apid)]
        self.assertNotIn(secret, held)
        ch.send(imsg(0xfffffffe))
        closed(ch, wpid, "fd mark without a descriptor, then an "
               "AUTH_REQUEST with an unwanted descriptor", mark)

        # Half a header, then silence: authd waits for the rest without
        # waiting for it.
        ch, wpid = take()
        mark = d.log_offset()
        ch.send(imsg(self.types["IMSG_PING"], PING.pack(1, 0, 0))[:7])
        stalled = [self.login_ms(d) for _ in range(3)]
        self.assertLess(max(stalled), self.normal)
        self.assertFalse(ch.closed_within(0.2))
        ch.send(b"\xff" * 9)            # len 0xffffff..: out of range
        closed(ch, wpid, "7 octets of header, logins (%s ms), then a bad "
               "length" % ", ".join("%.1f" % x for x in stalled), mark)

        # A flood of well-formed requests whose answers are not read:
        # once 1024 answers wait, authd stops reading that channel, and
        # the flood stays in the socket buffers instead of authd's
        # memory (before: 125 octets of authd per 32-octet PING).  Read
        # at last, everything is answered.
        ch, wpid = take()
        mark = d.log_offset()
        rss0 = rss_kib(apid)
        pings, auths = 200000, 2000
        burst = b"".join(imsg(self.types["IMSG_PING"], PING.pack(i, 0, 0))
                         for i in range(pings))
        burst += b"".join(auth_request(self.types, b"\0%s\0wrong%d"
                                       % (USER.encode(), i), self.plain,
                                       req_id=i)
                          for i in range(auths))
        ch.sock.settimeout(None)
        writer = threading.Thread(target=ch.send, args=(burst,), daemon=True)
        writer.start()
        time.sleep(0.5)
        during = [self.login_ms(d) for _ in range(5)]
        stalled = writer.is_alive()
        rss1 = rss_kib(apid)
        counts = ch.drain(pings + auths, 30)
        writer.join(10)
        self.assertFalse(writer.is_alive())
        self.assertEqual(counts, {self.types["IMSG_PONG"]: pings,
                                  self.types["IMSG_AUTH_VERDICT"]: auths})
        ch.send(imsg(0xfffffffe))
        closed(ch, wpid, "%d PINGs and %d AUTH_REQUESTs (%d KiB) not read "
               "(writer stalled: %s), logins meanwhile %s ms, authd RSS "
               "%d -> %d KiB; then read: all answered"
               % (pings, auths, len(burst) // 1024, stalled,
                  ", ".join("%.1f" % x for x in during), rss0, rss1), mark)
        self.assertTrue(stalled, "authd read the whole flood")
        self.assertLess(rss1 - rss0, 5 * 1024)
        self.assertLess(max(during), self.normal)

        # authd: the same process, its descriptors back to what they were
        # less one per channel closed.
        self.assertEqual(d.pids("authd"), [apid])
        self.assertEqual(len(os.listdir("/proc/%d/fd" % apid)), afds - n)
        self.assertNotRegex(d.log(), r"authd\[%d\]: .*(fatal|abort)"
                            % apid)
        final = [self.login_ms(d) for _ in range(5)]
        note("garbage imsg, %d channels, authd pid %d throughout; logins "
             "before %s ms, after %s ms:\n      %s"
             % (n, apid, ", ".join("%.1f" % x for x in base),
                ", ".join("%.1f" % x for x in final),
                "\n      ".join(report)))
        self.assertEqual(healthy, [p for p in d.pids("worker")
                                   if p not in self.stopped])


if __name__ == "__main__":
    unittest.main()
