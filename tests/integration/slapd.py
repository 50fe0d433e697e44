"""
slapd.py -- real OpenLDAP servers for the tests: Debian's slapd with the
mdb backend, configured through cn=config from an LDIF (slapadd -n0),
in a temporary directory, on loopback ports, as the unprivileged user
openldap (slapd -u), logging its operations (-d stats) to a file so
that a test can see which filters reached it.

    prov = Slapd(tmpdir, "prov", provider=True, tls=(ca, cert, key))
    prov.start(users)                 # users: the entries to load
    cons = Slapd(tmpdir, "cons", consumer_of=prov).start()
    prov.url, prov.ldaps_url, prov.ldapi_url, prov.add(ldif), prov.delete(dn)
    prov.filters_seen(since), prov.log_offset(), prov.stop(), prov.cont()

Passwords are hashed by slappasswd, with the pw-sha2 and argon2 modules
for {SSHA512} and {ARGON2}.
"""

import os
import pwd
import grp
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse

from daemon import free_port

SUFFIX = "dc=example,dc=org"
ADMIN_DN = "cn=admin," + SUFFIX
ADMIN_PW = "admin-secret"
READER_DN = "cn=reader," + SUFFIX
READER_PW = "reader-secret"
MODULE_PATH = "/usr/lib/ldap"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def have_slapd():
    return all(shutil.which(p) or os.path.exists(p) for p in
               ("/usr/sbin/slapd", "/usr/sbin/slapadd", "ldapadd",
                "slappasswd"))


