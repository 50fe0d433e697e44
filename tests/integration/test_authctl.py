"""
test_authctl.py -- the real authctl against a real LMDB store, and end
to end: users that authctl adds, locks, unlocks and imports log in (or
do not) through a running portcullisd, without a reload.
"""

import base64
import binascii
import json
import os
import pwd
import shutil
import smtplib
import struct
import subprocess
import sys
import tempfile
import time
import unittest

from daemon import AUTH_USER, BUILD, IS_ROOT, Daemon, base_env

AUTHCTL = os.path.join(BUILD, "authctl")

AUTH_BLOCK = """auth {
	checker "local" lmdb "%s/db"
	failure-delay 0s
}"""


def run(*args, stdin=None, conf=None, user=None):
    """Run authctl; (exit status, stdout, stderr)."""
    cmd = [AUTHCTL]
    if conf is not None:
        cmd += ["-f", conf]
    cmd += list(args)
    env = base_env()
    # authctl is not chrooted: let LeakSanitizer look at it.
    env.pop("ASAN_OPTIONS", None)
    p = subprocess.run(cmd, input=stdin.encode() if stdin is not None
                       else None, stdin=None if stdin is not None
                       else subprocess.DEVNULL, capture_output=True,
                       env=env, timeout=120, user=user)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def sha512_crypt(password):
    out = subprocess.run(["openssl", "passwd", "-6", password],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def apr1(password):
    out = subprocess.run(["openssl", "passwd", "-apr1", password],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def auth_user_uid():
    try:
        return pwd.getpwnam("_portcullis_auth").pw_uid
    except KeyError:
        return None


class StoreTest(unittest.TestCase):
    """authctl against a store in a temporary directory."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="authctl-test-")
        os.chmod(self.tmp, 0o755)
        self.db = os.path.join(self.tmp, "db")
        # A configuration of our own, so that the machine's is not read.
        self.conf = os.path.join(self.tmp, "portcullis.conf")
        with open(self.conf, "w") as f:
            f.write('auth-user "%s"\nlisten on 127.0.0.1 port 2525\n'
                    % AUTH_USER)
        os.chmod(self.conf, 0o644)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def ctl(self, *args, stdin=None):
        return run("-d", self.db, *args, stdin=stdin, conf=self.conf)

    def add(self, name, password="secret", *opts):
        rc, out, err = self.ctl("user", "add", "--password-stdin", *opts,
                                name, stdin=password + "\n")
        self.assertEqual(rc, 0, err)
        return out

    def names(self):
        rc, out, err = self.ctl("user", "list")
        self.assertEqual(rc, 0, err)
        return out.splitlines()

    def show(self, name):
        rc, out, err = self.ctl("user", "show", name)
        self.assertEqual(rc, 0, err)
        return dict(line.split(": ", 1) for line in out.splitlines()
                    if not line.startswith("address:"))


class TestUserCommands(StoreTest):
    def test_add_list_show_passwd_lock_del(self):
        self.add("alice@Example.ORG", "secret",
                 "--address", "alice@example.org",
                 "--address", "postmaster@example.org")
        self.add("bob@example.org", "hunter2", "-s", "sha512")
        # The domain is folded to lower case.
        rc, out, err = self.ctl("user", "add", "--password-stdin",
                                "alice@example.org", stdin="x\n")
        self.assertEqual(rc, 1)
        self.assertIn('authctl: user "alice@example.org" exists', err)

        self.assertEqual(self.names(), ["alice@example.org",
                                        "bob@example.org"])
        rc, out, err = self.ctl("user", "list", "-l")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["NAME", "LOCKED", "CREATED",
                                            "CHANGED", "MESSAGES",
                                            "RECIPIENTS", "ADDRESSES"])
        alice = lines[1].split()
        self.assertEqual(alice[0], "alice@example.org")
        self.assertEqual(alice[1], "no")
        self.assertRegex(alice[2], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(alice[4:6], ["default", "default"])
        self.assertEqual(alice[6], "alice@example.org,postmaster@example.org")
        self.assertEqual(lines[2].split()[6], "-")

        rc, out, err = self.ctl("user", "show", "alice@example.org")
        self.assertEqual(rc, 0, err)
        self.assertIn("hash: yescrypt\n", out)
        self.assertNotIn("$", out)          # no hash, not even its salt
        self.assertIn("address: postmaster@example.org\n", out)
        self.assertEqual(self.show("bob@example.org")["hash"], "sha512")

        rc, out, err = self.ctl("user", "passwd", "-s", "argon2id",
                                "--password-stdin", "bob@example.org",
                                stdin="new-password\n")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.show("bob@example.org")["hash"], "argon2id")

        self.assertEqual(self.show("alice@example.org")["locked"], "no")
        self.assertEqual(self.ctl("user", "lock", "alice@example.org")[0], 0)
        self.assertEqual(self.show("alice@example.org")["locked"], "yes")
        self.assertEqual(self.ctl("user", "unlock",
                                  "alice@example.org")[0], 0)
        self.assertEqual(self.show("alice@example.org")["locked"], "no")

        self.assertEqual(self.ctl("user", "del", "bob@example.org")[0], 0)
        self.assertEqual(self.names(), ["alice@example.org"])
        rc, out, err = self.ctl("user", "del", "bob@example.org")
        self.assertEqual(rc, 1)
        self.assertIn('no such user "bob@example.org"', err)
        for cmd in ("show", "lock", "unlock"):
            rc, out, err = self.ctl("user", cmd, "nobody@example.org")
            self.assertEqual(rc, 1, cmd)
            self.assertIn('no such user "nobody@example.org"', err)
        rc, out, err = self.ctl("user", "passwd", "--password-stdin",
                                "nobody@example.org", stdin="x\n")
        self.assertEqual(rc, 1)

    def test_bad_input(self):
        rc, out, err = self.ctl("user", "add", "--password-stdin",
                                "has space", stdin="x\n")
        self.assertEqual(rc, 1)
        self.assertIn('user name "has space" contains a space', err)
        rc, out, err = self.ctl("user", "add", "--password-stdin",
                                "--address", "nodomain", "a@example.org",
                                stdin="x\n")
        self.assertEqual(rc, 1)
        self.assertIn("has no '@'", err)
        rc, out, err = self.ctl("user", "add", "--password-stdin",
                                "-s", "md5", "a@example.org", stdin="x\n")
        self.assertEqual(rc, 1)
        self.assertIn('unknown password scheme "md5"', err)
        rc, out, err = self.ctl("user", "add", "--password-stdin",
                                "a@example.org", stdin="")
        self.assertEqual(rc, 1)
        self.assertIn("no password on standard input", err)
        # No terminal and no --password-stdin: a clear refusal.
        rc, out, err = self.ctl("user", "add", "a@example.org")
        self.assertEqual(rc, 1)
        self.assertIn("--password-stdin", err)
        self.assertEqual(self.names(), [])

    def test_password_line_is_taken_as_is(self):
        # Only the newline goes; spaces are part of the password.
        self.add("a@example.org", " spaced out ")
        self.assertEqual(self.names(), ["a@example.org"])

    def test_missing_store_is_69(self):
        for args in (("user", "list"), ("user", "show", "a"),
                     ("user", "del", "a"), ("user", "lock", "a")):
            rc, out, err = self.ctl(*args)
            self.assertEqual(rc, 69, args)
            self.assertIn("does not exist", err)

    def test_usage_is_2(self):
        self.assertEqual(run()[0], 2)
        self.assertEqual(run("frobnicate")[0], 2)
        self.assertEqual(run("user")[0], 2)
        self.assertEqual(run("user", "frobnicate")[0], 2)
        self.assertEqual(self.ctl("user", "add")[0], 2)
        self.assertEqual(self.ctl("user", "list", "extra")[0], 2)
        rc, out, err = self.ctl("user", "list", "-x")
        self.assertEqual(rc, 2)
        self.assertIn("unknown option -x", err)
        rc, out, err = self.ctl("user", "add", "--bogus", "a")
        self.assertEqual(rc, 2)
        self.assertIn("unknown option --bogus", err)
        self.assertIn("usage:", err)

    def test_hash(self):
        for scheme, prefix in (("sha512", "$6$"), ("argon2id", "$argon2id$"),
                               ("bcrypt", "$2b$"), ("yescrypt", "$y$")):
            rc, out, err = run("hash", "-s", scheme, "--password-stdin",
                               stdin="secret\n")
            self.assertEqual(rc, 0, err)
            self.assertTrue(out.startswith(prefix), out)
            self.assertEqual(len(out.splitlines()), 1)
        rc, out, err = run("hash", "--password-stdin", stdin="secret\n")
        self.assertTrue(out.startswith("$y$"), out)
        rc, out, err = run("hash", "-s", "rot13", "--password-stdin",
                           stdin="secret\n")
        self.assertEqual(rc, 1)
        self.assertEqual(out, "")

    def test_store_from_the_configuration(self):
        conf = os.path.join(self.tmp, "lmdb.conf")
        with open(conf, "w") as f:
            f.write('auth-user "%s"\nlisten on 127.0.0.1 port 2525\n%s\n'
                    % (AUTH_USER, AUTH_BLOCK % self.tmp))
        os.chmod(conf, 0o644)
        rc, out, err = run("user", "add", "--password-stdin",
                           "c@example.org", stdin="pw\n", conf=conf)
        self.assertEqual(rc, 0, err)
        self.assertTrue(os.path.exists(os.path.join(self.db, "data.mdb")))
        self.assertEqual(self.names(), ["c@example.org"])
        # A configuration with no lmdb checker names no store.
        rc, out, err = run("user", "list", conf=self.conf)
        self.assertEqual(rc, 1)
        self.assertIn("no lmdb checker", err)
        rc, out, err = run("user", "list",
                           conf=os.path.join(self.tmp, "missing.conf"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.conf", err)

    @unittest.skipUnless(IS_ROOT and auth_user_uid() is not None,
                         "needs root and the _portcullis_auth user")
    def test_root_gives_the_store_to_auth_user(self):
        self.add("a@example.org")
        uid = auth_user_uid()
        for path in (self.db, os.path.join(self.db, "data.mdb"),
                     os.path.join(self.db, "lock.mdb")):
            self.assertEqual(os.stat(path).st_uid, uid, path)
        self.assertEqual(os.stat(self.db).st_mode & 0o777, 0o700)

    @unittest.skipUnless(IS_ROOT and auth_user_uid() is not None,
                         "needs root and the _portcullis_auth user")
    def test_root_follows_no_link_in_a_store_of_auth_user(self):
        self.add("a@example.org")
        uid = auth_user_uid()
        lock = os.path.join(self.db, "lock.mdb")
        # A later command runs as the store's owner: a lock.mdb it has
        # to make again is not root's.
        os.unlink(lock)
        self.assertEqual(self.names(), ["a@example.org"])
        self.assertEqual(os.stat(lock).st_uid, uid)
        # authd's user, compromised, points lock.mdb at a file of root's.
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        os.chmod(victim, 0o644)
        os.unlink(lock)
        os.symlink(victim, lock)
        for args in (("user", "list"), ("user", "lock", "a@example.org")):
            rc, out, err = self.ctl(*args)
            self.assertEqual(rc, 77, err)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(os.stat(victim).st_uid, 0)

    @unittest.skipUnless(IS_ROOT, "needs root to run as another user")
    def test_permission_denied_is_77(self):
        self.add("a@example.org")
        # authctl must be reachable for nobody: copy it out of the tree.
        exe = os.path.join(self.tmp, "authctl")
        shutil.copy(AUTHCTL, exe)
        os.chmod(exe, 0o755)
        p = subprocess.run([exe, "-f", self.conf, "-d", self.db, "user",
                            "list"], capture_output=True, text=True,
                           user="nobody", env=base_env(), timeout=60)
        self.assertEqual(p.returncode, 77, p.stderr)
        self.assertIn("permission denied", p.stderr)


def lmdb_python():
    """An interpreter with the lmdb module (python3-lmdb), or None: the
    one running the tests may be another than Debian's."""
    for exe in (sys.executable, "/usr/bin/python3"):
        if exe and os.path.exists(exe) and subprocess.run(
                [exe, "-c", "import lmdb"], capture_output=True).returncode \
                == 0:
            return exe
    return None


LMDB_PYTHON = lmdb_python()

# Writes what authd would (and what it never would) into a store: the
# store's map size and database count, so as to open it as store/env.c does.
LMDB_WRITER = r"""
import binascii, json, sys
import lmdb
job = json.load(sys.stdin)
env = lmdb.open(job["dir"], map_size=256 << 20, max_dbs=8,
                create=job["create"])
with env.begin(write=True) as txn:
    for db, key, val in job["puts"]:
        handle = env.open_db(db.encode(), txn=txn)
        txn.put(binascii.unhexlify(key), binascii.unhexlify(val), db=handle)
env.close()
"""


def lmdb_put(directory, puts, create=False):
    """puts: [(database, key bytes, value bytes)], in one transaction."""
    job = {"dir": directory, "create": create,
           "puts": [(db, binascii.hexlify(k).decode(),
                     binascii.hexlify(v).decode()) for db, k, v in puts]}
    subprocess.run([LMDB_PYTHON, "-c", LMDB_WRITER], input=json.dumps(job),
                   text=True, check=True, timeout=60)


def cache_key(kind, checker, user, token_hash=b""):
    """store.h: kind, checker NUL, user NUL, and a token's hash."""
    return kind + checker.encode() + b"\0" + user.encode() + b"\0" + \
        token_hash


def cache_record(created, expires, verifier=bytes(32), canonical="",
                 scope=""):
    """store.h: a cache record, version 1, little-endian."""
    c, s = canonical.encode(), scope.encode()
    return bytes([1, 0]) + struct.pack("<qq", created, expires) + \
        verifier + bytes([len(c)]) + c + bytes([len(s)]) + s


@unittest.skipUnless(LMDB_PYTHON, "needs python3-lmdb to write entries")
class TestCacheCommands(StoreTest):
    """cache list and flush, on entries written as authd writes them."""

    VERIFIER = bytes([0x5e] * 32)
    TOKEN = bytes(range(0xab, 0xab + 32))

    def make_store(self):
        self.add("admin@example.org")

    def fill(self):
        now = int(time.time())
        self.now = now
        lmdb_put(self.db, [
            ("cache", cache_key(b"p", "idp", "alice@example.org"),
             cache_record(now - 60, now + 3600, self.VERIFIER,
                          "alice@example.org")),
            # The last refused password: expired a while ago.
            ("cache", cache_key(b"n", "idp", "alice@example.org"),
             cache_record(now - 120, now - 90, self.VERIFIER)),
            # A token sent with no user name: alice's by its record.
            ("cache", cache_key(b"t", "idp", "", self.TOKEN),
             cache_record(now, now + 600, canonical="alice@example.org",
                          scope="smtp")),
            ("cache", cache_key(b"p", "idp", "bob@example.org"),
             cache_record(now, now + 3600, self.VERIFIER,
                          "bob@example.org")),
            ("cache", cache_key(b"p", "other", "bob@example.org"),
             cache_record(now, now + 3600, self.VERIFIER,
                          "bob@example.org")),
        ])

    def listing(self, *user):
        rc, out, err = self.ctl("cache", "list", *user)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        return [line.split() for line in out.splitlines()]

    def iso(self, t):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    def test_list(self):
        self.make_store()
        rc, out, err = self.ctl("cache", "list")
        self.assertEqual((rc, out, err), (0, "", ""))
        self.fill()
        rows = self.listing()
        self.assertEqual(rows[0], ["KIND", "CHECKER", "USER", "CANONICAL",
                                   "TOKEN", "CREATED", "EXPIRES",
                                   "STATUS"])
        # In key order: kind, checker, user.
        self.assertEqual(rows[1:], [
            ["negative", "idp", "alice@example.org", "-", "-",
             self.iso(self.now - 120), self.iso(self.now - 90), "expired"],
            ["password", "idp", "alice@example.org", "alice@example.org",
             "-", self.iso(self.now - 60), self.iso(self.now + 3600),
             "valid"],
            ["password", "idp", "bob@example.org", "bob@example.org", "-",
             self.iso(self.now), self.iso(self.now + 3600), "valid"],
            ["password", "other", "bob@example.org", "bob@example.org",
             "-", self.iso(self.now), self.iso(self.now + 3600), "valid"],
            ["token", "idp", "-", "alice@example.org", "abacadae",
             self.iso(self.now), self.iso(self.now + 600), "valid"],
        ])
        # Never the verifier, nor more of a token's hash.
        rc, out, err = self.ctl("cache", "list")
        self.assertNotIn("5e5e", out.lower())
        self.assertNotIn("abacadaeaf", out)

    def test_list_one_user(self):
        self.make_store()
        self.fill()
        rows = self.listing("alice@EXAMPLE.org")
        self.assertEqual([(r[0], r[2]) for r in rows[1:]], [
            ("negative", "alice@example.org"),
            ("password", "alice@example.org"), ("token", "-")])
        rows = self.listing("bob@example.org")
        self.assertEqual([r[1] for r in rows[1:]], ["idp", "other"])
        self.assertEqual(self.listing("carol@example.org"), [])
        rc, out, err = self.ctl("cache", "list", "bad name")
        self.assertEqual(rc, 1)
        self.assertIn('user name "bad name" contains a space', err)

    def test_flush_one_user(self):
        self.make_store()
        self.fill()
        rc, out, err = self.ctl("cache", "flush", "alice@example.org")
        self.assertEqual((rc, out, err), (0, "3 entries removed\n", ""))
        self.assertEqual([r[2] for r in self.listing()[1:]],
                         ["bob@example.org", "bob@example.org"])
        rc, out, err = self.ctl("cache", "flush", "alice@example.org")
        self.assertEqual((rc, out), (0, "0 entries removed\n"))
        # The users are not the cache's business.
        self.assertEqual(self.names(), ["admin@example.org"])

    def test_flush_all(self):
        self.make_store()
        self.fill()
        rc, out, err = self.ctl("cache", "flush")
        self.assertEqual((rc, out, err), (0, "5 entries removed\n", ""))
        self.assertEqual(self.listing(), [])
        lmdb_put(self.db, [
            ("cache", cache_key(b"p", "idp", "dave"),
             cache_record(1, 2, self.VERIFIER, "dave"))])
        rc, out, err = self.ctl("cache", "flush")
        self.assertEqual((rc, out), (0, "1 entry removed\n"))

    def test_corrupt_entry(self):
        self.make_store()
        self.fill()
        lmdb_put(self.db, [("cache", cache_key(b"p", "idp", "mallory"),
                            b"\x01\x00garbage")])
        rc, out, err = self.ctl("cache", "list")
        self.assertEqual(rc, 1)
        self.assertEqual(len(out.splitlines()), 6)
        self.assertIn('the password entry of checker "idp" for user '
                      '"mallory" is corrupt: the record is 9 octets, too '
                      'short', err)
        rc, out, err = self.ctl("cache", "flush", "mallory")
        self.assertEqual((rc, out), (0, "1 entry removed\n"))
        self.assertEqual(len(self.listing()), 6)

    def test_store_of_before_the_cache(self):
        # A layout 1 store as portcullis made it before the cache.
        os.mkdir(self.db, 0o700)
        user = bytes([1, 0]) + struct.pack("<qq", 1, 1) + bytes([0, 0])
        lmdb_put(self.db, [("meta", b"layout", b"1"),
                           ("users", b"old@example.org", user)], create=True)
        self.assertEqual(self.names(), ["old@example.org"])
        self.assertEqual(self.listing(), [])
        rc, out, err = self.ctl("cache", "flush")
        self.assertEqual((rc, out, err), (0, "0 entries removed\n", ""))
        self.fill()
        self.assertEqual(len(self.listing()), 6)

    def test_missing_cache_is_69(self):
        for args in (("cache", "list"), ("cache", "flush"),
                     ("cache", "flush", "a")):
            rc, out, err = self.ctl(*args)
            self.assertEqual(rc, 69, args)
            self.assertEqual(err, "authctl: login cache %s does not exist: "
                             "authd creates it, for a cache checker\n"
                             % self.db)
        self.assertFalse(os.path.exists(self.db))

    def test_cache_from_the_configuration(self):
        conf = os.path.join(self.tmp, "cache.conf")
        with open(conf, "w") as f:
            f.write('auth-user "%s"\nlisten on 127.0.0.1 port 2525\n'
                    'auth {\n\tchecker "cache" cache "%s"\n'
                    '\tchecker "idp" oauth {\n'
                    '\t\tjwks-url "https://idp.example.org/jwks"\n'
                    '\t\tissuer "https://idp.example.org"\n'
                    '\t\taudience "smtp"\n\t}\n}\n' % (AUTH_USER, self.db))
        os.chmod(conf, 0o644)
        self.make_store()
        self.fill()
        rc, out, err = run("cache", "list", "bob@example.org", conf=conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(out.splitlines()), 3)
        # No cache checker, no -d: nothing to reach.
        rc, out, err = run("cache", "list", conf=self.conf)
        self.assertEqual(rc, 69)
        self.assertIn("no cache checker in the configuration", err)
        rc, out, err = run("cache", "flush", conf=self.conf)
        self.assertEqual(rc, 69)

    def test_usage(self):
        self.assertEqual(self.ctl("cache")[0], 2)
        self.assertEqual(self.ctl("cache", "frobnicate")[0], 2)
        self.assertEqual(self.ctl("cache", "list", "a", "b")[0], 2)
        rc, out, err = self.ctl("cache", "flush", "-x")
        self.assertEqual(rc, 2)
        self.assertIn("unknown option -x", err)


class TestImport(StoreTest):
    @classmethod
    def setUpClass(cls):
        cls.sha = sha512_crypt("secret")
        cls.argon = run("hash", "-s", "argon2id", "--password-stdin",
                        stdin="secret\n")[1].strip()
        cls.yes = run("hash", "--password-stdin",
                      stdin="secret\n")[1].strip()
        # htpasswd -B writes $2y$; libcrypt verifies it.
        cls.bcrypt = run("hash", "-s", "bcrypt", "--password-stdin",
                         stdin="secret\n")[1].strip().replace("$2b$", "$2y$",
                                                               1)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_dovecot_passwd_file(self):
        path = self.write("passwd", (
            "# Dovecot passwd-file\n"
            "u1@example.org:{SHA512-CRYPT}%s:1000:1000::/home/u1::\n"
            "u2@example.org:{BLF-CRYPT}%s\n"
            "u3@example.org:{ARGON2ID}%s::::::userdb_quota_rule=*:"
            "storage=1G\n"
            "\n"
            "u4@example.org:{CRYPT}%s\n"
            "u5@example.org:%s\n" % (self.sha, self.bcrypt, self.argon,
                                     self.yes, self.sha)))
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("5 users imported", out)
        self.assertEqual(self.names(), ["u%d@example.org" % i
                                        for i in range(1, 6)])
        self.assertEqual(self.show("u1@example.org")["hash"], "sha512")
        self.assertEqual(self.show("u2@example.org")["hash"], "bcrypt")
        self.assertEqual(self.show("u3@example.org")["hash"], "argon2id")
        self.assertEqual(self.show("u4@example.org")["hash"], "yescrypt")

    def test_long_listing(self):
        # More rows than the listing's first allocation (64), twice over.
        names = ["m%03d@example.org" % i for i in range(150)]
        path = self.write("many", "".join(
            "%s:{SHA512-CRYPT}%s\n" % (n, self.sha) for n in names))
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl("user", "list", "-l")
        self.assertEqual(rc, 0, err)
        rows = out.splitlines()[1:]
        self.assertEqual([r.split()[0] for r in rows], names)

    def test_htpasswd_file(self):
        path = self.write("htpasswd", "h1:%s\nh2:%s\n" % (self.bcrypt,
                                                          self.sha))
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.names(), ["h1", "h2"])

    def bad_file(self):
        return self.write("bad", (
            "good1:%s\n"                            # 1
            "apache:%s\n"                           # 2 $apr1$
            "plain:{PLAIN}secret\n"                 # 3 plain text
            "good2:%s\n"                            # 4
            "nocolon\n"                             # 5
            "good3:{ARGON2ID}%s\n"                  # 6
            % (self.sha, apr1("secret"), self.yes, self.argon)))

    def test_bad_lines_import_nothing(self):
        path = self.bad_file()
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 1)
        self.assertIn("%s:2: $apr1$" % path, err)
        self.assertIn("%s:3: {PLAIN}" % path, err)
        self.assertIn("%s:5: no ':'" % path, err)
        for n in (1, 4, 6):
            self.assertNotIn("%s:%d:" % (path, n), err)
        self.assertIn("3 bad lines: nothing imported", err)
        self.assertEqual(self.names(), [])

    def test_partial_imports_the_good_lines(self):
        path = self.bad_file()
        rc, out, err = self.ctl("user", "import", "--partial", path)
        self.assertEqual(rc, 1)       # lines were refused: say so
        self.assertIn("3 users imported", out)
        self.assertIn("%s:2:" % path, err)
        self.assertEqual(self.names(), ["good1", "good2", "good3"])

    def test_more_bad_lines(self):
        path = self.write("bad2", (
            "dup:%s\n"
            "dup:%s\n"
            "bad name:%s\n"
            "mismatch:{SHA512-CRYPT}%s\n"
            "broken:$6$nosalt\n"
            "weird:{SSHA}abc\n"
            "nohash:\n" % (self.sha, self.sha, self.sha, self.yes)))
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 1)
        self.assertIn("%s:2: user \"dup\" is on line 1 already" % path, err)
        self.assertIn("%s:3: user name \"bad name\" contains a space" % path,
                      err)
        self.assertIn("%s:4: a {SHA512-CRYPT} hash must start with $6$"
                      % path, err)
        self.assertIn("%s:5: the hash cannot be verified" % path, err)
        self.assertIn("%s:6: password scheme {SSHA} is not supported"
                      % path, err)
        self.assertIn("%s:7: no password hash" % path, err)
        self.assertEqual(self.names(), [])

    def test_existing_users_and_replace(self):
        self.add("h1", "old", "--address", "h1@example.org")
        self.ctl("user", "lock", "h1")
        path = self.write("htpasswd", "h1:%s\nh2:%s\n" % (self.sha,
                                                          self.sha))
        rc, out, err = self.ctl("user", "import", path)
        self.assertEqual(rc, 1)
        self.assertIn('%s:1: user "h1" exists' % path, err)
        self.assertEqual(self.names(), ["h1"])
        rc, out, err = self.ctl("user", "import", "--replace", path)
        self.assertEqual(rc, 0, err)
        self.assertIn("2 users imported, 1 of them replaced", out)
        h1 = self.show("h1")
        self.assertEqual(h1["hash"], "sha512")
        self.assertEqual(h1["locked"], "yes")      # only the hash changes
        rc, out, err = self.ctl("user", "show", "h1")
        self.assertIn("address: h1@example.org", out)

    def test_missing_file(self):
        rc, out, err = self.ctl("user", "import",
                                os.path.join(self.tmp, "nope"))
        self.assertEqual(rc, 1)
        self.assertIn("nope", err)


