/*
 * checker_oauth.c -- a remote OAuth 2.0 identity provider.
 *
 * Three ways to ask it, by what the client gave:
 * - a bearer token that is a JWT, with a jwks-url: validated here
 *   (RFC 9068) with the provider's keys, fetched at start and again
 *   when a token names a key we do not have, at most once per
 *   jwks-refresh;
 * - another bearer token, with an introspection-url: RFC 7662, the
 *   provider says whether it is active and whose it is;
 * - a password, with a token-url: the resource owner password
 *   credentials grant (RFC 6749 4.3), 200 with a token is ok.
 *
 * Everything runs on authd's event loop (http.c); nothing here waits.
 * Outcomes: ok; fail when the provider said no; tempfail when it
 * could not say (down, slow, 5xx, unparsable, our own client refused).
 * After breaker tempfails in a row the circuit opens: for breaker-time
 * every login is a tempfail at once, without a request, so that a dead
 * provider costs nothing; the log says so when it opens and when it
 * closes again, not at every login.
 */

#include <sys/queue.h>

#include <ctype.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <jansson.h>

#include "chain.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "scope.h"
#include "store.h"
#include "util.h"

struct oauth_job {
	TAILQ_ENTRY(oauth_job)	 entry;		/* waiting for the JWKS */
	struct auth_ctx		*ctx;
	struct provider		*p;
	struct http_req		*req;
	int			 waiting;	/* in jwks_wait */
	int			 retried;	/* after a JWKS refresh */
};
TAILQ_HEAD(oauth_jobs, oauth_job);

struct provider {
	struct checker_priv	 priv;		/* first: chain.c's view */
	char			 name[CONF_NAME_MAX];
	struct oauth_conf	 conf;		/* our own copy */
	struct http_client	*http;
	/* the circuit breaker */
	int			 tempfails;	/* in a row */
	time_t			 open_until;
	int			 open;		/* logged as open */
	/* JWKS */
	struct jwks		*jwks;
	time_t			 jwks_fetched;	/* last attempt */
	struct http_req		*jwks_req;
	struct oauth_jobs	 jwks_wait;
	int			 dead;		/* replaced by a reload */
};

static void	token_jwt(struct oauth_job *);
static void	jwks_fetch(struct provider *);
static void	jwks_await(struct provider *, struct oauth_job *);

static void
provider_free(struct checker_priv *priv)
{
	struct provider	*p = (struct provider *)priv;

	/* No check holds a reference: nobody waits for the JWKS. */
	if (p->jwks_req != NULL)
		http_cancel(p->jwks_req);
	http_client_free(p->http);
	jwks_free(p->jwks);
	explicit_bzero(&p->conf, sizeof(p->conf));
	free(p);
}

/* The outcome of one check; the provider's health is learnt from it. */
static void
job_done(struct oauth_job *j, int result, const char *why, int provider_down)
{
	struct provider	*p = j->p;
	struct auth_ctx	*ctx = j->ctx;
	time_t		 now = time(NULL);

	if (provider_down && p->conf.breaker > 0) {
		if (++p->tempfails >= p->conf.breaker) {
			p->open_until = now + p->conf.breaker_time;
			if (!p->open)
				log_warnx("checker %s: %d failures in a row, "
				    "not asking the provider for %ds", p->name,
				    p->tempfails, p->conf.breaker_time);
			p->open = 1;
		}
	} else if (!provider_down && result != AUTH_TEMPFAIL) {
		if (p->open)
			log_info("checker %s: the provider answers again",
			    p->name);
		p->open = 0;
		p->tempfails = 0;
	}
	ctx->result = result;
	ctx->why = why;
	ctx->job = NULL;
	free(j);
	chain_checker_done(ctx);
}

/*
 * The provider's user name, as mail knows it: with "domain", a name
 * without '@' gets "@domain".  0 ok, -1 unusable.
 */
