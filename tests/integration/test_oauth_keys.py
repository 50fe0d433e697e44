"""
test_oauth_keys.py -- who a token names, keys that go stale, strict
RFC 9068, discovery and allowed clients (issue 14), end to end: a
running portcullisd, the real authorization server of oauth_server.py
(oidc-provider), smtplib as the client, authctl over the control socket.

Short intervals (jwks-refresh 1s, jwks-interval 2s) keep it quick.
"""

import os
import shutil
import tempfile
import time
import unittest

from daemon import Daemon
import oauth_server
from oauth_server import OAuthServer
from test_oauth import authctl, login_token, oauth_block

SRV = None
SRV_DIR = None
SKIP = None

FAST_KEYS = "\t\tjwks-refresh 1s\n\t\tjwks-interval 2s\n"


def setUpModule():
    global SRV, SRV_DIR, SKIP
    if not oauth_server.have_node():
        SKIP = "node is not installed"
        return
    oauth_server.ensure_node_modules()
    SRV_DIR = tempfile.mkdtemp(prefix="oauth-keys-")
    os.chmod(SRV_DIR, 0o755)
    SRV = OAuthServer(SRV_DIR).start()
    os.chmod(SRV.ca_file, 0o644)


def tearDownModule():
    if SRV is not None:
        SRV.stop()
    if SRV_DIR is not None:
        shutil.rmtree(SRV_DIR, ignore_errors=True)


def discovery_block(d, srv, extra=""):
    """An oauth checker that knows the issuer and nothing else."""
    secret = os.path.join(d.dir, "oauth.secret")
    with open(secret, "w") as f:
        f.write(srv.client_secret + "\n")
    os.chmod(secret, 0o600)
    return ("auth {\n"
            '\tchecker "corp" oauth {\n'
            '\t\tissuer "%s"\n'
            '\t\taudience "%s"\n'
            '\t\tclient-id "%s"\n'
            '\t\tclient-secret-file "%s"\n'
            '\t\tca-file "%s"\n'
            '\t\tdomain "example.org"\n'
            '\t\ttimeout 2s\n'
            '%s'
            "\t}\n\tfailure-delay 0s\n\tmax-auth-failures 100\n}\n"
            % (srv.issuer, srv.smtp_resource, srv.client_id, secret,
               srv.ca_file, extra))


class KeysCase(unittest.TestCase):
    oauth_extra = FAST_KEYS
    discovery = False

    @classmethod
    def setUpClass(cls):
        if SKIP:
            raise unittest.SkipTest(SKIP)
        cls.d = Daemon(local_domains=["example.org"])
        if cls.discovery:
            cls.d.conf_extra = discovery_block(cls.d, SRV, cls.oauth_extra)
        else:
            cls.d.conf_extra = oauth_block(cls.d, SRV,
                                           oauth_extra=cls.oauth_extra)
        cls.d.write_conf()
        cls.d.start()

    @classmethod
    def tearDownClass(cls):
        if SKIP:
            return
        cls.d.stop()
        SRV.jwks_mode()
        SRV.meta_mode()

    def audit(self, since):
        return [l for l in self.d.log()[since:].splitlines()
                if "auth result=" in l]

    def assertReason(self, since, reason):
        lines = self.audit(since)
        self.assertTrue(lines, self.d.log()[-2000:])
        for l in lines:
            self.assertIn("result=fail", l)
            self.assertIn("reason=%s" % reason, l)


class TestTokenOfNoUser(KeysCase):
    """RFC 9068 5: a client credentials JWT's sub is the client."""

    def test_client_credentials_jwt_refused(self):
        tok = SRV.client_credentials()
        _, claims = oauth_server.jwt_parts(tok)
        self.assertEqual(claims["sub"], SRV.client_id)     # the premise
        since = self.d.log_offset()
        for mech in ("XOAUTH2", "OAUTHBEARER"):
            for user in ("", SRV.client_id, SRV.client_id + "@example.org"):
                if mech == "XOAUTH2" and user == "":
                    continue        # XOAUTH2 always names a user
                self.assertEqual(login_token(self.d.port, user, tok, mech),
                                 535, (mech, user))
        self.assertEqual(len(self.audit(since)), 5)
        self.assertReason(since, "token of no user")
        self.assertIn("sub is the token's client id", self.d.log()[since:])

    def test_opaque_client_token_refused_alike(self):
        tok = SRV.mint(None, fmt="opaque")
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "", tok, "OAUTHBEARER"),
                         535)
        self.assertReason(since, "token of no user")

    def test_user_token_still_good(self):
        tok = SRV.mint("alice")
        self.assertEqual(login_token(self.d.port, "", tok, "OAUTHBEARER"),
                         235)