def slappasswd(scheme, password):
    args = ["slappasswd", "-o", "module-path=" + MODULE_PATH, "-h", scheme,
            "-s", password]
    if scheme == "{SSHA512}":
        args[3:3] = ["-o", "module-load=pw-sha2"]
    elif scheme == "{ARGON2}":
        args[3:3] = ["-o", "module-load=argon2"]
    elif scheme == "{CRYPT}":
        args += ["-c", "$6$%.16s"]
    return subprocess.run(args, check=True, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def user_ldif(uid, password_hash, mail=(), extra=()):
    lines = ["dn: uid=%s,ou=people,%s" % (uid, SUFFIX),
             "objectClass: inetOrgPerson", "uid: %s" % uid,
             "cn: %s" % uid, "sn: %s" % uid,
             "userPassword: %s" % password_hash]
    lines += ["mail: %s" % m for m in mail]
    lines += list(extra)
    return "\n".join(lines) + "\n\n"


def _run_as():
    """The user slapd runs as, and the owner of its files."""
    for name in ("openldap", "nobody"):
        try:
            pw = pwd.getpwnam(name)
            return name, grp.getgrgid(pw.pw_gid).gr_name, pw.pw_uid, \
                pw.pw_gid
        except KeyError:
            continue
    raise RuntimeError("no openldap or nobody user")


class Slapd:
    def __init__(self, parent, name, provider=False, consumer_of=None,
                 tls=None):
        self.dir = os.path.join(parent, name)
        os.makedirs(os.path.join(self.dir, "db"))
        os.makedirs(os.path.join(self.dir, "slapd.d"))
        self.name = name
        self.provider = provider
        self.consumer_of = consumer_of
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port()
        self.sock = os.path.join(self.dir, "ldapi")
        self.url = "ldap://127.0.0.1:%d" % self.port
        self.ldaps_url = "ldaps://127.0.0.1:%d" % self.tls_port
        self.ldapi_url = "ldapi://" + urllib.parse.quote(self.sock, safe="")
        self.logfile = os.path.join(self.dir, "log")
        self.proc = None

    def _config(self):
        d = self.dir
        text = ("dn: cn=config\nobjectClass: olcGlobal\ncn: config\n"
                "olcPidFile: %s/slapd.pid\n" % d)
        if self.tls:
            ca, cert, key = self.tls
            text += ("olcTLSCACertificateFile: %s\n"
                     "olcTLSCertificateFile: %s\n"
                     "olcTLSCertificateKeyFile: %s\n" % (ca, cert, key))
        text += ("\ndn: cn=module{0},cn=config\nobjectClass: olcModuleList\n"
                 "cn: module{0}\nolcModulePath: %s\n"
                 "olcModuleLoad: back_mdb\nolcModuleLoad: pw-sha2\n"
                 "olcModuleLoad: argon2\n" % MODULE_PATH)
        if self.provider:
            text += "olcModuleLoad: syncprov\n"
        text += ("\ndn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\n"
                 "cn: schema\n\n")
        for s in SCHEMAS:
            text += "include: file:///etc/ldap/schema/%s.ldif\n\n" % s
        text += ("dn: olcDatabase={-1}frontend,cn=config\n"
                 "objectClass: olcDatabaseConfig\n"
                 "objectClass: olcFrontendConfig\n"
                 "olcDatabase: {-1}frontend\n"
                 "olcPasswordHash: {SSHA}\n\n"
                 "dn: olcDatabase={0}config,cn=config\n"
                 "objectClass: olcDatabaseConfig\nolcDatabase: {0}config\n"
                 "olcAccess: {0}to * by * none\n\n"
                 "dn: olcDatabase={1}mdb,cn=config\n"
                 "objectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n"
                 "olcDatabase: {1}mdb\nolcDbDirectory: %s/db\n"
                 "olcSuffix: %s\nolcRootDN: %s\nolcRootPW: %s\n"
                 "olcDbMaxSize: 67108864\n"
                 "olcDbIndex: uid eq\nolcDbIndex: objectClass eq\n"
                 "olcDbIndex: entryCSN,entryUUID eq\n"
                 "olcAccess: {0}to attrs=userPassword by dn.exact=\"%s\" read "
                 "by anonymous auth by self read by * none\n"
                 "olcAccess: {1}to * by * read\n"
                 % (d, SUFFIX, ADMIN_DN, ADMIN_PW, READER_DN))
        if self.consumer_of is not None:
            text += ("olcSyncrepl: rid=001 provider=%s bindmethod=simple "
                     "binddn=\"%s\" credentials=%s searchbase=\"%s\" "
                     "type=refreshAndPersist retry=\"1 +\" timeout=2\n"
                     % (self.consumer_of.url, ADMIN_DN, ADMIN_PW, SUFFIX))
        if self.provider:
            text += ("\ndn: olcOverlay={0}syncprov,olcDatabase={1}mdb,"
                     "cn=config\nobjectClass: olcOverlayConfig\n"
                     "objectClass: olcSyncProvConfig\n"
                     "olcOverlay: {0}syncprov\n")
        return text

    def _base_ldif(self, users):
        text = ("dn: %s\nobjectClass: dcObject\nobjectClass: organization\n"
                "o: example\ndc: example\n\n"
                "dn: ou=people,%s\nobjectClass: organizationalUnit\n"
                "ou: people\n\n"
                "dn: %s\nobjectClass: simpleSecurityObject\n"
                "objectClass: organizationalRole\ncn: reader\n"
                "userPassword: %s\n\n"
                % (SUFFIX, SUFFIX, READER_DN, slappasswd("{SSHA}",
                                                          READER_PW)))
        return text + "".join(users)

    def _slapadd(self, n, text, fname):
        path = os.path.join(self.dir, fname)
        with open(path, "w") as f:
            f.write(text)
        subprocess.run(["/usr/sbin/slapadd", "-n", str(n), "-F",
                        os.path.join(self.dir, "slapd.d"), "-l", path],
                       check=True, capture_output=True, timeout=60)

    def start(self, users=()):
        self._slapadd(0, self._config(), "config.ldif")
        if self.consumer_of is None:
            self._slapadd(1, self._base_ldif(users), "data.ldif")
        user, group, uid, gid = _run_as()
        os.chmod(self.dir, 0o755)
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.lchown(os.path.join(root, n), uid, gid)
            os.lchown(root, uid, gid)
        if self.tls:
            for f in self.tls[1:]:
                os.chmod(f, 0o644)
        self.log_fh = open(self.logfile, "wb")
        urls = "%s %s %s" % (self.url, self.ldapi_url,
                             self.ldaps_url if self.tls else "")
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-h", urls.strip(), "-F",
             os.path.join(self.dir, "slapd.d"), "-u", user, "-g", group,
             "-d", "stats"], stdin=subprocess.DEVNULL,
            stdout=self.log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_port(self.port)
        return self

    def _wait_port(self, port, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("slapd %s exited: %s" % (
                    self.name, self.log()[-2000:]))
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd %s did not listen" % self.name)

    def log(self):
        with open(self.logfile, "rb") as f:
            return f.read().decode(errors="replace")

    def log_offset(self):
        return os.path.getsize(self.logfile)

    def filters_seen(self, since=0):
        """The filters of the searches slapd received since offset."""
        out = []
        for line in self.log()[since:].splitlines():
            i = line.find(" filter=\"")
            if " SRCH " in line and i >= 0:
                out.append(line[i + 9:line.rfind("\"")])
        return out

    def ldapmodify(self, ldif, add=True):
        subprocess.run(["ldapadd" if add else "ldapmodify", "-x", "-H",
                        self.url, "-D", ADMIN_DN, "-w", ADMIN_PW],
                       input=ldif, text=True, check=True,
                       capture_output=True, timeout=30)

    def search(self, filt, attrs=("dn",)):
        p = subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.url,
                            "-D", ADMIN_DN, "-w", ADMIN_PW, "-b", SUFFIX,
                            filt] + list(attrs), capture_output=True,
                           text=True, timeout=30)
        return p.stdout

    def stop_process(self):
        """SIGSTOP: the process hangs, its sockets stay open."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def cont(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self):
        if self.proc is None:
            return
        try:
            os.kill(self.proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self.log_fh.close()

    def restart(self):
        """Start again on the same ports, with the same database."""
        self.log_fh = open(self.logfile, "ab")
        urls = "%s %s %s" % (self.url, self.ldapi_url,
                             self.ldaps_url if self.tls else "")
        user, group, _, _ = _run_as()
        self.proc = subprocess.Popen(
            ["/usr/sbin/slapd", "-h", urls.strip(), "-F",
             os.path.join(self.dir, "slapd.d"), "-u", user, "-g", group,
             "-d", "stats"], stdin=subprocess.DEVNULL,
            stdout=self.log_fh, stderr=subprocess.STDOUT,
            start_new_session=True)
        self._wait_port(self.port)
        return self