static int
map_user(const struct provider *p, const char *in, char *out, size_t outlen)
{
	char	 buf[CONF_AUTH_NAME_MAX + CONF_HOST_MAX + 1];

	if (p->conf.domain[0] != '\0' && strchr(in, '@') == NULL) {
		if ((size_t)snprintf(buf, sizeof(buf), "%s@%s", in,
		    p->conf.domain) >= sizeof(buf))
			return -1;
	} else if (strlcpy(buf, in, sizeof(buf)) >= sizeof(buf))
		return -1;
	return store_name_normalize(buf, out, outlen);
}

/*
 * A token proved who it belongs to; if the client named someone
 * (XOAUTH2 user=, OAUTHBEARER a=) it must be the same person.
 */
static void
token_owner(struct oauth_job *j, const char *user, int64_t exp,
    const char *scope)
{
	struct auth_ctx	*ctx = j->ctx;
	char		 mapped[CONF_AUTH_NAME_MAX], named[CONF_AUTH_NAME_MAX];

	if (map_user(j->p, user, mapped, sizeof(mapped)) == -1) {
		job_done(j, AUTH_FAIL, "unusable user in token", 0);
		return;
	}
	if (ctx->user[0] != '\0' && (map_user(j->p, ctx->user, named,
	    sizeof(named)) == -1 || strcmp(named, mapped) != 0)) {
		job_done(j, AUTH_FAIL, "token of another user", 0);
		return;
	}
	strlcpy(ctx->canonical, mapped, sizeof(ctx->canonical));
	ctx->found.expires = exp;
	strlcpy(ctx->found.scope, scope != NULL ? scope : "",
	    sizeof(ctx->found.scope));
	job_done(j, AUTH_OK, NULL, 0);
}

/*
 * Introspection need not say the audience (RFC 7662 2.2: aud is
 * optional); when audience is configured, a token must be for us.
 */
static int
aud_has(json_t *aud, const char *want)
{
	size_t	 i;
	json_t	*v;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i, v)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), want) == 0)
				return 1;
	return 0;
}

/* An answer that is not one: the provider is in trouble, not the user. */
static int
response_trouble(struct oauth_job *j, const struct http_response *r,
    const char *what)
{
	if (r->status == 0) {
		log_warnx("checker %s: %s: %s", j->p->name, what,
		    r->error != NULL ? r->error : "no answer");
		job_done(j, AUTH_TEMPFAIL, r->timed_out ? "provider timeout" :
		    "provider unreachable", 1);
		return 1;
	}
	if (r->status >= 500) {
		log_warnx("checker %s: %s: HTTP %ld", j->p->name, what,
		    r->status);
		job_done(j, AUTH_TEMPFAIL, "provider error", 1);
		return 1;
	}
	return 0;
}

/* RFC 6749 2.3.1: the client's credentials, Basic or in the body. */
static int
client_auth(const struct provider *p, char **header, char **bodypart)
{
	const struct oauth_conf	*o = &p->conf;
	char			*id = NULL, *sec = NULL, *pair = NULL;
	char			*b64 = NULL;
	size_t			 plen;
	int			 rv = -1;

	*header = *bodypart = NULL;
	if ((id = http_form_escape(o->client_id, strlen(o->client_id))) ==
	    NULL || (sec = http_form_escape(o->client_secret,
	    strlen(o->client_secret))) == NULL)
		goto out;
	if (o->client_auth == OAUTH_CLIENT_POST || o->client_secret[0] ==
	    '\0') {
		if (asprintf(bodypart, "&client_id=%s%s%s", id,
		    o->client_secret[0] != '\0' ? "&client_secret=" : "",
		    o->client_secret[0] != '\0' ? sec : "") == -1) {
			*bodypart = NULL;
			goto out;
		}
		rv = 0;
		goto out;
	}
	if (asprintf(&pair, "%s:%s", id, sec) == -1) {
		pair = NULL;
		goto out;
	}
	plen = strlen(pair);
	if ((b64 = malloc(4 * ((plen + 2) / 3) + 1)) == NULL)
		goto out;
	EVP_EncodeBlock((unsigned char *)b64, (unsigned char *)pair,
	    (int)plen);
	if (asprintf(header, "Authorization: Basic %s", b64) == -1) {
		*header = NULL;
		goto out;
	}
	rv = 0;
out:
	if (id != NULL)
		freezero(id, strlen(id));
	if (sec != NULL)
		freezero(sec, strlen(sec));
	if (pair != NULL)
		freezero(pair, strlen(pair));
	if (b64 != NULL)
		freezero(b64, strlen(b64));
	return rv;
}

