"""
oauth_server.py -- a real OAuth 2.0 authorization server for the tests.

OAuthServer runs tests/integration/oauth/server.js under Node: the npm
packages oidc-provider (client credentials, RFC 7662 introspection,
RFC 7009 revocation, RFC 9068 JWT access tokens and their JWKS) and
@node-oauth/oauth2-server (the RFC 6749 4.3 password grant), over HTTPS
with a certificate from a private CA that openssl(1) makes here, so that
a client verifying against ca_file is exercised.  A plain HTTP admin API
on another loopback port lets a test mint, revoke and inspect.

    srv = OAuthServer(tmpdir).start()
    tok = srv.mint("alice")                      # RS256 JWT, aud smtp://mail.test
    tok = srv.mint("alice", fmt="opaque")        # for introspection
    srv.introspection_url, srv.jwks_url, srv.token_url, srv.issuer
    srv.ca_file, srv.client_id, srv.client_secret
    srv.stats(); srv.mode(hang=True); srv.stop()

ensure_node_modules() installs the pinned packages (npm ci) once.
"""

import base64
import json
import os
import select
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from daemon import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
OAUTH_DIR = os.path.join(HERE, "oauth")
SERVER_JS = os.path.join(OAUTH_DIR, "server.js")
SEND_XOAUTH2_JS = os.path.join(OAUTH_DIR, "send_xoauth2.js")

SMTP_RESOURCE = "smtp://mail.test"
OTHER_RESOURCE = "https://other.test"

# The clients oidc-provider knows (server.js CLIENTS), with their
# registered token_endpoint_auth_method -- which oidc-provider does not
# enforce between client_secret_basic and client_secret_post: see
# auth_style().
CLIENTS = {
    "portcullis": ("portcullis-secret", "client_secret_basic"),
    "portcullis-post": ("portcullis-post-secret", "client_secret_post"),
    # authenticates, but every introspection answer is {"active": false}
    "no-introspect": ("no-introspect-secret", "client_secret_basic"),
}

# Password-grant users present at start (server.js users).
DEFAULT_USERS = {"alice": "alice-password", "bob": "bob-password"}


def have_node():
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node_modules():
    """npm ci in tests/integration/oauth unless node_modules is there.
    Quiet; raises RuntimeError with npm's output when it fails."""
    marker = os.path.join(OAUTH_DIR, "node_modules", ".package-lock.json")
    if os.path.exists(marker):
        return
    p = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=OAUTH_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        timeout=600)
    if p.returncode != 0:
        raise RuntimeError("npm ci failed in %s:\n%s"
                           % (OAUTH_DIR, p.stdout.decode(errors="replace")))


_free_port = free_port


def _openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=30)


def make_ca_and_cert(directory, ip="127.0.0.1", dns="localhost"):
    """A CA (ca.pem, ca-key.pem) and a server certificate it signed for
    IP ip and DNS dns (server.pem, server-key.pem).  Returns the paths
    (ca, cert, key)."""
    ca = os.path.join(directory, "ca.pem")
    ca_key = os.path.join(directory, "ca-key.pem")
    cert = os.path.join(directory, "server.pem")
    key = os.path.join(directory, "server-key.pem")
    csr = os.path.join(directory, "server.csr")
    ext = os.path.join(directory, "server.ext")
    curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    _openssl("req", "-x509", *curve, "-nodes", "-days", "2",
             "-subj", "/CN=portcullis test OAuth CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-keyout", ca_key, "-out", ca)
    _openssl("req", "-new", *curve, "-nodes", "-subj", "/CN=%s" % ip,
             "-keyout", key, "-out", csr)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:%s,DNS:%s\n" % (ip, dns))
    _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", cert)
    for p in (ca_key, key):
        os.chmod(p, 0o600)
    for p in (ca, cert):
        os.chmod(p, 0o644)
    return ca, cert, key


def jwt_parts(token):
    """(header, payload) of a compact JWS, decoded, not verified."""
    def dec(part):
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    h, p, _ = token.split(".")
    return dec(h), dec(p)


def auth_style(request):
    """How a logged request (OAuthServer.requests()) authenticated its
    client: "basic" (Authorization: Basic), "post" (client_secret in the
    form), None.  oidc-provider accepts either style from every client,
    whatever its token_endpoint_auth_method, so tests check this."""
    if request["headers"].get("authorization", "").lower().startswith("basic "):
        return "basic"
    if (request.get("form") or {}).get("client_secret") is not None:
        return "post"
    return None


