// server.js -- a real OAuth 2.0 authorization server for the portcullis
// integration tests.
//
//   node server.js --port P --admin-port A --tls-cert C --tls-key K
//                  [--issuer URL] [--demo yes]
//
// Over HTTPS on 127.0.0.1:P:
//   oidc-provider, mounted at the root (issuer https://127.0.0.1:P unless
//   --issuer says otherwise):
//     /.well-known/openid-configuration   discovery
//     /.well-known/oauth-authorization-server  RFC 8414 metadata (ours)
//     /token                              client_credentials grant
//     /token/introspection                RFC 7662 introspection
//     /token/revocation                   RFC 7009 revocation
//     /jwks                               the public signing keys
//   @node-oauth/oauth2-server:
//     /pw/token                           RFC 6749 4.3 password grant; the
//                                         access token it returns is an
//                                         oidc-provider opaque token, so it
//                                         introspects too
// Plain HTTP on 127.0.0.1:A, for the tests only (JSON in, JSON out):
//   POST /mint, POST /revoke, POST /users, GET /stats, POST /stats/reset,
//   GET /log, POST /mode, POST /jwks/rotate, GET /health,
//   POST /jwks/withdraw, POST /jwks/mode, POST /meta/mode
// Prints "READY" on stdout once both are listening.
//
// --demo yes is for `make run` (scripts/run.sh): a banner on stderr that
// says this is a development IdP, and one line per HTTPS request with
// the running count, so that a login answered by the cache is seen to
// make none.  The tests leave it off.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

import OAuth2Server from '@node-oauth/oauth2-server';
import Provider from 'oidc-provider';
// The provider's private state (its keystore and published JWKS), for
// /jwks/rotate; oidc-provider has no public API to add a key at run time.
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

// --- arguments --------------------------------------------------------

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const name = a.slice(2);
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${a} needs a value`);
    args[name] = value;
    i++;
  }
  for (const need of ['port', 'admin-port', 'tls-cert', 'tls-key']) {
    if (!args[need]) throw new Error(`--${need} is required`);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const PORT = Number(args.port);
const ADMIN_PORT = Number(args['admin-port']);
const ISSUER = args.issuer || `https://127.0.0.1:${PORT}`;
const DEMO = args.demo === 'yes';

// --- constants shared with oauth_server.py ----------------------------

const SMTP_RESOURCE = 'smtp://mail.test';
const OTHER_RESOURCE = 'https://other.test';
const RESOURCES = {
  [SMTP_RESOURCE]: { scope: 'smtp openid profile email other' },
  [OTHER_RESOURCE]: { scope: 'smtp api other' },
};

