"""
test_oauth_server.py -- the OAuth 2.0 authorization server the oauth
checker's tests run against (oauth_server.py, oauth/server.js): checked
here with urllib alone, over HTTPS verified against its CA, so that a
failure in the checker's tests is not a failure of the server.
"""

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from oauth_server import OAuthServer, auth_style, have_node, jwt_parts


def b64url_int(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)),
                          "big")


def rs256_valid(token, jwk):
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 3.3), checked by hand."""
    h, p, s = token.split(".")
    n, e = b64url_int(jwk["n"]), b64url_int(jwk["e"])
    k = (n.bit_length() + 7) // 8
    sig = b64url_int(s)
    em = pow(sig, e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
    want = hashlib.sha256(("%s.%s" % (h, p)).encode()).digest()
    t = digest_info + want
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t


@unittest.skipUnless(have_node(), "node and npm are needed")
class TestOAuthServer(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="portcullis-oauth-")
        cls.srv = OAuthServer(cls.tmp).start()
        cls.ctx = ssl.create_default_context(cafile=cls.srv.ca_file)

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.srv.mode(delay_ms=0, hang=False)
        self.srv.reset_stats()

    # --- helpers -------------------------------------------------------

    def post(self, url, form, basic=None, timeout=10):
        """(status, JSON body)."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if basic:
            cred = "%s:%s" % (urllib.parse.quote(basic[0], safe=""),
                              urllib.parse.quote(basic[1], safe=""))
            headers["Authorization"] = "Basic " + \
                base64.b64encode(cred.encode()).decode()
        req = urllib.request.Request(
            url, data=urllib.parse.urlencode(form).encode(), headers=headers)
        try:
            with urllib.request.urlopen(req, context=self.ctx,
                                        timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def get(self, url, timeout=10):
        with urllib.request.urlopen(url, context=self.ctx,
                                    timeout=timeout) as r:
            return json.load(r)

    def introspect(self, token, **kw):
        return self.post(self.srv.introspection_url, {"token": token},
                         basic=(self.srv.client_id, self.srv.client_secret),
                         **kw)

    def password_grant(self, user, password, scope=None, body_auth=False):
        form = {"grant_type": "password", "username": user,
                "password": password}
        if scope:
            form["scope"] = scope
        if body_auth:
            form["client_id"] = self.srv.client_id
            form["client_secret"] = self.srv.client_secret
            return self.post(self.srv.token_url, form)
        return self.post(self.srv.token_url, form,
                         basic=(self.srv.client_id, self.srv.client_secret))

    def jwk_for(self, token):
        header, _ = jwt_parts(token)
        keys = self.get(self.srv.jwks_url)["keys"]
        match = [k for k in keys if k["kid"] == header["kid"]]
        self.assertEqual(len(match), 1, (header, keys))
        return match[0]

    # --- introspection -------------------------------------------------

    def test_startup_is_fast(self):
        self.assertLess(self.srv.startup_seconds, 3.0)

    def test_opaque_token_introspects_active_with_username(self):
        before = int(time.time())
        tok = self.srv.mint("alice", scope="smtp", ttl=300, fmt="opaque")
        status, body = self.introspect(tok)
        self.assertEqual(status, 200)
        self.assertIs(body["active"], True)
        self.assertEqual(body["username"], "alice")
        self.assertEqual(body["sub"], "alice")
        self.assertEqual(body["scope"], "smtp")
        self.assertEqual(body["aud"], "smtp://mail.test")
        self.assertEqual(body["iss"], self.srv.issuer)
        self.assertEqual(body["client_id"], "portcullis")
        self.assertEqual(body["token_type"], "Bearer")
        self.assertTrue(before + 299 <= body["exp"] <= int(time.time()) + 301)

    def test_client_secret_post(self):
        tok = self.srv.mint("alice", fmt="opaque")
        status, body = self.post(self.srv.introspection_url,
                                 {"token": tok,
                                  "client_id": self.srv.post_client_id,
                                  "client_secret": self.srv.post_client_secret})
        self.assertEqual((status, body["active"], body["username"]),
                         (200, True, "alice"))
        # oidc-provider takes either style from a client registered for
        # one of them; the request log tells which one was used.
        self.post(self.srv.introspection_url, {"token": tok},
                  basic=(self.srv.post_client_id,
                         self.srv.post_client_secret))
        self.assertEqual([auth_style(r) for r in self.srv.requests()],
                         ["post", "basic"])
        status, body = self.post(self.srv.introspection_url, {"token": tok},
                                 basic=(self.srv.client_id, "wrong"))
        self.assertEqual((status, body["error"]), (401, "invalid_client"))
        status, body = self.post(self.srv.introspection_url,
                                 {"token": tok, "client_id": "nobody",
                                  "client_secret": "x"})
        self.assertEqual((status, body["error"]), (401, "invalid_client"))

    def test_client_not_allowed_to_introspect(self):
        tok = self.srv.mint("alice", fmt="opaque")
        status, body = self.post(self.srv.introspection_url, {"token": tok},
                                 basic=("no-introspect",
                                        "no-introspect-secret"))
        self.assertEqual((status, body), (200, {"active": False}))

    def test_unknown_token_is_inactive(self):
        self.assertEqual(self.introspect("no-such-token"),
                         (200, {"active": False}))

    def test_revoked_token_is_inactive(self):
        tok = self.srv.mint("alice", fmt="opaque")
        self.assertIs(self.introspect(tok)[1]["active"], True)
        self.assertTrue(self.srv.revoke(tok))
        self.assertEqual(self.introspect(tok), (200, {"active": False}))
        # and through the real revocation endpoint (RFC 7009)
        tok = self.srv.mint("alice", fmt="opaque")
        status, _ = self.post(self.srv.revocation_url, {"token": tok},
                              basic=(self.srv.client_id,
                                     self.srv.client_secret))
        self.assertEqual(status, 200)
        self.assertEqual(self.introspect(tok), (200, {"active": False}))

    def test_expired_token_is_inactive(self):
        tok = self.srv.mint("alice", ttl=1, fmt="opaque")
        time.sleep(2)
        self.assertEqual(self.introspect(tok), (200, {"active": False}))
        tok = self.srv.mint("alice", ttl=0, fmt="opaque")
        self.assertEqual(self.introspect(tok), (200, {"active": False}))

    def test_other_audience(self):
        tok = self.srv.mint("alice", fmt="opaque",
                            resource="https://other.test")
        status, body = self.introspect(tok)
        self.assertEqual((body["active"], body["aud"]),
                         (True, "https://other.test"))

    def test_jwt_is_not_introspectable(self):
        tok = self.srv.mint("alice", fmt="jwt")
        status, body = self.introspect(tok)
        self.assertEqual((status, body["error"]),
                         (400, "unsupported_token_type"))

    # --- JWT access tokens and the JWKS ---------------------------------

    def test_jwt_claims_and_jwks(self):
        t = self.srv.mint_full("alice", scope="smtp", ttl=300)
        header, payload = jwt_parts(t["token"])
        self.assertEqual(header, {"alg": "RS256", "typ": "at+jwt",
                                  "kid": t["kid"]})
        self.assertEqual(payload["iss"], self.srv.issuer)
        self.assertEqual(payload["aud"], "smtp://mail.test")
        self.assertEqual(payload["sub"], "alice")
        self.assertEqual(payload["scope"], "smtp")
        self.assertEqual(payload["client_id"], "portcullis")
        self.assertEqual(payload["exp"], t["exp"])
        self.assertEqual(payload["exp"] - payload["iat"], 300)
        self.assertEqual(payload["jti"], t["jti"])
        self.assertNotIn("username", payload)
        jwk = self.jwk_for(t["token"])
        self.assertEqual((jwk["kty"], jwk["alg"], jwk["use"]),
                         ("RSA", "RS256", "sig"))
        self.assertNotIn("d", jwk)
        self.assertTrue(rs256_valid(t["token"], jwk))
        forged = t["token"][:-4] + ("AAAA" if t["token"][-4:] != "AAAA"
                                    else "BBBB")
        self.assertFalse(rs256_valid(forged, jwk))

    def test_es256_and_eddsa(self):
        for alg, kty in (("ES256", "EC"), ("EdDSA", "OKP")):
            tok = self.srv.mint("alice", alg=alg)
            header, _ = jwt_parts(tok)
            self.assertEqual(header["alg"], alg)
            self.assertEqual(self.jwk_for(tok)["kty"], kty)

    def test_claim_and_header_overrides(self):
        tok = self.srv.mint("alice", claims={"sub": None, "username": "carol"},
                            header={"typ": "JWT"})
        header, payload = jwt_parts(tok)
        self.assertEqual(header["typ"], "JWT")
        self.assertNotIn("sub", payload)
        self.assertEqual(payload["username"], "carol")
        self.assertTrue(rs256_valid(tok, self.jwk_for(tok)))

    def test_expired_jwt(self):
        tok = self.srv.mint("alice", ttl=-10)
        _, payload = jwt_parts(tok)
        self.assertLess(payload["exp"], time.time())

    def test_rotate(self):
        old = jwt_parts(self.srv.mint("alice"))[0]["kid"]
        kid = self.srv.rotate_jwks()
        self.assertNotEqual(kid, old)
        tok = self.srv.mint("alice")
        self.assertEqual(jwt_parts(tok)[0]["kid"], kid)
        self.assertTrue(rs256_valid(tok, self.jwk_for(tok)))
        kids = [k["kid"] for k in self.get(self.srv.jwks_url)["keys"]]
        self.assertIn(old, kids)
        hidden = self.srv.rotate_jwks(publish=False)
        tok = self.srv.mint("alice")
        self.assertEqual(jwt_parts(tok)[0]["kid"], hidden)
        kids = [k["kid"] for k in self.get(self.srv.jwks_url)["keys"]]
        self.assertNotIn(hidden, kids)
        self.srv.rotate_jwks()   # leave a published current key

    def test_client_credentials_grant(self):
        status, body = self.post(self.srv.cc_token_url,
                                 {"grant_type": "client_credentials",
                                  "scope": "smtp",
                                  "resource": "smtp://mail.test"},
                                 basic=(self.srv.client_id,
                                        self.srv.client_secret))
        self.assertEqual(status, 200, body)
        header, payload = jwt_parts(body["access_token"])
        self.assertEqual((payload["aud"], payload["sub"], header["typ"]),
                         ("smtp://mail.test", "portcullis", "at+jwt"))

    # --- the password grant ----------------------------------------------

    def test_password_grant(self):
        status, body = self.password_grant("alice", "alice-password")
        self.assertEqual(status, 200, body)
        self.assertEqual((body["token_type"], body["scope"]),
                         ("Bearer", "smtp"))
        self.assertIn(body["expires_in"], (3599, 3600))
        # its access token is a real oidc-provider token
        status, info = self.introspect(body["access_token"])
        self.assertEqual((info["active"], info["username"]), (True, "alice"))
        status, body = self.password_grant("alice", "alice-password",
                                           body_auth=True)
        self.assertEqual(status, 200, body)

    def test_password_grant_refused(self):
        for user, password in (("alice", "wrong"), ("nobody", "x")):
            status, body = self.password_grant(user, password)
            self.assertEqual((status, body["error"]), (400, "invalid_grant"))
        status, body = self.post(self.srv.token_url,
                                 {"grant_type": "password",
                                  "username": "alice",
                                  "password": "alice-password"},
                                 basic=(self.srv.client_id, "wrong"))
        self.assertEqual((status, body["error"]), (401, "invalid_client"))

    def test_set_user(self):
        self.srv.set_user("dave", "dave-pw-1")
        self.assertEqual(self.password_grant("dave", "dave-pw-1")[0], 200)
        self.srv.set_user("dave", "dave-pw-2")
        self.assertEqual(self.password_grant("dave", "dave-pw-1")[0], 400)
        self.assertEqual(self.password_grant("dave", "dave-pw-2")[0], 200)
        self.srv.set_user("dave", None)
        self.assertEqual(self.password_grant("dave", "dave-pw-2")[0], 400)

    # --- stats, log, modes ----------------------------------------------

    def test_stats(self):
        self.assertEqual(self.srv.stats(), {})
        tok = self.srv.mint("alice", fmt="opaque")
        self.introspect(tok)
        self.introspect(tok)
        self.get(self.srv.jwks_url)
        self.password_grant("alice", "wrong")
        s = self.srv.stats()
        self.assertEqual(s["/token/introspection"], 2)
        self.assertEqual(s["/jwks"], 1)
        self.assertEqual(s["/pw/token"], 1)
        self.assertEqual(s["total"], 4)
        reqs = self.srv.requests()
        self.assertEqual(len(reqs), 4)
        self.assertTrue(reqs[0]["headers"]["authorization"].startswith(
            "Basic "))
        self.assertEqual(reqs[0]["form"], {"token": tok})
        self.srv.reset_stats()
        self.assertEqual(self.srv.stats(), {})

    def test_delay(self):
        self.srv.mode(delay_ms=600)
        t0 = time.monotonic()
        self.get(self.srv.jwks_url)
        self.assertGreaterEqual(time.monotonic() - t0, 0.55)
        self.srv.mode()
        t0 = time.monotonic()
        self.get(self.srv.jwks_url)
        self.assertLess(time.monotonic() - t0, 0.5)

    def test_hang(self):
        tok = self.srv.mint("alice", fmt="opaque")
        self.srv.mode(hang=True)
        with self.assertRaises((socket.timeout, TimeoutError,
                                urllib.error.URLError)):
            self.introspect(tok, timeout=1)
        self.assertEqual(self.srv.stats()["held"], 1)
        self.srv.mode(hang=False)
        self.assertEqual(self.introspect(tok, timeout=5)[1]["active"], True)

    # --- TLS -------------------------------------------------------------

    def test_certificate_needs_the_ca(self):
        ctx = ssl.create_default_context()   # system CAs only
        with self.assertRaises(urllib.error.URLError) as cm:
            urllib.request.urlopen(self.srv.jwks_url, context=ctx, timeout=5)
        self.assertIsInstance(cm.exception.reason, ssl.SSLCertVerificationError)
        self.assertTrue(os.path.exists(self.srv.ca_file))


if __name__ == "__main__":
    unittest.main()