/* POST form (which this takes over) to url; cb gets the answer. */
static void
post(struct oauth_job *j, const char *url, char *form, http_cb cb)
{
	char	*header, *extra, *body;
	int	 n;

	if (client_auth(j->p, &header, &extra) == -1) {
		freezero(form, strlen(form));
		job_done(j, AUTH_TEMPFAIL, "out of memory", 0);
		return;
	}
	n = asprintf(&body, "%s%s", form, extra != NULL ? extra : "");
	freezero(form, strlen(form));
	if (extra != NULL)
		freezero(extra, strlen(extra));
	if (n == -1) {
		if (header != NULL)
			freezero(header, strlen(header));
		job_done(j, AUTH_TEMPFAIL, "out of memory", 0);
		return;
	}
	if ((j->req = http_request(j->p->http, url, body, (size_t)n, header,
	    cb, j)) == NULL)
		job_done(j, AUTH_TEMPFAIL, "out of memory", 0);
}

/*
 * The password grant's answer (RFC 6749 5.1, 5.2).  400 invalid_grant
 * is the provider saying no; any other error is about us (our client
 * id, the grant not enabled) and must not lock a user out: tempfail,
 * and a warning for the administrator.
 */
static void
password_done(const struct http_response *r, void *arg)
{
	struct oauth_job	*j = arg;
	json_t			*root, *v;
	const char		*err = NULL;
	char			 eerr[64 * 4 + 1];

	j->req = NULL;
	if (response_trouble(j, r, "token endpoint"))
		return;
	root = json_loadb(r->body, r->len, 0, NULL);
	if (r->status == 200) {
		v = json_object_get(root, "access_token");
		if (json_is_string(v) && json_string_length(v) > 0)
			job_done(j, AUTH_OK, NULL, 0);
		else {
			log_warnx("checker %s: token endpoint: 200 without "
			    "an access_token", j->p->name);
			job_done(j, AUTH_TEMPFAIL, "bad provider answer", 1);
		}
		json_decref(root);
		return;
	}
	if ((v = json_object_get(root, "error")) != NULL &&
	    json_is_string(v))
		err = json_string_value(v);
	if ((r->status == 400 || r->status == 401) && err != NULL &&
	    strcmp(err, "invalid_grant") == 0) {
		j->ctx->found.refused = 1;	/* the cache may remember it */
		job_done(j, AUTH_FAIL, "refused by provider", 0);
	} else {
		/* The provider's words, made safe for one log line. */
		if (err != NULL)
			escape_text(err, strnlen(err, 64), eerr, sizeof(eerr));
		log_warnx("checker %s: token endpoint: HTTP %ld%s%s",
		    j->p->name, r->status, err != NULL ? " " : "",
		    err != NULL ? eerr : "");
		job_done(j, AUTH_TEMPFAIL, "provider refused our client", 0);
	}
	json_decref(root);
}