class OAuthServer:
    """server.js on free loopback ports, its files in tmpdir.

    Attributes after start():
      port, admin_port, base_url, issuer
      token_url          the password grant (POST, form: grant_type=password,
                         username, password; client auth Basic or body)
      cc_token_url       oidc-provider's token endpoint (client_credentials)
      introspection_url  RFC 7662, client auth as the client registered
      revocation_url     RFC 7009
      jwks_url, discovery_url
      ca_file            the CA that signed the server certificate
      client_id, client_secret            "portcullis" (client_secret_basic)
      post_client_id, post_client_secret  "portcullis-post" (client_secret_post)
      clients            {id: (secret, auth method)}
      users              the password-grant users known to be set
    """

    def __init__(self, tmpdir, port=None, admin_port=None, issuer=None):
        self.dir = tmpdir
        self.port = port or _free_port()
        self.admin_port = admin_port or _free_port()
        self.base_url = "https://127.0.0.1:%d" % self.port
        self.issuer = issuer or self.base_url
        self.admin_url = "http://127.0.0.1:%d" % self.admin_port
        self.token_url = self.base_url + "/pw/token"
        self.cc_token_url = self.base_url + "/token"
        self.introspection_url = self.base_url + "/token/introspection"
        self.revocation_url = self.base_url + "/token/revocation"
        self.jwks_url = self.base_url + "/jwks"
        self.discovery_url = self.base_url + "/.well-known/openid-configuration"
        self.client_id = "portcullis"
        self.client_secret = CLIENTS["portcullis"][0]
        self.post_client_id = "portcullis-post"
        self.post_client_secret = CLIENTS["portcullis-post"][0]
        self.clients = dict(CLIENTS)
        self.users = dict(DEFAULT_USERS)
        self.smtp_resource = SMTP_RESOURCE
        self.other_resource = OTHER_RESOURCE
        self.ca_file = os.path.join(tmpdir, "ca.pem")
        self.logfile = os.path.join(tmpdir, "oauth-server.log")
        self.proc = None
        self.startup_seconds = None

    # --- life -----------------------------------------------------------

    def start(self, timeout=15.0):
        t0 = time.monotonic()
        ensure_node_modules()
        _, cert, key = make_ca_and_cert(self.dir)
        args = ["node", SERVER_JS, "--port", str(self.port),
                "--admin-port", str(self.admin_port),
                "--tls-cert", cert, "--tls-key", key]
        if self.issuer != self.base_url:
            args += ["--issuer", self.issuer]
        self._log = open(self.logfile, "ab")
        self.proc = subprocess.Popen(args, cwd=OAUTH_DIR,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=self._log)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("oauth server did not start:\n%s"
                                   % self.log())
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    continue
                line += c
        if line.strip() != b"READY":
            self.stop()
            raise RuntimeError("oauth server said %r:\n%s" % (line, self.log()))
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        """What server.js wrote on stderr (oidc-provider's warnings and
        any server error)."""
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # --- admin API -------------------------------------------------------

    def admin(self, method, path, body=None, timeout=10):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.admin_url + path, data=data,
                                     method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise RuntimeError("oauth admin %s %s: %d %s"
                               % (method, path, e.code, e.read().decode()))

    def mint_full(self, user, scope="smtp", ttl=300, fmt="jwt",
                  resource=SMTP_RESOURCE, client="portcullis", alg="RS256",
                  kid=None, claims=None, header=None):
        """Mint through oidc-provider's AccessToken model; the whole
        answer: {token, exp, jti, format, kid}.
        user None: a token without account.  ttl <= 0: already expired.
        alg: RS256, ES256 or EdDSA (JWT only).  claims: JWT payload
        overrides (or, opaque, extra introspection members); a None value
        deletes the claim (e.g. {"sub": None}, {"username": None}).
        header: JWT header overrides (typ, kid...; not alg)."""
        body = {"user": user, "scope": scope, "ttl_seconds": ttl,
                "format": fmt, "resource": resource, "client": client,
                "alg": alg}
        if kid is not None:
            body["kid"] = kid
        if claims is not None:
            body["claims"] = claims
        if header is not None:
            body["header"] = header
        return self.admin("POST", "/mint", body)

    def mint(self, user, scope="smtp", ttl=300, fmt="jwt",
             resource=SMTP_RESOURCE, **kw):
        """An access token for user (see mint_full)."""
        return self.mint_full(user, scope, ttl, fmt, resource, **kw)["token"]

    def revoke(self, token):
        """Destroy the token's record (opaque or JWT by its jti): it then
        introspects inactive.  True when there was one."""
        return self.admin("POST", "/revoke", {"token": token})["revoked"]

    def set_user(self, user, password):
        """Set or change a password-grant user; password None deletes."""
        self.admin("POST", "/users", {"user": user, "password": password})
        if password is None:
            self.users.pop(user, None)
        else:
            self.users[user] = password

    def stats(self):
        """Requests per HTTPS path since start or reset_stats():
        {"/token/introspection": n, "/jwks": n, "/pw/token": n,
         "/token": n, "/token/revocation": n, "total": n, "held": n}
        (held: requests that arrived in hang mode).  Absent means 0."""
        return self.admin("GET", "/stats")

    def count(self, path):
        return self.stats().get(path, 0)

    def reset_stats(self):
        self.admin("POST", "/stats/reset", {})

    def requests(self):
        """The last 200 HTTPS requests, oldest first: {time, method,
        path, headers (lower-case names), form (parsed urlencoded body or
        None)} -- e.g. to see which client authentication was used."""
        return self.admin("GET", "/log")

    def mode(self, delay_ms=0, hang=False):
        """delay_ms: answer every HTTPS request that much later.  hang:
        accept connections, complete TLS and read requests but answer
        none until hang is turned off again (then the held requests are
        answered)."""
        return self.admin("POST", "/mode", {"delay_ms": delay_ms,
                                            "hang": hang})

    def rotate_jwks(self, alg="RS256", publish=True):
        """A new signing key for alg; later mints with alg sign with it.
        publish False keeps it out of the JWKS (a kid nobody can find).
        Returns the new kid."""
        return self.admin("POST", "/jwks/rotate",
                          {"alg": alg, "publish": publish})["kid"]

    def withdraw_jwks(self, kid):
        """Take kid out of the published JWKS (mints with its alg go on
        with the newest published key of that alg)."""
        return self.admin("POST", "/jwks/withdraw", {"kid": kid})

    def jwks_mode(self, status=None, cache_control=None):
        """status: /jwks answers it (e.g. 500); cache_control: /jwks
        answers with that Cache-Control header.  No argument: normal."""
        body = {}
        if status:
            body["status"] = status
        if cache_control:
            body["cache_control"] = cache_control
        return self.admin("POST", "/jwks/mode", body)

    def meta_mode(self, issuer=None, no_oidc=False):
        """issuer: the metadata names that issuer; no_oidc: only RFC
        8414's /.well-known/oauth-authorization-server answers.  No
        argument: oidc-provider's own discovery document."""
        body = {}
        if issuer:
            body["issuer"] = issuer
        if no_oidc:
            body["no_oidc"] = True
        return self.admin("POST", "/meta/mode", body)

    def client_credentials(self, client="portcullis", resource=SMTP_RESOURCE,
                           scope="smtp"):
        """A real client credentials grant at oidc-provider's token
        endpoint (client_secret_basic): the access token, a JWT for
        "portcullis" whose sub is the client itself."""
        import ssl
        secret = self.clients[client][0]
        data = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "resource": resource,
                                       "scope": scope}).encode()
        auth = base64.b64encode(("%s:%s" % (client, secret)).encode())
        req = urllib.request.Request(self.cc_token_url, data=data,
                                     headers={"Authorization":
                                              "Basic " + auth.decode()})
        ctx = ssl.create_default_context(cafile=self.ca_file)
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return json.load(r)["access_token"]

    # --- the nodemailer client -------------------------------------------

    @staticmethod
    def send_xoauth2(port, user, token, starttls=False, implicit_tls=False,
                     ca=None, timeout=60, extra=()):
        """node send_xoauth2.js: (exit status, stdout stripped, stderr).
        0 sent (stdout: the final reply), 1 SMTP error (stdout: the
        failing reply), 2 other error."""
        args = ["node", SEND_XOAUTH2_JS, "--port", str(port),
                "--user", user, "--token", token]
        if starttls:
            args.append("--starttls")
        if implicit_tls:
            args.append("--tls")
        if ca:
            args += ["--ca", ca]
        args += list(extra)
        ensure_node_modules()
        p = subprocess.run(args, cwd=OAUTH_DIR, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return (p.returncode, p.stdout.decode(errors="replace").strip(),
                p.stderr.decode(errors="replace"))
