"""
test_node.py -- one node under fire (issue #16).

- Supervision: a worker killed every 0.5 s for 20 s under a steady
  AUTH+send load loses no acknowledged message, delivers none twice,
  and keeps at least half the load's normal throughput (a worker that
  was ready is restarted at once); a worker that dies at start is
  backed off (no spin).
- Listening sockets: each worker has its own (SO_REUSEPORT, Linux); a
  dead worker's socket leaves with it, its replacement gets a new one.
- The spool: unfinished files in tmp/ are removed at start and when
  the worker that wrote one dies; below spool-min-free MAIL gets
  452 4.3.1, a spool that fills up during DATA gets 452 4.3.1 after
  the dot with nothing left in tmp/, and mail flows again when space
  returns, without a restart.  The spool tests mount a small tmpfs
  (root only; they say so and skip otherwise).

Each test prints its figures on standard error.
"""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from daemon import BUILD, IS_ROOT, Daemon, base_env
from smtp_helpers import Session, transaction, queued_id
from test_fault import (LOCAL_USERS, FaultCase, Prober, fault_daemon, note,
                        spool_ids)

KILL_EVERY = 0.5
KILL_FOR = 20.0


def listening_inodes(port):
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                out.add("socket:[%s]" % fields[9])
    return out


def fd_targets(pid):
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return out