static void
password_start(struct oauth_job *j)
{
	struct auth_ctx	*ctx = j->ctx;
	const char	*dom = j->p->conf.domain;
	char		 name[CONF_AUTH_NAME_MAX], *u = NULL, *pw = NULL;
	char		*sc = NULL, *form;
	size_t		 n, dl = strlen(dom);
	int		 rv;

	if (map_user(j->p, ctx->user, ctx->canonical,
	    sizeof(ctx->canonical)) == -1) {
		job_done(j, AUTH_FAIL, "bad user name", 0);
		return;
	}
	/* The provider knows the user without our domain. */
	strlcpy(name, ctx->canonical, sizeof(name));
	n = strlen(name);
	if (dl > 0) {
		if (n <= dl + 1 || name[n - dl - 1] != '@' ||
		    strcasecmp(name + n - dl, dom) != 0) {
			job_done(j, AUTH_FAIL, "not in the provider's domain",
			    0);
			return;
		}
		name[n - dl - 1] = '\0';
	}
	if ((u = http_form_escape(name, strlen(name))) == NULL ||
	    (pw = http_form_escape(ctx->password, ctx->pwlen)) == NULL ||
	    (sc = http_form_escape(j->p->conf.scope,
	    strlen(j->p->conf.scope))) == NULL) {
		rv = -1;
		goto out;
	}
	rv = asprintf(&form, "grant_type=password&username=%s&password=%s%s%s",
	    u, pw, sc[0] != '\0' ? "&scope=" : "", sc);
out:
	free(u);
	if (pw != NULL)
		freezero(pw, strlen(pw));
	free(sc);
	if (rv == -1) {
		job_done(j, AUTH_TEMPFAIL, "out of memory", 0);
		return;
	}
	post(j, j->p->conf.token_url, form, password_done);
}

/* RFC 7662 2.2: active, and then whose, until when, for what. */
static void
introspect_done(const struct http_response *r, void *arg)
{
	struct oauth_job	*j = arg;
	const struct oauth_conf	*o = &j->p->conf;
	json_t			*root, *v;
	const char		*claim, *user = NULL, *scope = "";
	int64_t			 exp = 0;

	j->req = NULL;
	if (response_trouble(j, r, "introspection"))
		return;
	if (r->status != 200) {
		log_warnx("checker %s: introspection: HTTP %ld (our client "
		    "credentials?)", j->p->name, r->status);
		job_done(j, AUTH_TEMPFAIL, "provider refused our client", 0);
		return;
	}
	if ((root = json_loadb(r->body, r->len, 0, NULL)) == NULL ||
	    !json_is_object(root)) {
		log_warnx("checker %s: introspection: not a JSON object",
		    j->p->name);
		json_decref(root);
		job_done(j, AUTH_TEMPFAIL, "bad provider answer", 1);
		return;
	}
	if (!json_is_true(json_object_get(root, "active"))) {
		json_decref(root);
		job_done(j, AUTH_FAIL, "token not active", 0);
		return;
	}
	if ((v = json_object_get(root, "exp")) != NULL) {
		if (!json_is_integer(v) ||
		    (exp = json_integer_value(v)) <= time(NULL)) {
			json_decref(root);
			job_done(j, AUTH_FAIL, "token expired", 0);
			return;
		}
	}
	/* RFC 7662 2.2: aud, a string or an array, when it says one. */
	if (o->audience[0] != '\0' && !aud_has(json_object_get(root, "aud"),
	    o->audience)) {
		json_decref(root);
		job_done(j, AUTH_FAIL, "token for another audience", 0);
		return;
	}
	if (json_is_string(v = json_object_get(root, "scope")))
		scope = json_string_value(v);
	if (!scope_contains(scope, o->scope)) {
		json_decref(root);
		job_done(j, AUTH_FAIL, "scope missing", 0);
		return;
	}
	claim = o->user_claim[0] != '\0' ? o->user_claim : "username";
	if (json_is_string(v = json_object_get(root, claim)))
		user = json_string_value(v);
	else if (o->user_claim[0] == '\0' &&
	    json_is_string(v = json_object_get(root, "sub")))
		user = json_string_value(v);
	if (user == NULL || user[0] == '\0') {
		json_decref(root);
		job_done(j, AUTH_FAIL, "no user in token", 0);
		return;
	}
	token_owner(j, user, exp, scope);
	json_decref(root);
}

static void
token_introspect(struct oauth_job *j)
{
	char	*tok, *form;

	if ((tok = http_form_escape(j->ctx->password, j->ctx->pwlen)) ==
	    NULL || asprintf(&form, "token=%s&token_type_hint=access_token",
	    tok) == -1) {
		if (tok != NULL)
			freezero(tok, strlen(tok));
		job_done(j, AUTH_TEMPFAIL, "out of memory", 0);
		return;
	}
	freezero(tok, strlen(tok));
	post(j, j->p->conf.introspection_url, form, introspect_done);
}

