"""
test_check.py -- portcullisd -n checks what the file names, not only its
grammar: each certificate and key exists, is readable, parses and
matches the other; as root, the chroot directory and the users.  Every
error names the file and the line of the statement, and -n changes
nothing on disk.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

from daemon import (IS_ROOT, PORTCULLISD, Daemon, base_env, make_cert,
                    run_check)


class CheckCase(unittest.TestCase):
    def setUp(self):
        # A TLS listener: the Daemon makes a self-signed pair.
        self.d = Daemon(listen="tls")
        self.text = self.d.conf_text()

    def tearDown(self):
        self.d.stop()

    def line_of(self, prefix):
        for n, line in enumerate(self.text.splitlines(), 1):
            if line.startswith(prefix):
                return n
        raise AssertionError("no line starts with %r" % prefix)

    def check(self, text=None):
        if text is not None:
            self.text = text
            self.d.write_conf(text)
        return run_check(self.d.conf)

    def assert_error(self, out, prefix, message):
        self.assertIn("%s:%d: " % (self.d.conf, self.line_of(prefix)), out)
        self.assertIn(message, out)
        self.assertIn("configuration has errors", out)


class TestPki(CheckCase):
    def test_good_pair_is_ok(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("configuration OK", out)

    def test_missing_certificate(self):
        os.unlink(self.d.cert)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", '%s: No such file or directory'
                          % self.d.cert)

    def test_missing_key(self):
        os.unlink(self.d.key)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", '%s: No such file or directory'
                          % self.d.key)

    def test_certificate_that_does_not_parse(self):
        with open(self.d.cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                    "-----END CERTIFICATE-----\n")
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", "%s: bad certificate" % self.d.cert)

    def test_key_that_does_not_parse(self):
        with open(self.d.key, "w") as f:
            f.write("this is no key\n")
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", "%s: no private key in the file"
                          % self.d.key)

    def test_key_of_another_certificate(self):
        other = tempfile.mkdtemp(prefix="portcullis-check-")
        try:
            make_cert(os.path.join(other, "c.pem"),
                      os.path.join(other, "k.pem"), "other.example")
            shutil.copy(os.path.join(other, "k.pem"), self.d.key)
        finally:
            shutil.rmtree(other)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", "%s does not match the certificate "
                          "in %s" % (self.d.key, self.d.cert))

    def test_directory_in_place_of_the_key(self):
        os.unlink(self.d.key)
        os.mkdir(self.d.key)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "pki ", "%s: not a regular file" % self.d.key)

    def test_unreadable_key(self):
        # Root reads any file: as root, check as nobody (who can read
        # the file and the certificate, not the key of mode 0600).
        os.chmod(self.d.key, 0o600 if IS_ROOT else 0)
        cmd = [PORTCULLISD, "-n", "-f", self.d.conf]
        if IS_ROOT:
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                   "--clear-groups"] + cmd
        p = subprocess.run(cmd, env=base_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=30)
        out = p.stdout.decode(errors="replace")
        self.assertEqual(p.returncode, 1, out)
        self.assert_error(out, "pki ", "%s: Permission denied" % self.d.key)

    def test_pki_on_a_continued_line_names_its_first_line(self):
        text = self.text.replace(' key "', ' \\\n\tkey "')
        rc, out = self.check(text)
        self.assertEqual(rc, 0, out)
        os.unlink(self.d.cert)
        rc, out = self.check(text)
        self.assert_error(out, "pki ", "No such file or directory")


@unittest.skipUnless(IS_ROOT, "needs root: the start checks users and "
                     "the chroot only as root")
class TestRootChecks(CheckCase):
    def test_chroot_writable_by_others(self):
        os.mkdir(self.d.chroot, 0o755)
        os.chmod(self.d.chroot, 0o777)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "chroot ", "must be a directory owned by root")

    def test_chroot_that_is_a_file(self):
        with open(self.d.chroot, "w"):
            pass
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "chroot ", "must be a directory")

    def test_chroot_without_parent(self):
        text = self.text.replace('chroot "%s"' % self.d.chroot,
                                 'chroot "%s/no/empty"' % self.d.dir)
        rc, out = self.check(text)
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "chroot ", "No such file or directory")

    def test_missing_chroot_is_made_at_start_not_by_check(self):
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("does not exist yet; it will be created", out)
        self.assertFalse(os.path.exists(self.d.chroot))

    def test_root_as_user(self):
        text = self.text.replace('user "_portcullis"\n', 'user "root"\n')
        rc, out = self.check(text)
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "user ", 'user "root" is root')

    def test_every_error_is_reported(self):
        os.unlink(self.d.cert)
        os.mkdir(self.d.chroot, 0o777)
        os.chmod(self.d.chroot, 0o777)
        rc, out = self.check()
        self.assertEqual(rc, 1, out)
        self.assert_error(out, "chroot ", "must be a directory")
        self.assert_error(out, "pki ", "No such file or directory")


class TestCheckOnInstalledExample(unittest.TestCase):
    """The shipped example names certbot-style paths that do not exist
    here: -n must say so, at the pki line, instead of "OK"."""

    def test_example_without_its_certificate(self):
        top = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        example = os.path.join(top, "etc", "portcullis.conf")
        with open(example) as f:
            text = f.read()
        cert = [line for line in text.splitlines()
                if line.startswith("pki ")]
        self.assertEqual(len(cert), 1)
        rc, out = run_check(example)
        if os.path.exists("/etc/ssl/mx.example.org.fullchain.pem"):
            self.skipTest("optional: this machine has the example's "
                          "certificate")
        self.assertEqual(rc, 1, out)
        n = text.splitlines().index(cert[0]) + 1
        self.assertIn("portcullis.conf:%d: pki" % n, out)


if __name__ == "__main__":
    unittest.main()