const CLIENTS = [
  {
    client_id: 'portcullis',
    client_secret: 'portcullis-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'portcullis-post',
    client_secret: 'portcullis-post-secret',
    token_endpoint_auth_method: 'client_secret_post',
  },
  {
    // A valid client that is not allowed to introspect: every answer it
    // gets is {"active": false}.
    client_id: 'no-introspect',
    client_secret: 'no-introspect-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
].map((c) => ({
  ...c,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'smtp openid profile email api other',
}));

const PASSWORD_TTL = 3600;

// --- signing keys -----------------------------------------------------

let keySeq = 0;

function newKey(alg) {
  let pair;
  switch (alg) {
    case 'RS256':
      pair = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
      break;
    case 'ES256':
      pair = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
      break;
    case 'EdDSA':
      pair = crypto.generateKeyPairSync('ed25519');
      break;
    default:
      throw new Error(`unsupported alg ${alg}`);
  }
  const jwk = pair.privateKey.export({ format: 'jwk' });
  keySeq += 1;
  return {
    ...jwk, alg, use: 'sig', kid: `${alg.toLowerCase()}-${keySeq}`,
  };
}

const initialKeys = [newKey('RS256'), newKey('ES256'), newKey('EdDSA')];
// The kid mint() signs with, per algorithm; /jwks/rotate moves it.
const currentKid = Object.fromEntries(initialKeys.map((k) => [k.alg, k.kid]));

function publicPart(jwk) {
  const {
    d, p, q, dp, dq, qi, oth, ...pub
  } = jwk;
  return pub;
}

// --- storage: a plain Map, no size limit (the stock memory adapter is an
// LRU of 1000 entries) --------------------------------------------------

const storage = new Map();

class MapAdapter {
  constructor(name) {
    this.name = name;
  }

  key(id) {
    return `${this.name}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    // Keep expired entries a while so they introspect as inactive for
    // the right reason (expired) rather than as unknown.
    const keep = Math.max(Number(expiresIn) || 0, 0) + 300;
    storage.set(this.key(id), { payload, until: Date.now() + keep * 1000 });
  }

  async find(id) {
    const e = storage.get(this.key(id));
    if (!e) return undefined;
    if (e.until < Date.now()) {
      storage.delete(this.key(id));
      return undefined;
    }
    return e.payload;
  }

  async findByUserCode() { return undefined; }

  async findByUid() { return undefined; }

  async consume(id) {
    const e = storage.get(this.key(id));
    if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const [k, e] of storage) {
      if (e.payload.grantId === grantId) storage.delete(k);
    }
  }
}

// --- per-token options from /mint (extra claims, header fields) --------

const mintOptions = new WeakMap();

function applyOverrides(target, overrides) {
  for (const [k, v] of Object.entries(overrides || {})) {
    if (v === null) delete target[k];
    else target[k] = v;
  }
}

// --- the provider -----------------------------------------------------

const provider = new Provider(ISSUER, {
  adapter: MapAdapter,
  clients: CLIENTS,
  jwks: { keys: initialKeys },
  findAccount: async (ctx, sub) => ({
    accountId: sub,
    async claims() { return { sub }; },
  }),
  scopes: ['openid', 'offline_access', 'smtp', 'profile', 'email', 'api', 'other'],
  clientDefaults: {
    grant_types: ['client_credentials'],
    response_types: [],
    id_token_signed_response_alg: 'RS256',
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client) => client.clientId !== 'no-introspect',
    },
    revocation: {
      enabled: true,
      allowedPolicy: async (ctx, client, token) => token.clientId === client.clientId,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || SMTP_RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource, client) => {
        const rs = RESOURCES[resource];
        if (!rs) throw new Provider.errors.InvalidTarget();
        // Through the real token endpoint "portcullis" gets JWTs and
        // "portcullis-post" opaque tokens, for either resource.
        const jwt = client?.clientId !== 'portcullis-post';
        return {
          scope: rs.scope,
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: jwt ? 'jwt' : 'opaque',
          ...(jwt ? { jwt: { sign: { alg: 'RS256', kid: currentKid.RS256 } } } : {}),
        };
      },
    },
  },
  // Introspection answers carry "username" (the account id) for tokens
  // that have an account; JWT access tokens carry the account in "sub"
  // only (RFC 9068), unless /mint adds claims.
  extraTokenClaims: async (ctx, token) => {
    const extra = {};
    if (token.accountId && token.format !== 'jwt') extra.username = token.accountId;
    const opts = mintOptions.get(token);
    if (opts && token.format !== 'jwt') applyOverrides(extra, opts.claims);
    return Object.keys(extra).length ? extra : undefined;
  },
  formats: {
    customizers: {
      jwt: async (ctx, token, jwt) => {
        const opts = mintOptions.get(token);
        if (!opts) return;
        applyOverrides(jwt.payload, opts.claims);
        if (opts.header) {
          jwt.header = { ...opts.header };
          delete jwt.header.alg;
        }
      },
    },
  },
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 300,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || 300,
  },
});

// Warnings from oidc-provider go to stderr (the harness keeps it in a
// file); server errors too.
provider.on('server_error', (ctx, err) => {
  process.stderr.write(`server_error ${ctx.path}: ${err.stack}\n`);
});

async function getClient(clientId) {
  const client = await provider.Client.find(clientId);
  if (!client) throw new Error(`unknown client ${clientId}`);
  return client;
}

function resourceServer(resource, format, alg, kid) {
  if (!RESOURCES[resource]) throw new Error(`unknown resource ${resource}`);
  const info = {
    scope: RESOURCES[resource].scope,
    audience: resource,
    accessTokenFormat: format,
  };
  if (format === 'jwt') info.jwt = { sign: { alg, kid } };
  return new provider.ResourceServer(resource, info);
}

// Mint an access token through oidc-provider's own model, so that the
// real introspection endpoint and the real JWKS verify it.
async function mint({
  user, scope = 'smtp', ttl_seconds: ttl = 300, format = 'jwt',
  resource = SMTP_RESOURCE, client: clientId = 'portcullis', alg = 'RS256',
  kid, claims, header,
}) {
  if (format !== 'jwt' && format !== 'opaque') throw new Error(`bad format ${format}`);
  if (format === 'jwt' && !currentKid[alg]) throw new Error(`bad alg ${alg}`);
  const client = await getClient(clientId);
  const now = Math.floor(Date.now() / 1000);
  const token = new provider.AccessToken({
    accountId: user || undefined,
    client,
    scope: scope || undefined,
    resourceServer: resourceServer(resource, format, alg, kid || currentKid[alg]),
    gty: 'client_credentials',
    // ttl <= 0 mints a token that has already expired.
    iat: ttl > 0 ? now : now - 60 + ttl,
    exp: now + ttl,
  });
  if (!user) {
    // An account-less token; keep accountId off the model entirely.
    delete token.accountId;
  }
  mintOptions.set(token, { claims, header });
  const value = await token.save();
  return {
    token: value, exp: token.exp, jti: token.jti, format,
    kid: format === 'jwt' ? JSON.parse(Buffer.from(value.split('.')[0], 'base64url')).kid : undefined,
  };
}

async function revoke(value) {
  let id = value;
  if (value.split('.').length === 3) {
    // A JWT: revoking it destroys the stored record, which introspection
    // would see; a local JWT validator cannot know.
    id = JSON.parse(Buffer.from(value.split('.')[1], 'base64url')).jti;
  }
  const token = await provider.AccessToken.find(id, { ignoreExpiration: true })
    || await provider.ClientCredentials.find(id, { ignoreExpiration: true });
  if (!token) return { revoked: false };
  await token.destroy();
  return { revoked: true };
}

// --- the password grant -----------------------------------------------

const users = new Map([
  ['alice', 'alice-password'],
  ['bob', 'bob-password'],
]);

const pwModel = {
  async getClient(clientId, clientSecret) {
    const c = CLIENTS.find((x) => x.client_id === clientId);
    if (!c || c.client_secret !== clientSecret) return false;
    return { id: clientId, grants: ['password'] };
  },
  async getUser(username, password) {
    if (!users.has(username)) return false;
    const want = Buffer.from(users.get(username));
    const got = Buffer.from(password);
    if (want.length !== got.length || !crypto.timingSafeEqual(want, got)) return false;
    return { id: username };
  },
  async validateScope(user, client, scope) {
    return scope && scope.length ? scope : ['smtp'];
  },
  // The access token is an oidc-provider opaque token for the user.
  async generateAccessToken(client, user, scope) {
    const { token } = await mint({
      user: user.id,
      scope: scope.join(' '),
      ttl_seconds: PASSWORD_TTL,
      format: 'opaque',
      client: client.id,
    });
    return token;
  },
  async saveToken(token, client, user) {
    return { ...token, client, user };
  },
};

const pwServer = new OAuth2Server({
  model: pwModel,
  accessTokenLifetime: PASSWORD_TTL,
  allowExtendedTokenAttributes: false,
  requireClientAuthentication: { password: true },
  alwaysIssueNewRefreshToken: false,
});

async function passwordToken(req, res, rawBody) {
  const request = new OAuth2Server.Request({
    headers: req.headers,
    method: req.method,
    query: {},
    body: querystring.parse(rawBody.toString()),
  });
  const response = new OAuth2Server.Response({ headers: {} });
  try {
    await pwServer.token(request, response);
    // No refresh token: the submission server has no use for one.
    delete response.body.refresh_token;
  } catch (err) {
    if (!err.code || err.code >= 500) {
      process.stderr.write(`password grant: ${err.stack}\n`);
    }
  }
  const body = JSON.stringify(response.body || {});
  res.writeHead(response.status || 500, {
    ...response.headers,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

// --- the HTTPS front: stats, log, delay and hang, then dispatch --------

let stats = {};
let log = [];
const LOG_MAX = 200;
let mode = { delay_ms: 0, hang: false };
let held = [];

function readAll(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const providerCallback = provider.callback();

// --- test knobs for the keys and the metadata (issue 14) --------------
// jwksMode: {status, cache_control} -- /jwks answers that status, or the
// keys with that Cache-Control.  metaMode: {issuer, no_oidc} -- the
// metadata names another issuer; no_oidc: openid-configuration is 404
// and only RFC 8414's oauth-authorization-server answers.
let jwksMode = {};
let metaMode = {};

function sendJson(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function metadata() {
  const base = `https://127.0.0.1:${PORT}`;
  return {
    issuer: metaMode.issuer || ISSUER,
    jwks_uri: `${base}/jwks`,
    introspection_endpoint: `${base}/token/introspection`,
    token_endpoint: `${base}/pw/token`,
  };
}

// 1: answered here; 0: oidc-provider's to answer.
function knobs(path, res) {
  if (path === '/jwks' && jwksMode.status) {
    sendJson(res, jwksMode.status, { error: 'test mode' });
    return 1;
  }
  if (path === '/jwks' && jwksMode.cache_control) {
    sendJson(res, 200, { keys: instance(provider).jwks.keys },
      { 'cache-control': jwksMode.cache_control });
    return 1;
  }
  if (path === '/.well-known/openid-configuration' && metaMode.no_oidc) {
    sendJson(res, 404, { error: 'not found' });
    return 1;
  }
  if (path === '/.well-known/openid-configuration' && metaMode.issuer) {
    sendJson(res, 200, metadata());
    return 1;
  }
  if (path === '/.well-known/oauth-authorization-server') {
    sendJson(res, 200, metadata());
    return 1;
  }
  return 0;
}

async function dispatch(req, res, rawBody) {
  const path = req.url.split('?')[0];
  if (knobs(path, res)) return;
  if (path === '/pw/token' && req.method === 'POST') {
    await passwordToken(req, res, rawBody);
    return;
  }
  // oidc-provider reads an already-read body from req.body.
  req.body = rawBody;
  providerCallback(req, res);
}

async function front(req, res) {
  let rawBody;
  try {
    rawBody = await readAll(req);
  } catch {
    return;
  }
  const path = req.url.split('?')[0];
  stats[path] = (stats[path] || 0) + 1;
  stats.total = (stats.total || 0) + 1;
  if (DEMO) demoLogRequest(req, res, path, stats.total);
  const form = (req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')
    ? querystring.parse(rawBody.toString()) : undefined;
  log.push({
    time: Date.now() / 1000,
    method: req.method,
    path: req.url,
    headers: req.headers,
    form,
  });
  if (log.length > LOG_MAX) log = log.slice(-LOG_MAX);

  const go = () => {
    dispatch(req, res, rawBody).catch((err) => {
      process.stderr.write(`dispatch ${path}: ${err.stack}\n`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  };
  const later = () => {
    if (mode.delay_ms > 0) setTimeout(go, mode.delay_ms);
    else go();
  };
  if (mode.hang) {
    stats.held = (stats.held || 0) + 1;
    held.push(later);
  } else {
    later();
  }
}

// One line per request once it is answered: the path, never the body
// (it holds passwords and tokens).
function demoLogRequest(req, res, path, n) {
  res.on('finish', () => {
    process.stderr.write(`idp: request ${n}: ${req.method} ${path} -> ${res.statusCode}\n`);
  });
}

const tlsServer = https.createServer({
  cert: fs.readFileSync(args['tls-cert']),
  key: fs.readFileSync(args['tls-key']),
}, front);
tlsServer.keepAliveTimeout = 5000;

// --- the admin API ----------------------------------------------------

function json(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function admin(req, res) {
  let body = {};
  try {
    const raw = await readAll(req);
    if (raw.length) body = JSON.parse(raw.toString());
  } catch (err) {
    json(res, 400, { error: `bad JSON: ${err.message}` });
    return;
  }
  const route = `${req.method} ${req.url.split('?')[0]}`;
  try {
    switch (route) {
      case 'GET /health':
        json(res, 200, { ok: true, issuer: ISSUER });
        return;
      case 'POST /mint':
        json(res, 200, await mint(body));
        return;
      case 'POST /revoke':
        json(res, 200, await revoke(String(body.token)));
        return;
      case 'POST /users':
        if (body.password === null || body.password === undefined) users.delete(body.user);
        else users.set(String(body.user), String(body.password));
        json(res, 200, { ok: true });
        return;
      case 'GET /stats':
        json(res, 200, stats);
        return;
      case 'POST /stats/reset':
        stats = {};
        log = [];
        json(res, 200, { ok: true });
        return;
      case 'GET /log':
        json(res, 200, log);
        return;
      case 'POST /mode': {
        if ('delay_ms' in body) mode.delay_ms = Number(body.delay_ms) || 0;
        if ('hang' in body) mode.hang = !!body.hang;
        if (!mode.hang && held.length) {
          const release = held;
          held = [];
          for (const f of release) f();
        }
        json(res, 200, mode);
        return;
      }
      case 'POST /jwks/rotate': {
        // Add a new signing key; later mints with that alg sign with it.
        // {publish: false} keeps it out of the published JWKS, so its kid
        // stays unknown to every client.
        const alg = body.alg || 'RS256';
        const key = newKey(alg);
        instance(provider).keystore.add(key);
        if (body.publish !== false) {
          instance(provider).jwks.keys.push(publicPart(key));
        }
        currentKid[alg] = key.kid;
        json(res, 200, { kid: key.kid, alg, published: body.publish !== false });
        return;
      }
      case 'POST /jwks/withdraw': {
        // Take a key out of the published JWKS, as a provider does after
        // a compromise; mints go on with the newest published key.
        const { keys } = instance(provider).jwks;
        const i = keys.findIndex((k) => k.kid === body.kid);
        if (i < 0) throw new Error(`no published key ${body.kid}`);
        const [gone] = keys.splice(i, 1);
        if (currentKid[gone.alg] === gone.kid) {
          const left = keys.filter((k) => k.alg === gone.alg);
          if (left.length) currentKid[gone.alg] = left[left.length - 1].kid;
        }
        json(res, 200, { kid: gone.kid, current: currentKid[gone.alg] });
        return;
      }
      case 'POST /jwks/mode':
        jwksMode = { ...body };
        json(res, 200, jwksMode);
        return;
      case 'POST /meta/mode':
        metaMode = { ...body };
        json(res, 200, metaMode);
        return;
      default:
        json(res, 404, { error: `no route ${route}` });
    }
  } catch (err) {
    json(res, 400, { error: err.message });
  }
}

const adminServer = http.createServer(admin);

// --- start ------------------------------------------------------------

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
}

try {
  await listen(tlsServer, PORT);
  await listen(adminServer, ADMIN_PORT);
} catch (err) {
  process.stderr.write(`listen: ${err.message}\n`);
  process.exit(1);
}
if (DEMO) {
  process.stderr.write(`idp: development identity provider, not for production: `
    + `https://127.0.0.1:${PORT} (users ${[...users.keys()].join(', ')}), `
    + `request counts at http://127.0.0.1:${ADMIN_PORT}/stats\n`);
}
process.stdout.write('READY\n');

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