class TestTyp(KeysCase):
    def test_typ_jwt_refused_by_default(self):
        kid = SRV.mint_full("alice")["kid"]
        tok = SRV.mint("alice", header={"typ": "JWT", "kid": kid})
        self.assertEqual(oauth_server.jwt_parts(tok)[0]["typ"], "JWT")
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "alice", tok), 535)
        self.assertReason(since, "not an access token (typ)")
        # and oidc-provider's own tokens say at+jwt
        good = SRV.mint("alice")
        self.assertEqual(oauth_server.jwt_parts(good)[0]["typ"], "at+jwt")
        self.assertEqual(login_token(self.d.port, "alice", good), 235)


class TestTypRelaxed(KeysCase):
    oauth_extra = FAST_KEYS + "\t\tjwt-typ relaxed\n"

    def test_typ_jwt_accepted_with_the_option(self):
        kid = SRV.mint_full("alice")["kid"]
        for header in ({"typ": "JWT", "kid": kid}, {"kid": kid}):
            tok = SRV.mint("alice", header=header)
            self.assertEqual(login_token(self.d.port, "alice", tok), 235,
                             header)
        # not any typ at all
        tok = SRV.mint("alice", header={"typ": "id_token+jwt", "kid": kid})
        self.assertEqual(login_token(self.d.port, "alice", tok), 535)


class TestAudienceAndClients(KeysCase):
    oauth_extra = FAST_KEYS + '\t\tallowed-clients "portcullis-post"\n'

    def test_aud_array(self):
        ok = SRV.mint("alice", client="portcullis-post",
                      claims={"aud": ["account", SRV.smtp_resource]})
        self.assertEqual(login_token(self.d.port, "alice", ok), 235)
        bad = SRV.mint("alice", client="portcullis-post",
                       claims={"aud": ["account", SRV.other_resource]})
        self.assertEqual(login_token(self.d.port, "alice", bad), 535)

    def test_other_client_refused(self):
        tok = SRV.mint("alice", client="portcullis")
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "alice", tok), 535)
        self.assertReason(since, "client not allowed")
        # the same through introspection
        tok = SRV.mint("alice", client="portcullis", fmt="opaque")
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "alice", tok), 535)
        self.assertReason(since, "client not allowed")
        tok = SRV.mint("alice", client="portcullis-post", fmt="opaque")
        self.assertEqual(login_token(self.d.port, "alice", tok), 235)


class TestKeyWithdrawn(KeysCase):
    def test_withdrawn_key_refused_after_the_interval(self):
        kid = SRV.rotate_jwks("RS256")
        time.sleep(1.1)         # past jwks-refresh: the unknown kid fetches
        tok = SRV.mint("alice")
        self.assertEqual(oauth_server.jwt_parts(tok)[0]["kid"], kid)
        self.assertEqual(login_token(self.d.port, "alice", tok), 235)
        rc, out, err = authctl(self.d, "oauth", "keys", "corp")
        self.assertEqual(rc, 0, err)
        self.assertIn(kid, out)
        SRV.withdraw_jwks(kid)
        SRV.reset_stats()
        # No token in between: only the schedule can notice.
        time.sleep(2.8)
        self.assertGreaterEqual(SRV.count("/jwks"), 1)
        rc, out, err = authctl(self.d, "oauth", "keys", "corp")
        self.assertEqual(rc, 0, err)
        self.assertNotIn(kid, out)
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "alice", tok), 535)
        self.assertReason(since, "unknown key")

    def test_authctl_keys_and_refresh(self):
        rc, out, err = authctl(self.d, "oauth", "keys")
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("checker"), out)
        self.assertIn("RS256", out)
        self.assertIn("ES256", out)
        self.assertIn("EdDSA", out)
        self.assertTrue(all(l.split()[0] == "corp" for l in lines[1:]), out)
        SRV.reset_stats()
        rc, out, err = authctl(self.d, "oauth", "refresh", "corp")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^corp: \d+ keys$")
        self.assertGreaterEqual(SRV.count("/jwks"), 1)
        rc, out, err = authctl(self.d, "oauth", "keys", "nosuch")
        self.assertEqual(rc, 1)


