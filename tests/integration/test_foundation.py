"""
test_foundation.py -- the process family against a real portcullisd:
greeting, privilege separation, supervision, reload and shutdown.
"""

import glob
import os
import pwd
import re
import signal
import socket
import subprocess
import time
import unittest

from daemon import (AUTH_USER, IS_ROOT, PORTCULLISD, TOP, WORKER_USER,
                    Daemon, base_env, greet_and_quit, read_reply, run_check)


def proc_ids(pid, field):
    """The four ids of the Uid: or Gid: line of /proc/PID/status."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return [int(x) for x in line.split()[1:5]]
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def session_owner(d, sock):
    """The pid of the worker holding the server side of sock."""
    cport = sock.getsockname()[1]
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == d.port and
                    int(remote.split(":")[1], 16) == cport):
                inode = fields[9]
    if inode is None:
        raise AssertionError("server side of port %d not found" % cport)
    for pid in d.pids("worker"):
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == \
                        "socket:[%s]" % inode:
                    return pid
            except OSError:
                pass
    raise AssertionError("no worker holds socket inode %s" % inode)


class DaemonTest(unittest.TestCase):
    workers = 2
    grace = "2s"

    def setUp(self):
        self.d = Daemon(workers=self.workers, grace=self.grace).start()

    def tearDown(self):
        self.d.stop()


class TestGreeting(DaemonTest):
    def test_greeting_and_quit(self):
        greeting, bye = greet_and_quit(self.d)
        self.assertEqual(greeting, "220 test.local ESMTP portcullis\r\n")
        self.assertEqual(bye, "221 2.0.0 Bye\r\n")

    def test_every_line_carries_the_role(self):
        log = self.d.log()
        for role in ("master", "authd", "worker"):
            self.assertRegex(log, r"(?m)^%s\[\d+\]: " % role)

    def test_process_titles(self):
        self.assertEqual(len(self.d.pids("worker")), self.workers)
        self.assertEqual(len(self.d.pids("authd")), 1)


@unittest.skipUnless(IS_ROOT, "privilege separation needs root")
class TestPrivileges(DaemonTest):
    def test_master_is_root(self):
        self.assertEqual(proc_ids(self.d.proc.pid, "Uid"), [0, 0, 0, 0])

    def test_authd_runs_as_its_user(self):
        pw = pwd.getpwnam(AUTH_USER)
        (pid,) = self.d.pids("authd")
        self.assertEqual(proc_ids(pid, "Uid"), [pw.pw_uid] * 4)
        self.assertEqual(proc_ids(pid, "Gid"), [pw.pw_gid] * 4)

    def test_workers_unprivileged_and_chrooted(self):
        pw = pwd.getpwnam(WORKER_USER)
        pids = self.d.pids("worker")
        self.assertEqual(len(pids), self.workers)
        for pid in pids:
            self.assertEqual(proc_ids(pid, "Uid"), [pw.pw_uid] * 4)
            self.assertEqual(proc_ids(pid, "Gid"), [pw.pw_gid] * 4)
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             self.d.chroot)
            with open("/proc/%d/status" % pid) as f:
                groups = [l for l in f if l.startswith("Groups:")][0]
            self.assertEqual(groups.split()[1:], [str(pw.pw_gid)])

    def test_workers_and_authd_use_different_users(self):
        self.assertNotEqual(pwd.getpwnam(WORKER_USER).pw_uid,
                            pwd.getpwnam(AUTH_USER).pw_uid)


class TestDescriptors(DaemonTest):
    def fd_targets(self, pid):
        out = []
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
        return out

    def listener_inodes(self):
        """The listening sockets on the port: one per worker on Linux
        (SO_REUSEPORT), one shared elsewhere."""
        out = set()
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if (fields[3] == "0A" and
                        int(fields[1].split(":")[1], 16) == self.d.port):
                    out.add("socket:[%s]" % fields[9])
        if not out:
            raise AssertionError("no listening socket on %d" % self.d.port)
        return out

    def test_each_child_holds_only_its_own(self):
        """A descriptor queued for one child must not leak into the
        next one forked (it would survive exec without CLOEXEC)."""
        socks = self.listener_inodes()
        spool = os.path.join(self.d.dir, "spool")
        held = []
        for pid in self.d.pids("worker"):
            fds = self.fd_targets(pid)
            mine = [fd for fd in fds if fd in socks]
            self.assertEqual(len(mine), 1, fds)
            held += mine
            self.assertEqual(fds.count(spool), 1, fds)
        # Each worker its own socket, none of another's.
        self.assertEqual(len(set(held)), len(held), held)
        for pid in self.d.pids("authd"):
            fds = self.fd_targets(pid)
            self.assertEqual(socks & set(fds), set())
            self.assertNotIn(spool, fds)


class TestSupervision(DaemonTest):
    def test_killed_worker_is_replaced(self):
        before = self.d.pids("worker")
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        pids = self.d.wait_pids("worker", self.workers, exclude=[victim],
                                timeout=2.0)
        self.assertNotIn(victim, pids)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.d.wait_log(r"killed by signal 9")
        # The survivor kept serving and the new one serves too.
        for _ in range(10):
            greeting, bye = greet_and_quit(self.d)
            self.assertTrue(greeting.startswith("220 "))
            self.assertEqual(bye, "221 2.0.0 Bye\r\n")

    def test_worker_death_spares_other_sessions(self):
        s = self.d.connect()
        self.assertTrue(read_reply(s).startswith("220 "))
        holder = session_owner(self.d, s)
        (other,) = [p for p in self.d.pids("worker") if p != holder]
        os.kill(other, signal.SIGKILL)
        self.d.wait_pids("worker", self.workers, exclude=[other])
        s.sendall(b"NOOP\r\n")
        self.assertEqual(read_reply(s), "250 2.0.0 Ok\r\n")
        s.sendall(b"QUIT\r\n")
        self.assertEqual(read_reply(s), "221 2.0.0 Bye\r\n")
        s.close()

    def test_killed_authd_is_replaced_and_pinged(self):
        (victim,) = self.d.pids("authd")
        mark = self.d.log_offset()
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        (pid,) = self.d.wait_pids("authd", 1, exclude=[victim], timeout=2.0)
        self.assertNotEqual(pid, victim)
        # Every worker got a new channel and authd answered its ping.
        text = self.d.wait_log(r"worker \d+: authd ping ok",
                               count=self.workers, since=mark, timeout=2.0)
        self.assertLess(time.monotonic() - t0, 2.0)
        for i in range(self.workers):
            self.assertIn("worker %d: authd ping ok" % i, text)
        greeting, _ = greet_and_quit(self.d)
        self.assertTrue(greeting.startswith("220 "))

    def test_killed_after_ready_restarts_at_once(self):
        """No back-off for a worker that died after it was ready: a
        crash an attacker can trigger must not take the service down
        (a start-up crash loop backs off: test_node.py)."""
        delays = []
        for _ in range(4):
            victim = self.d.pids("worker")[0]
            mark = self.d.log_offset()
            os.kill(victim, signal.SIGKILL)
            text = self.d.wait_log(r"restarting worker \d+ in \d+ ms",
                                   since=mark)
            delays.append(int(re.search(r"in (\d+) ms", text).group(1)))
            self.d.wait_pids("worker", self.workers, exclude=[victim],
                             timeout=5.0)
        self.assertTrue(all(ms < 100 for ms in delays), delays)


class TestReload(DaemonTest):
    def test_broken_config_keeps_serving(self):
        workers = self.d.pids("worker")
        self.d.write_conf(self.d.conf_text() + "\nlisen on 127.0.0.1\n")
        mark = self.d.log_offset()
        self.d.proc.send_signal(signal.SIGHUP)
        text = self.d.wait_log(r"reload failed", since=mark)
        self.assertRegex(text, r'portcullis\.conf:\d+: unknown keyword '
                               r'"lisen"')
        greeting, bye = greet_and_quit(self.d)
        self.assertEqual(greeting, "220 test.local ESMTP portcullis\r\n")
        self.assertEqual(self.d.pids("worker"), workers)

    def test_good_config_takes_effect(self):
        old = self.d.pids("worker")
        self.d.write_conf(self.d.conf_text(hostname="reloaded.local"))
        mark = self.d.log_offset()
        self.d.proc.send_signal(signal.SIGHUP)
        self.d.wait_log(r"configuration reloaded, generation 1", since=mark)
        self.d.wait_log(r"authd ping ok", count=self.workers, since=mark)
        greeting, _ = greet_and_quit(self.d)
        self.assertEqual(greeting, "220 reloaded.local ESMTP portcullis\r\n")
        deadline = time.monotonic() + 5
        while set(old) & set(self.d.pids("worker")):
            self.assertLess(time.monotonic(), deadline, "old workers stay")
            time.sleep(0.05)

    def test_sighup_burst(self):
        since = self.d.log_offset()
        for _ in range(10):
            self.d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.02)
        # Pending signals of one kind merge (POSIX): a busy master may
        # see fewer than 10.  Every one it saw must finish, none twice.
        deadline = time.monotonic() + 10
        while True:
            log = self.d.log()[since:]
            started = log.count("reloading ")
            done = len(re.findall(r"configuration reloaded, generation "
                                  r"\d+", log))
            if started >= 1 and started == done:
                time.sleep(0.3)
                if self.d.log()[since:].count("reloading ") == started:
                    break
            self.assertLess(time.monotonic(), deadline, log)
            time.sleep(0.05)
        self.assertLessEqual(started, 10)
        self.d.wait_log(r"configuration reloaded, generation %d\b"
                        % started)
        deadline = time.monotonic() + 5
        while len(self.d.pids("worker")) != self.workers:
            self.assertLess(time.monotonic(), deadline,
                            "%r" % self.d.children())
            time.sleep(0.05)
        greeting, _ = greet_and_quit(self.d)
        self.assertTrue(greeting.startswith("220 "))


class TestShutdown(DaemonTest):
    def test_sigterm_idle_exits_zero(self):
        t0 = time.monotonic()
        self.d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.d.proc.wait(timeout=10), 0)
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertEqual(self.d.children(), {})

    def test_sigterm_with_open_session(self):
        s = self.d.connect()
        self.assertTrue(read_reply(s).startswith("220 "))
        t0 = time.monotonic()
        self.d.proc.send_signal(signal.SIGTERM)
        self.d.wait_log(r"shutting down")
        # The listener closes at once (a probe caught in the backlog
        # while the last copy closes is reset: not accepted either).
        deadline = time.monotonic() + 1.0
        while True:
            try:
                c = socket.create_connection(("127.0.0.1", self.d.port),
                                             timeout=1)
                c.close()
            except ConnectionRefusedError:
                break
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic(), deadline,
                            "listener still accepting")
            time.sleep(0.05)
        # ...the open session may go on during the grace period...
        s.sendall(b"NOOP\r\n")
        self.assertEqual(read_reply(s), "250 2.0.0 Ok\r\n")
        # ...and gets 421 when it ends.
        s.settimeout(10)
        self.assertTrue(read_reply(s).startswith("421 4.3.2 "))
        self.assertEqual(self.d.proc.wait(timeout=10), 0)
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 2.0 + 2.0)
        s.close()

    def test_sigint_exits_zero(self):
        self.d.proc.send_signal(signal.SIGINT)
        self.assertEqual(self.d.proc.wait(timeout=10), 0)

    def test_children_exit_when_master_dies(self):
        kids = list(self.d.children())
        os.kill(self.d.proc.pid, signal.SIGKILL)
        self.d.proc.wait()
        deadline = time.monotonic() + 3
        while any(os.path.exists("/proc/%d" % p) and
                  open("/proc/%d/stat" % p).read().split()[2] != "Z"
                  for p in kids):
            self.assertLess(time.monotonic(), deadline, "orphans remain")
            time.sleep(0.05)


class TestStartup(unittest.TestCase):
    def test_check_good_config(self):
        d = Daemon()
        try:
            rc, out = run_check(d.conf)
            self.assertEqual(rc, 0, out)
            self.assertIn("configuration OK", out)
        finally:
            d.stop()

    def test_check_bad_configs(self):
        bad = sorted(p for p in glob.glob(os.path.join(TOP, "tests/unit/conf/bad-*.conf"))
                     if not p.endswith("-inc.conf"))
        self.assertGreaterEqual(len(bad), 10)
        for path in bad:
            rc, out = run_check(path)
            self.assertEqual(rc, 1, "%s: %s" % (path, out))
            self.assertRegex(out, r"(?m)^\S+\.conf:\d+: ")

    def test_bind_error_names_address_and_port(self):
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        d = Daemon()
        d.port = blocker.getsockname()[1]
        d.write_conf()
        try:
            p = subprocess.run([PORTCULLISD, "-d", "-f", d.conf],
                               env=base_env(),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            out = p.stdout.decode()
            self.assertEqual(p.returncode, 1, out)
            self.assertIn("listen on 127.0.0.1 port %d: bind: Address "
                          "already in use" % d.port, out)
        finally:
            blocker.close()
            d.stop()


if __name__ == "__main__":
    unittest.main()