class TestKillLoop(FaultCase):
    def test_worker_killed_every_half_second(self):
        d = self.start(fault_daemon())
        # The load's normal throughput, on this machine, now.
        first = self.load(d, seconds=5)
        normal = first.wait()
        self.check_load_result(normal)
        base_rate = normal["messages_per_s"]

        load = self.load(d, seconds=int(KILL_FOR) + 1, timeout=5)
        time.sleep(0.5)
        kills = 0
        t_end = time.monotonic() + KILL_FOR
        while time.monotonic() < t_end:
            pids = d.pids("worker")
            if pids:
                try:
                    os.kill(pids[kills % len(pids)], signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
            time.sleep(KILL_EVERY)
        t_fault = time.monotonic()
        prober = Prober(d.port, *LOCAL_USERS[0])
        recovery = prober.until_ok(t_fault)
        res = load.wait(timeout=90)
        # Sessions cut by a kill see a lost connection or a 4xx only.
        self.check_load_result(res, allow_timeouts=True)
        acks = dict(first.acks)
        acks.update(load.acks)
        acks.update(prober.acks)
        delivered, anonymous = spool_ids(d)
        fig = self.account(acks, delivered, anonymous,
                           first.twice + load.twice)
        log = d.log()
        fig.update(kills=kills, normal_msgs_per_s=base_rate,
                   msgs_per_s=res["messages_per_s"],
                   ratio=round(res["messages_per_s"] / base_rate, 2),
                   conn_errors=res["connection_errors"],
                   recovery_ms=round(recovery * 1000),
                   restarts_at_once=len(re.findall(
                       r"restarting worker \d+ in \d+ ms \(it died after",
                       log)),
                   backed_off=len(re.findall(
                       r"restarting worker \d+ in \d+ ms \(it died before",
                       log)))
        note("worker killed every %.1f s for %.0f s: %s"
             % (KILL_EVERY, KILL_FOR, fig))
        self.assertGreaterEqual(kills, KILL_FOR / KILL_EVERY * 0.8, fig)
        self.assertGreaterEqual(res["messages_per_s"], 0.5 * base_rate, fig)
        # Every death logged with its cause, and counted.
        self.assertRegex(log, r"worker \d+ \(pid \d+\) killed by signal 9 "
                         r"\(\w+\), after it was ready, up \d+ ms")
        self.assertRegex(log, r"restart \d+ of worker \d+, \d+ in all")
        # Unfinished files of the killed workers did not stay.
        time.sleep(0.5)
        self.assertEqual(d.spooled("tmp"), [], fig)


FAKE_WORKER = "#!/bin/sh\n# a worker that dies before it is ready\nexit 3\n"


class TestStartupCrash(unittest.TestCase):
    def setUp(self):
        self.libexec = tempfile.mkdtemp(prefix="portcullis-libexec-")
        os.chmod(self.libexec, 0o755)
        for prog in ("portcullis-authd", "portcullis-keys"):
            os.symlink(os.path.join(BUILD, prog),
                       os.path.join(self.libexec, prog))
        fake = os.path.join(self.libexec, "portcullis-worker")
        with open(fake, "w") as f:
            f.write(FAKE_WORKER)
        os.chmod(fake, 0o755)
        self.d = Daemon(workers=1)

    def tearDown(self):
        self.d.stop()
        shutil.rmtree(self.libexec, ignore_errors=True)

    def test_crash_at_start_backs_off(self):
        d = self.d
        env = base_env()
        env["PORTCULLIS_LIBEXEC"] = self.libexec
        d.log_fh = open(d.logfile, "wb")
        d.proc = subprocess.Popen(
            [os.path.join(BUILD, "portcullisd"), "-d", "-v", "-f", d.conf],
            env=env, stdin=subprocess.DEVNULL, stdout=d.log_fh,
            stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(3.5)
        log = d.log()
        starts = len(re.findall(r"worker 0 started", log))
        delays = [int(m) for m in re.findall(
            r"restarting worker 0 in (\d+) ms \(it died before it was "
            r"ready", log)]
        note("worker dying at start: %d starts in 3.5 s, delays %s"
             % (starts, delays))
        self.assertRegex(log, r"worker 0 \(pid \d+\) exited with status 3, "
                         r"before it was ready")
        # 100, 200, 400, 800, 1600 ms: a handful, not a spin.
        self.assertLessEqual(starts, 7, log)
        self.assertGreaterEqual(len(delays), 3, log)
        self.assertEqual(delays[:4], [100, 200, 400, 800][:len(delays[:4])])
        # authd, of the same build, is unaffected.
        self.assertRegex(log, r"authd ready")


class TestListeners(unittest.TestCase):
    def setUp(self):
        self.d = Daemon(workers=2).start()

    def tearDown(self):
        self.d.stop()

    def test_own_socket_per_worker_and_respawn(self):
        d = self.d
        pids = d.pids("worker")
        socks = listening_inodes(d.port)
        self.assertEqual(len(socks), 2, socks)
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        new = d.wait_pids("worker", 2, exclude=[victim])
        d.wait_log(r"worker \d: authd ping ok", count=3)
        # The dead worker's socket is gone; the new one has its own.
        after = listening_inodes(d.port)
        self.assertEqual(len(after), 2, after)
        held = [fd for p in new for fd in fd_targets(p) if fd in after]
        self.assertEqual(sorted(held), sorted(after))
        # No connection is queued where nobody accepts: all greeted.
        t0 = time.monotonic()
        for _ in range(40):
            with Session.open(d, timeout=3) as s:
                s.cmd("QUIT")
        note("40 sessions after a respawn in %.0f ms"
             % ((time.monotonic() - t0) * 1000))

    def test_reload_keeps_serving(self):
        d = self.d
        for _ in range(3):
            mark = d.log_offset()
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log(r"configuration reloaded", since=mark)
            d.wait_log(r"worker \d: authd ping ok", count=2, since=mark)
            for _ in range(10):
                with Session.open(d, timeout=3) as s:
                    s.cmd("QUIT")
        deadline = time.monotonic() + 8
        while len(d.pids("worker")) > 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(len(listening_inodes(d.port)), 2)


def spool_daemon(**kw):
    return Daemon(workers=1, local_domains=["example.org"], **kw)


class TestSpoolCleanup(unittest.TestCase):
    def test_stale_tmp_removed_at_start(self):
        d = spool_daemon()
        self.addCleanup(d.stop)
        tmp = os.path.join(d.spool, "tmp")
        os.makedirs(tmp)
        for name in ("0123456789abcdef.4242", "fedcba9876543210"):
            with open(os.path.join(tmp, name), "w") as f:
                f.write("Return-Path: <a@b>\r\n")
        d.start()
        self.assertEqual(d.spooled("tmp"), [])
        log = d.log()
        self.assertRegex(log, r"spool: removed tmp/0123456789abcdef\.4242: "
                         r"left by an earlier run")
        self.assertRegex(log, r"spool: removed tmp/fedcba9876543210")

    def test_file_of_killed_worker_removed(self):
        d = spool_daemon()
        self.addCleanup(d.stop)
        d.start()
        s = Session.open(d)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertTrue(s.cmd("MAIL FROM:<a@client.example>")
                        .startswith("250"))
        self.assertTrue(s.cmd("RCPT TO:<u@example.org>").startswith("250"))
        self.assertTrue(s.cmd("DATA").startswith("354"))
        s.send(b"Subject: half\r\n\r\n" + (b"x" * 98 + b"\r\n") * 700)
        deadline = time.monotonic() + 5
        while not d.spooled("tmp") and time.monotonic() < deadline:
            time.sleep(0.02)
        (name,) = d.spooled("tmp")
        owner = int(name.split(".")[1])
        self.assertIn(owner, d.pids("worker"))
        os.kill(owner, signal.SIGKILL)
        d.wait_log(r"spool: removed tmp/%s: its worker died"
                   % re.escape(name))
        self.assertEqual(d.spooled("tmp"), [])
        self.assertEqual(d.spooled(), [])


@unittest.skipUnless(IS_ROOT, "mounting a tmpfs spool needs root")
class TestSpoolSpace(unittest.TestCase):
    """A 4 MiB tmpfs for the spool, and a filler file to take space."""

    def setUp(self):
        self.mounted = None

    def tmpfs_daemon(self, **kw):
        kw.setdefault("max_message_size", "2M")
        d = spool_daemon(**kw)
        os.makedirs(d.spool)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755",
                        "tmpfs", d.spool], check=True)
        self.mounted = d.spool
        self.addCleanup(self.unmount, d)
        self.addCleanup(d.stop)
        d.start()
        return d

    def unmount(self, d):
        subprocess.run(["umount", "-l", d.spool], check=False)
        shutil.rmtree(d.dir, ignore_errors=True)

    def fill(self, d, leave_kib):
        """A file in the spool's top directory that leaves about
        leave_kib KiB free."""
        st = os.statvfs(d.spool)
        free = st.f_bavail * st.f_frsize
        path = os.path.join(d.spool, "filler")
        with open(path, "ab") as f:
            f.write(b"\0" * max(0, free - leave_kib * 1024))
        return path

    def test_below_floor_mail_452(self):
        d = self.tmpfs_daemon(spool_min_free="2M", max_message_size="8M")
        with Session.open(d) as s:
            s.ehlo()
            self.assertTrue(s.cmd("MAIL FROM:<a@client.example>")
                            .startswith("250 "))
            s.cmd("RSET")
            filler = self.fill(d, 1024)
            r = s.cmd("MAIL FROM:<a@client.example>")
            self.assertEqual(r, "452 4.3.1 Insufficient system storage\r\n")
            # RFC 1870: a size announced that would not fit, too.
            os.unlink(filler)
            r = s.cmd("MAIL FROM:<a@client.example> SIZE=%d" % (5 << 19))
            self.assertTrue(r.startswith("452 4.3.1"), r)
            r = s.cmd("MAIL FROM:<a@client.example> SIZE=1000")
            self.assertTrue(r.startswith("250 "), r)
        self.assertRegex(d.log(), r"spool-min-free")
        note("below spool-min-free: MAIL 452 4.3.1, and 250 with room")

    def test_full_during_data_452_then_flows(self):
        d = self.tmpfs_daemon()
        big = (b"Subject: big\r\n\r\n" +
               (b"y" * 998 + b"\r\n") * 1000)
        with Session.open(d) as s:
            s.ehlo()
            filler = self.fill(d, 300)
            out = transaction(s, body=big)
            self.assertEqual(out[-1],
                             "452 4.3.1 Insufficient system storage\r\n",
                             out)
            self.assertEqual(d.spooled("tmp"), [])
            self.assertEqual(d.spooled(), [])
            # Space returns: the same session, then a new one.
            os.unlink(filler)
            queued_id(transaction(s, body=big)[-1])
        with Session.open(d) as s:
            s.ehlo()
            queued_id(transaction(s)[-1])
        self.assertEqual(len(d.spooled()), 2)
        self.assertEqual(d.spooled("tmp"), [])
        self.assertEqual(len(d.pids("worker")), 1)
        self.assertNotRegex(d.log(), r"killed by|exited with status")
        note("spool full during DATA: 452 4.3.1, tmp/ empty, then 250 "
             "without a restart")


if __name__ == "__main__":
    unittest.main()