class TestAuthctlWithDaemon(unittest.TestCase):
    """authctl changes the store under a running daemon, no reload."""

    @classmethod
    def setUpClass(cls):
        cls.d = Daemon(local_domains=["example.org"])
        cls.d.conf_extra = AUTH_BLOCK % cls.d.dir
        cls.d.write_conf()
        cls.db = os.path.join(cls.d.dir, "db")
        # The store is made by authctl before the daemon starts: as
        # root, authctl must give it to auth-user, or authd cannot open
        # it.
        rc, out, err = run("user", "add", "--password-stdin",
                           "alice@example.org", stdin="secret\n",
                           conf=cls.d.conf)
        if rc != 0:
            cls.d.stop()
            raise AssertionError("authctl user add: %d %s" % (rc, err))
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        cls.d.stop()

    def ctl(self, *args, stdin=None):
        rc, out, err = run(*args, stdin=stdin, conf=self.d.conf)
        self.assertEqual(rc, 0, err)
        return out

    def login(self, user, password):
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        try:
            s.ehlo("client.example")
            cred = base64.b64encode(b"\0" + user.encode() + b"\0" +
                                    password.encode()).decode()
            code, _ = s.docmd("AUTH", "PLAIN " + cred)
            return code
        finally:
            s.close()

    def test_store_belongs_to_auth_user(self):
        uid = pwd.getpwnam(AUTH_USER).pw_uid
        for path in (self.db, os.path.join(self.db, "data.mdb"),
                     os.path.join(self.db, "lock.mdb")):
            self.assertEqual(os.stat(path).st_uid, uid, path)

    def test_login_lock_unlock(self):
        self.assertEqual(self.login("alice@example.org", "secret"), 235)
        self.assertEqual(self.login("alice@example.org", "wrong"), 535)
        self.ctl("user", "lock", "alice@example.org")
        self.assertEqual(self.login("alice@example.org", "secret"), 535)
        self.d.wait_log(r'auth result=fail user="alice@example.org".*'
                        r'reason=locked')
        self.ctl("user", "unlock", "alice@example.org")
        self.assertEqual(self.login("alice@example.org", "secret"), 235)

    def test_user_added_while_running(self):
        self.assertEqual(self.login("bob@example.org", "pw-bob"), 535)
        self.ctl("user", "add", "--password-stdin", "bob@example.org",
                 stdin="pw-bob\n")
        self.assertEqual(self.login("bob@example.org", "pw-bob"), 235)
        self.ctl("user", "passwd", "-s", "argon2id", "--password-stdin",
                 "bob@example.org", stdin="pw-bob-2\n")
        self.assertEqual(self.login("bob@example.org", "pw-bob"), 535)
        self.assertEqual(self.login("bob@example.org", "pw-bob-2"), 235)
        self.ctl("user", "del", "bob@example.org")
        self.assertEqual(self.login("bob@example.org", "pw-bob-2"), 535)

    def test_imported_users_log_in(self):
        path = os.path.join(self.d.dir, "passwd")
        bcrypt = run("hash", "-s", "bcrypt", "--password-stdin",
                     stdin="pw-carol\n")[1].strip().replace("$2b$", "$2y$")
        with open(path, "w") as f:
            f.write("carol@example.org:{SHA512-CRYPT}%s\n"
                    "dave@example.org:%s\n"
                    % (sha512_crypt("pw-carol"), bcrypt))
        self.ctl("user", "import", path)
        self.assertEqual(self.login("carol@example.org", "pw-carol"), 235)
        self.assertEqual(self.login("dave@example.org", "pw-carol"), 235)

    def test_sending_addresses_from_the_store(self):
        """The addresses a user was given may be sent as; others not."""
        self.ctl("user", "add", "--password-stdin", "erin@example.org",
                 "--address", "sales@example.org",
                 "--address", "Erin.Alias@Other.Example", stdin="pw-erin\n")
        s = smtplib.SMTP("127.0.0.1", self.d.port, timeout=10)
        try:
            s.ehlo("client.example")
            s.login("erin@example.org", "pw-erin")
            for sender, code in (("erin@example.org", 250),
                                 ("sales@example.org", 250),
                                 ("erin.alias@other.example", 250),
                                 ("frank@example.org", 553),
                                 ("sales@other.example", 553)):
                self.assertEqual(s.mail(sender)[0], code, sender)
                s.rset()
        finally:
            s.close()
        rc, out, err = run("test", "erin@example.org", "--password-stdin",
                           stdin="pw-erin\n", conf=self.d.conf)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.splitlines()[1:],
                         ["  may send as sales@example.org",
                          "  may send as Erin.Alias@other.example"])

    # --- the live commands, over the control socket ---------------

    def test_live_test_ok_fail_and_stats(self):
        rc, out, err = run("test", "alice@example.org", "--password-stdin",
                           stdin="secret\n", conf=self.d.conf)
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^ok: alice@example.org by checker local "
                              r"in \d+ ms\n$")
        rc, out, err = run("test", "alice@example.org", "--password-stdin",
                           stdin="wrong\n", conf=self.d.conf)
        self.assertEqual(rc, 1, err)
        self.assertRegex(out, r"^fail: alice@example.org by checker none ")
        out = self.ctl("stats")
        lines = out.splitlines()
        self.assertEqual(lines[0].split(), ["checker", "ok", "fail",
                                            "tempfail"])
        # The checkers' rows end at a blank line; authd's counters follow.
        end = lines.index("") if "" in lines else len(lines)
        counts = {l.split()[0]: [int(x) for x in l.split()[1:]]
                  for l in lines[1:end]}
        self.assertGreaterEqual(counts["local"][0], 1)
        self.assertGreaterEqual(counts["none"][1], 1)
        self.assertRegex(out, r"\nauth_failures +\d+\n")
        # The attempt is audited like a login, from "authctl".
        self.d.wait_log(r"auth result=ok user=\"alice@example.org\" "
                        r"mech=PLAIN checker=local \S+ client=authctl")

    def test_live_reload(self):
        mark = self.d.log_offset()
        self.assertIn("reload requested", self.ctl("reload"))
        self.d.wait_log(r"configuration reloaded", since=mark)
        self.assertEqual(self.login("alice@example.org", "secret"), 235)

    def test_live_without_a_daemon(self):
        d = Daemon()
        try:
            rc, out, err = run("stats", conf=d.conf)
            self.assertEqual(rc, 69)
            self.assertIn("control socket", err)
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