static void
jwks_done(const struct http_response *r, void *arg)
{
	struct provider		*p = arg;
	struct oauth_jobs	 waiting;
	struct oauth_job	*j;
	struct jwks		*set = NULL;
	char			 err[256];
	int			 down = 0;

	p->jwks_req = NULL;
	if (r->status != 200) {
		log_warnx("checker %s: JWKS: %s", p->name, r->status == 0 ?
		    (r->error != NULL ? r->error : "no answer") : "not 200");
		down = 1;
	} else if ((set = jwks_parse(r->body, r->len, err, sizeof(err))) ==
	    NULL) {
		log_warnx("checker %s: JWKS: %s", p->name, err);
		down = 1;
	} else {
		jwks_free(p->jwks);
		p->jwks = set;
		log_info("checker %s: %d signing keys", p->name,
		    jwks_count(set));
	}
	TAILQ_INIT(&waiting);
	TAILQ_CONCAT(&waiting, &p->jwks_wait, entry);
	while ((j = TAILQ_FIRST(&waiting)) != NULL) {
		TAILQ_REMOVE(&waiting, j, entry);
		j->waiting = 0;
		if (down && p->jwks == NULL)
			job_done(j, AUTH_TEMPFAIL, "no JWKS", 1);
		else
			token_jwt(j);
	}
}

/* j waits for the JWKS fetch that is in flight or starts now. */
static void
jwks_await(struct provider *p, struct oauth_job *j)
{
	TAILQ_INSERT_TAIL(&p->jwks_wait, j, entry);
	j->waiting = 1;
	jwks_fetch(p);
}

static void
jwks_fetch(struct provider *p)
{
	if (p->jwks_req != NULL)
		return;
	p->jwks_fetched = time(NULL);
	if ((p->jwks_req = http_request(p->http, p->conf.jwks_url, NULL, 0,
	    NULL, jwks_done, p)) == NULL)
		log_warnx("checker %s: JWKS: out of memory", p->name);
}

static void
token_jwt(struct oauth_job *j)
{
	struct provider		*p = j->p;
	struct auth_ctx		*ctx = j->ctx;
	struct jwt_policy	 pol;
	struct jwt_claims	 cl;
	char			 err[256];
	int			 rv;

	if (p->jwks == NULL || p->jwks_req != NULL) {
		/* The first fetch, or one in flight: wait for it. */
		if (p->jwks_req == NULL && j->retried) {
			job_done(j, AUTH_TEMPFAIL, "no JWKS", 1);
			return;
		}
		j->retried = 1;
		jwks_await(p, j);
		jwks_fetch(p);
		return;
	}
	memset(&pol, 0, sizeof(pol));
	pol.algorithms = p->conf.algorithms;
	pol.issuer = p->conf.issuer;
	pol.audience = p->conf.audience;
	pol.scope = p->conf.scope;
	pol.user_claim = p->conf.user_claim;
	pol.leeway = p->conf.leeway;
	rv = jwt_verify(ctx->password, ctx->pwlen, p->jwks, &pol, time(NULL),
	    &cl, err, sizeof(err));
	if (rv == JWT_UNKNOWN_KID && !j->retried &&
	    time(NULL) - p->jwks_fetched >= p->conf.jwks_refresh) {
		/* Keys rotate: ask once more, but not at every token. */
		j->retried = 1;
		jwks_await(p, j);
		jwks_fetch(p);
		return;
	}
	if (rv != JWT_OK) {
		log_debug("checker %s: session %016llx: %s", p->name,
		    (unsigned long long)ctx->session_id, err);
		job_done(j, AUTH_FAIL, rv == JWT_UNKNOWN_KID ? "unknown key" :
		    "invalid token", 0);
		return;
	}
	token_owner(j, cl.user, cl.exp, cl.scope);
	explicit_bzero(&cl, sizeof(cl));
}