class TestCacheControl(KeysCase):
    oauth_extra = "\t\tjwks-refresh 1s\n\t\tjwks-interval 1h\n" \
                  "\t\tjwks-max-age 2h\n"

    def test_max_age_honoured_within_bounds(self):
        SRV.jwks_mode(cache_control="public, max-age=1")
        authctl(self.d, "oauth", "refresh")    # now with the header
        SRV.reset_stats()
        time.sleep(3.5)
        n = SRV.count("/jwks")
        self.assertGreaterEqual(n, 2)
        self.assertLessEqual(n, 4)
        # max-age=0 is held to jwks-refresh: no storm
        SRV.jwks_mode(cache_control="no-cache")
        authctl(self.d, "oauth", "refresh")
        SRV.reset_stats()
        time.sleep(2.5)
        self.assertLessEqual(SRV.count("/jwks"), 3)
        SRV.jwks_mode()


class TestStaleKeys(KeysCase):
    oauth_extra = "\t\tjwks-refresh 1s\n\t\tjwks-interval 1s\n" \
                  "\t\tjwks-max-age 3s\n"

    def test_failing_refresh_then_454(self):
        tok = SRV.mint("alice")
        rc, _, err = authctl(self.d, "oauth", "refresh")
        self.assertEqual(rc, 0, err)
        fetched = time.time()
        since = self.d.log_offset()
        SRV.jwks_mode(status=500)
        try:
            time.sleep(1.2)
            # failing, but the last good keys are young enough
            self.assertEqual(login_token(self.d.port, "alice", tok), 235)
            rc, out, _ = authctl(self.d, "oauth", "refresh")
            self.assertEqual(rc, 75, out)
            self.assertIn("failed: JWKS: HTTP 500", out)
            time.sleep(max(0, fetched + 3.5 - time.time()))
            t0 = time.monotonic()
            self.assertEqual(login_token(self.d.port, "alice", tok), 454)
            self.assertLess(time.monotonic() - t0, 3.5)
            log = self.d.log()[since:]
            self.assertEqual(log.count("keeping the"), 1, log)
            self.assertIn("older than jwks-max-age", log)
            self.assertIn("reason=keys too old", log)
        finally:
            SRV.jwks_mode()
        rc, out, err = authctl(self.d, "oauth", "refresh")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(login_token(self.d.port, "alice", tok), 235)


class TestDiscovery(KeysCase):
    discovery = True

    def test_issuer_alone(self):
        log = self.d.wait_log(r"jwks_uri from the metadata")
        self.assertIn("introspection_endpoint from the metadata", log)
        self.assertEqual(login_token(self.d.port, "alice",
                                     SRV.mint("alice")), 235)
        # an opaque token, through the discovered introspection endpoint
        SRV.reset_stats()
        self.assertEqual(login_token(self.d.port, "alice",
                                     SRV.mint("alice", fmt="opaque")), 235)
        self.assertEqual(SRV.count("/token/introspection"), 1)
        # tokens only: no password mechanism was asked for
        rc, out, err = authctl(self.d, "oauth", "keys", "corp")
        self.assertEqual(rc, 0, err)


class TestDiscoveryRFC8414(KeysCase):
    discovery = True
    oauth_extra = FAST_KEYS

    @classmethod
    def setUpClass(cls):
        if not SKIP:
            SRV.meta_mode(no_oidc=True)
        super().setUpClass()

    def test_oauth_authorization_server(self):
        self.d.wait_log(r"jwks_uri from the metadata")
        self.assertEqual(login_token(self.d.port, "alice",
                                     SRV.mint("alice")), 235)


class TestDiscoveryWrongIssuer(KeysCase):
    discovery = True
    oauth_extra = FAST_KEYS

    @classmethod
    def setUpClass(cls):
        if not SKIP:
            SRV.meta_mode(issuer="https://elsewhere.example")
        super().setUpClass()

    def test_metadata_of_another_issuer_refused(self):
        self.d.wait_log(r"its issuer is not the configured one")
        since = self.d.log_offset()
        self.assertEqual(login_token(self.d.port, "alice",
                                     SRV.mint("alice")), 454)
        self.assertIn("reason=no provider metadata", self.d.log()[since:])
        # once the provider says the right issuer, it works
        SRV.meta_mode()
        time.sleep(1.1)         # past jwks-refresh
        self.assertEqual(login_token(self.d.port, "alice",
                                     SRV.mint("alice")), 235)


if __name__ == "__main__":
    unittest.main()