/* Three dots-separated base64url parts: worth validating here. */
static int
looks_like_jwt(const char *t, size_t len)
{
	size_t	 dots = 0;

	for (size_t i = 0; i < len; i++)
		if (t[i] == '.')
			dots++;
	return dots == 2 && len > 0 && t[0] == 'e';
}

static void
oauth_start(struct checker *c, struct auth_ctx *ctx)
{
	struct provider		*p = (struct provider *)c->priv;
	struct oauth_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->ctx = ctx;
	j->p = p;
	ctx->job = j;
	if (p->open && time(NULL) < p->open_until) {
		job_done(j, AUTH_TEMPFAIL, "circuit open", 0);
		return;
	}
	if (ctx->mechanism & SASL_PASSWORD_MECHS)
		password_start(j);
	else if (p->conf.jwks_url[0] != '\0' &&
	    looks_like_jwt(ctx->password, ctx->pwlen))
		token_jwt(j);
	else if (p->conf.introspection_url[0] != '\0')
		token_introspect(j);
	else
		job_done(j, AUTH_FAIL, "not a JWT", 0);
}

/*
 * jansson keeps copies of what it parses, an access token from the
 * token endpoint among them, and frees them without wiping: give it
 * a free that wipes.
 */
static void
json_wipe_free(void *p)
{
	if (p == NULL)
		return;
#ifdef __GLIBC__
	explicit_bzero(p, malloc_usable_size(p));
#endif
	/* OpenBSD's malloc junks freed chunks by itself. */
	free(p);
}

/* The session went away: no answer is wanted any more. */
static void
oauth_cancel(struct checker *c, struct auth_ctx *ctx)
{
	struct provider		*p = (struct provider *)c->priv;
	struct oauth_job	*j = ctx->job;

	if (j == NULL)
		return;
	if (j->req != NULL)
		http_cancel(j->req);
	if (j->waiting)
		TAILQ_REMOVE(&p->jwks_wait, j, entry);
	ctx->job = NULL;
	free(j);
}

static void
oauth_stats(const struct checker *c, char *buf, size_t len)
{
	const struct provider	*p = (const struct provider *)c->priv;

	snprintf(buf, len, "circuit %s, %d failures in a row, %d signing "
	    "keys", p->open && time(NULL) < p->open_until ? "open" :
	    "closed", p->tempfails, jwks_count(p->jwks));
}

static int
oauth_init(struct checker *c, struct portcullis_conf *conf)
{
	static int		 json_ready;
	struct provider		*p;
	struct http_client_opts	 ho;

	(void)conf;
	if (!json_ready) {
		json_set_alloc_funcs(malloc, json_wipe_free);
		json_ready = 1;
	}

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->priv.refs = 1;
	strlcpy(p->name, c->conf->name, sizeof(p->name));
	p->conf = c->conf->oauth;
	TAILQ_INIT(&p->jwks_wait);
	memset(&ho, 0, sizeof(ho));
	ho.name = p->name;
	ho.ca_file = p->conf.ca_file;
	ho.timeout_ms = p->conf.timeout;
	ho.connect_timeout_ms = p->conf.connect_timeout;
	ho.max_requests = p->conf.max_requests;
	if ((p->http = http_client_new(&ho)) == NULL) {
		log_warnx("checker %s: cannot make an HTTP client", p->name);
		free(p);
		return -1;
	}
	c->priv = &p->priv;
	/* Ready before the first token comes. */
	if (p->conf.jwks_url[0] != '\0')
		jwks_fetch(p);
	return 0;
}

const struct checker_ops checker_oauth_ops = {
	.name = "oauth",
	.kinds = CRED_PASSWORD | CRED_TOKEN,
	.cacheable = 1,		/* the point of the cache */
	.init = oauth_init,
	.start = oauth_start,
	.cancel = oauth_cancel,
	.stats = oauth_stats,
	.free = provider_free,
};
