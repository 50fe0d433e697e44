/*
 * checker_oauth.c -- a remote OAuth 2.0 identity provider.
 *
 * Three ways to ask it, by what the client gave:
 * - a bearer token that is a JWT, with a JWKS: validated here (RFC
 *   9068) with the provider's keys;
 * - another bearer token, with an introspection endpoint: RFC 7662,
 *   the provider says whether it is active and whose it is;
 * - a password, with a token endpoint: the resource owner password
 *   credentials grant (RFC 6749 4.3), 200 with a token is ok.
 * Who a token names is decided by token_identity() (jwt.c) for both
 * kinds of token: a client's own token names no user (RFC 9068 5).
 *
 * The keys.  The set is fetched at start, then again on a schedule:
 * when the answer's Cache-Control max-age says, kept between
 * jwks-refresh and jwks-interval, so that a key the provider withdrew
 * stops being trusted within jwks-interval.  A token that names an
 * unknown kid fetches it at once, at most once per jwks-refresh.  A
 * fetch that fails keeps the last good set, logged and counted, until
 * it is jwks-max-age old; then tokens fail temporarily (454), never
 * pass on keys older than that.
 *
 * Discovery.  With issuer alone the URLs come from the provider's
 * metadata (OpenID Connect Discovery 1.0 4, RFC 8414 3), fetched
 * before the keys at each refresh; its issuer must be ours (RFC 8414
 * 3.3), and explicit URLs win.
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
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <jansson.h>

#include "chain.h"
#include "http.h"
#include "jwt.h"
#include "log.h"
#include "metrics.h"
#include "scope.h"
#include "store.h"
#include "util.h"

struct oauth_job {
	TAILQ_ENTRY(oauth_job)	 entry;		/* in a wait queue */
	struct auth_ctx		*ctx;
	struct provider		*p;
	struct http_req		*req;
	struct oauth_jobs	*waiting;	/* the queue it is in */
	int			 meta_waited;	/* for the metadata */
	int			 keys_waited;	/* for a JWKS fetch */
	struct timespec		 req_started;	/* for the metrics */
};
TAILQ_HEAD(oauth_jobs, oauth_job);

/* authctl oauth refresh, waiting for the fetch to end */
struct refresh_waiter {
	TAILQ_ENTRY(refresh_waiter) entry;
	void			(*done)(void *, const struct ctl_refreshed *);
	void			*arg;
};
TAILQ_HEAD(refresh_waiters, refresh_waiter);

struct provider {
	struct checker_priv	 priv;		/* first: chain.c's view */
	char			 name[CONF_NAME_MAX];
	struct oauth_conf	 conf;		/* our own copy */
	struct http_client	*http;
	/* the URLs in use: configured, else discovered */
	char			 jwks_url[CONF_URL_MAX];
	char			 introspection_url[CONF_URL_MAX];
	char			 token_url[CONF_URL_MAX];
	/* the circuit breaker */
	int			 tempfails;	/* in a row */
	time_t			 open_until;
	int			 open;		/* logged as open */
	/* discovery */
	struct http_req		*meta_req;
	int			 meta_ok;	/* arrived once */
	int			 meta_rfc8414;	/* the well-known that works */
	time_t			 meta_fetched;	/* last attempt */
	struct oauth_jobs	 meta_wait;
	/* JWKS */
	struct jwks		*jwks;
	time_t			 jwks_fetched;	/* last attempt */
	time_t			 jwks_good;	/* last success */
	time_t			 next_refresh;
	unsigned		 failures;	/* fetches failed, in all */
	int			 failing;	/* logged as failing */
	int			 too_old;	/* logged as past max-age */
	struct http_req		*jwks_req;
	struct oauth_jobs	 jwks_wait;
	struct event		*timer;
	struct refresh_waiters	 waiters;
	char			 last_error[192];
};

static void	job_route(struct oauth_job *);
static void	token_jwt(struct oauth_job *);
static void	jwks_fetch(struct provider *);
static void	meta_fetch(struct provider *);
static void	refresh_schedule(struct provider *, long seconds);

static void
refresh_waiters_done(struct provider *p, const char *error)
{
	struct refresh_waiter	*w;
	struct ctl_refreshed	 r;

	memset(&r, 0, sizeof(r));
	strlcpy(r.checker, p->name, sizeof(r.checker));
	strlcpy(r.error, error != NULL ? error : "", sizeof(r.error));
	r.keys = (uint32_t)jwks_count(p->jwks);
	r.failures = p->failures;
	while ((w = TAILQ_FIRST(&p->waiters)) != NULL) {
		TAILQ_REMOVE(&p->waiters, w, entry);
		w->done(w->arg, &r);
		free(w);
	}
}

static void
provider_free(struct checker_priv *priv)
{
	struct provider	*p = (struct provider *)priv;

	/* No check holds a reference: nobody waits for the JWKS. */
	if (p->jwks_req != NULL)
		http_cancel(p->jwks_req);
	if (p->meta_req != NULL)
		http_cancel(p->meta_req);
	p->jwks_req = p->meta_req = NULL;
	refresh_waiters_done(p, "checker retired by a reload");
	if (p->timer != NULL)
		event_free(p->timer);
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
	metrics_observe(M_CHECKER_REQUEST_SECONDS,
	    metrics_since_usec(&j->req_started), j->p->name);
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
	clock_gettime(CLOCK_MONOTONIC, &j->req_started);
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
	post(j, j->p->token_url, form, password_done);
}

static void
identity_rules(const struct provider *p, struct token_rules *r)
{
	r->user_claim = p->conf.user_claim;
	r->client_claim = p->conf.client_claim;
	r->clients = p->conf.clients;
}

/* RFC 7662 2.2: active, and then whose, until when, for what. */
static void
introspect_done(const struct http_response *r, void *arg)
{
	struct oauth_job	*j = arg;
	const struct oauth_conf	*o = &j->p->conf;
	struct token_rules	 rules;
	json_t			*root, *v;
	const char		*scope = "", *why;
	char			 user[CONF_AUTH_NAME_MAX], client[256];
	char			 err[256];
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
	identity_rules(j->p, &rules);
	if ((why = token_identity(root, &rules, user, sizeof(user), client,
	    sizeof(client), err, sizeof(err))) != NULL) {
		log_info("checker %s: session %016llx: introspection: %s",
		    j->p->name, (unsigned long long)j->ctx->session_id, err);
		json_decref(root);
		job_done(j, AUTH_FAIL, why, 0);
		return;
	}
	token_owner(j, user, exp, scope);
	explicit_bzero(user, sizeof(user));
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
	post(j, j->p->introspection_url, form, introspect_done);
}


/* ---- the keys, and the schedule that keeps them fresh ---- */

/* Jobs that waited for a fetch go on, through the route again. */
static void
wake(struct oauth_jobs *q)
{
	struct oauth_jobs	 woken;
	struct oauth_job	*j;

	TAILQ_INIT(&woken);
	TAILQ_CONCAT(&woken, q, entry);
	while ((j = TAILQ_FIRST(&woken)) != NULL) {
		TAILQ_REMOVE(&woken, j, entry);
		j->waiting = NULL;
		job_route(j);
	}
}

static void
await(struct oauth_jobs *q, struct oauth_job *j)
{
	TAILQ_INSERT_TAIL(q, j, entry);
	j->waiting = q;
}

/*
 * The time to the next fetch: what the provider said, within
 * [jwks-refresh, jwks-interval], so that a withdrawn key goes within
 * jwks-interval however long the provider says its keys keep.
 */
static long
refresh_delay(const struct provider *p, long max_age)
{
	long	 lo = p->conf.jwks_refresh, hi = p->conf.jwks_interval;

	if (hi < lo)
		hi = lo;
	if (max_age < 0)
		return hi;
	return max_age < lo ? lo : max_age > hi ? hi : max_age;
}

static void
refresh_event(evutil_socket_t fd, short what, void *arg)
{
	struct provider	*p = arg;

	(void)fd;
	(void)what;
	if (p->conf.discovery)
		meta_fetch(p);
	else
		jwks_fetch(p);
}

static void
refresh_schedule(struct provider *p, long seconds)
{
	struct timeval	 tv = { seconds, 0 };

	if (p->timer == NULL)
		return;
	p->next_refresh = time(NULL) + seconds;
	evtimer_add(p->timer, &tv);
}

/* A fetch of the keys or the metadata failed: keep what we have. */
static void
refresh_failed(struct provider *p, const char *what, const char *why)
{
	time_t	 age = time(NULL) - p->jwks_good;

	p->failures++;
	errbuf_set(p->last_error, sizeof(p->last_error), "%s: %s", what, why);
	if (p->jwks != NULL && !p->failing)
		log_warnx("checker %s: %s: %s; keeping the %d keys fetched "
		    "%llds ago until they are %ds old (jwks-max-age)",
		    p->name, what, why, jwks_count(p->jwks), (long long)age,
		    p->conf.jwks_max_age);
	else if (!p->failing)
		log_warnx("checker %s: %s: %s", p->name, what, why);
	p->failing = 1;
	refresh_schedule(p, p->conf.jwks_refresh);
}

static void
jwks_done(const struct http_response *r, void *arg)
{
	struct provider		*p = arg;
	struct jwks		*set = NULL;
	char			 err[256];

	p->jwks_req = NULL;
	if (r->status != 200) {
		http_failure(r, err, sizeof(err));
		refresh_failed(p, "JWKS", err);
	} else if ((set = jwks_parse(r->body, r->len, err, sizeof(err))) ==
	    NULL)
		refresh_failed(p, "JWKS", err);
	else {
		if (p->failing || p->too_old)
			log_info("checker %s: JWKS fetched again after %u "
			    "failures in all", p->name, p->failures);
		else if (jwks_count(p->jwks) != jwks_count(set) ||
		    p->jwks == NULL)
			log_info("checker %s: %d signing keys", p->name,
			    jwks_count(set));
		jwks_free(p->jwks);
		p->jwks = set;
		p->jwks_good = time(NULL);
		p->failing = p->too_old = 0;
		p->last_error[0] = '\0';
		refresh_schedule(p, refresh_delay(p, r->max_age));
	}
	refresh_waiters_done(p, set == NULL ? p->last_error : NULL);
	/* last: a woken check may end, and with it this provider */
	wake(&p->jwks_wait);
}

static void
jwks_fetch(struct provider *p)
{
	if (p->jwks_req != NULL)
		return;
	if (p->jwks_url[0] == '\0') {
		/* discovery found none: nothing to fetch, nothing to wait */
		refresh_schedule(p, p->meta_ok ? p->conf.jwks_interval :
		    p->conf.jwks_refresh);
		refresh_waiters_done(p, p->meta_ok ? "no jwks_uri" :
		    p->last_error);
		wake(&p->jwks_wait);
		return;
	}
	p->jwks_fetched = time(NULL);
	if ((p->jwks_req = http_request(p->http, p->jwks_url, NULL, 0,
	    NULL, jwks_done, p)) == NULL) {
		log_warnx("checker %s: JWKS: out of memory", p->name);
		refresh_schedule(p, p->conf.jwks_refresh);
	}
}

/* Keys that may verify a token now: fetched, and not too long ago. */
static int
keys_usable(struct provider *p)
{
	if (p->jwks == NULL)
		return 0;
	/*
	 * Whole seconds: "<" refuses a set as soon as it may be max-age
	 * old, never a second after.
	 */
	if (time(NULL) - p->jwks_good < p->conf.jwks_max_age)
		return 1;
	if (!p->too_old)
		log_warnx("checker %s: the keys are older than jwks-max-age "
		    "(%ds) and cannot be fetched: tokens fail temporarily",
		    p->name, p->conf.jwks_max_age);
	p->too_old = 1;
	return 0;
}

/* ---- discovery: OpenID Connect Discovery 1.0 4, RFC 8414 3 ---- */

/* The metadata's URL; RFC 8414 3.1 puts the well-known before the path. */
static int
meta_url(const struct provider *p, char *buf, size_t len)
{
	const char	*iss = p->conf.issuer, *path;
	size_t		 n = strlen(iss);
	int		 rv;

	while (n > 0 && iss[n - 1] == '/')
		n--;
	if (!p->meta_rfc8414)
		rv = snprintf(buf, len, "%.*s/.well-known/openid-configuration",
		    (int)n, iss);
	else {
		path = strchr(strstr(iss, "://") + 3, '/');
		if (path == NULL || path >= iss + n)
			path = iss + n;
		rv = snprintf(buf, len, "%.*s/.well-known/oauth-authorization-"
		    "server%.*s", (int)(path - iss), iss,
		    (int)(iss + n - path), path);
	}
	return rv < 0 || (size_t)rv >= len ? -1 : 0;
}

/*
 * A URL from the metadata: https, or http on the issuer's own
 * origin (parse.y allows http for a provider on this host only).
 */
static int
meta_url_ok(const struct provider *p, const char *u)
{
	const char	*iss = p->conf.issuer, *end;
	size_t		 n;

	for (const char *c = u; *c != '\0'; c++)
		if (isspace((unsigned char)*c) || iscntrl((unsigned char)*c))
			return 0;
	if (strncasecmp(u, "https://", 8) == 0)
		return u[8] != '\0' && u[8] != '/';
	if (strncasecmp(iss, "http://", 7) != 0)
		return 0;
	end = strchr(iss + 7, '/');
	n = end != NULL ? (size_t)(end - iss) : strlen(iss);
	return strncasecmp(u, iss, n) == 0 && (u[n] == '/' || u[n] == '\0');
}

/* Take one URL unless the configuration gave it. */
static void
meta_take(struct provider *p, json_t *root, const char *member,
    const char *configured, char *dst, size_t len)
{
	json_t		*v;
	char		 buf[128];

	if (configured[0] != '\0')
		return;
	if ((v = json_object_get(root, member)) == NULL)
		return;
	if (!json_is_string(v) || json_string_length(v) >= len ||
	    !meta_url_ok(p, json_string_value(v))) {
		log_warnx("checker %s: metadata: %s \"%s\" refused", p->name,
		    member, json_is_string(v) ? escape_text(json_string_value(v),
		    json_string_length(v), buf, sizeof(buf)) : "?");
		return;
	}
	if (strcmp(dst, json_string_value(v)) != 0)
		log_info("checker %s: %s from the metadata: %s", p->name,
		    member, escape_text(json_string_value(v),
		    json_string_length(v), buf, sizeof(buf)));
	strlcpy(dst, json_string_value(v), len);
}

/* 0 if the metadata was taken, else -1 and why. */
static int
meta_parse(struct provider *p, const struct http_response *r, char *err,
    size_t errlen)
{
	json_t		*root, *v;

	if ((root = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL || !json_is_object(root)) {
		json_decref(root);
		errbuf_set(err, errlen, "not a JSON object");
		return -1;
	}
	/* RFC 8414 3.3: another issuer's metadata must not be used. */
	v = json_object_get(root, "issuer");
	if (!json_is_string(v) || strcmp(json_string_value(v),
	    p->conf.issuer) != 0) {
		json_decref(root);
		errbuf_set(err, errlen, "its issuer is not the configured "
		    "one (RFC 8414 3.3)");
		return -1;
	}
	meta_take(p, root, "jwks_uri", p->conf.jwks_url, p->jwks_url,
	    sizeof(p->jwks_url));
	meta_take(p, root, "introspection_endpoint",
	    p->conf.introspection_url, p->introspection_url,
	    sizeof(p->introspection_url));
	meta_take(p, root, "token_endpoint", p->conf.token_url,
	    p->token_url, sizeof(p->token_url));
	json_decref(root);
	return 0;
}

static void
meta_done(const struct http_response *r, void *arg)
{
	struct provider	*p = arg;
	char		 err[256];

	p->meta_req = NULL;
	/* Not an OpenID provider: RFC 8414's well-known, from then on. */
	if (r->status == 404 && !p->meta_rfc8414) {
		p->meta_rfc8414 = 1;
		meta_fetch(p);
		if (p->meta_req != NULL)
			return;
	}
	if (r->status != 200) {
		http_failure(r, err, sizeof(err));
	} else if (meta_parse(p, r, err, sizeof(err)) == 0) {
		p->meta_ok = 1;
		/* the fetch first: the woken checks wait for it */
		jwks_fetch(p);
		wake(&p->meta_wait);
		return;
	}
	if (r->status == 404)
		p->meta_rfc8414 = 0;	/* neither: try both next time */
	refresh_failed(p, "metadata", err);
	/* The keys may still come from the jwks_uri known before. */
	if (p->meta_ok)
		jwks_fetch(p);
	else
		refresh_waiters_done(p, p->last_error);
	/* last: a woken check may end, and with it this provider */
	wake(&p->meta_wait);
}

static void
meta_fetch(struct provider *p)
{
	char	 url[CONF_URL_MAX + 64];

	if (p->meta_req != NULL)
		return;
	p->meta_fetched = time(NULL);
	if (meta_url(p, url, sizeof(url)) == -1 ||
	    (p->meta_req = http_request(p->http, url, NULL, 0, NULL,
	    meta_done, p)) == NULL) {
		log_warnx("checker %s: metadata: cannot make the request",
		    p->name);
		refresh_schedule(p, p->conf.jwks_refresh);
	}
}

/* ---- one check ---- */

static void
token_jwt(struct oauth_job *j)
{
	struct provider		*p = j->p;
	struct auth_ctx		*ctx = j->ctx;
	struct jwt_policy	 pol;
	struct jwt_claims	 cl;
	char			 err[256];
	int			 rv;

	if (!keys_usable(p)) {
		/* The first fetch, or one after a failure: wait, once. */
		if (!j->keys_waited && (p->jwks_req != NULL ||
		    time(NULL) - p->jwks_fetched >= p->conf.jwks_refresh)) {
			j->keys_waited = 1;
			await(&p->jwks_wait, j);
			jwks_fetch(p);
			return;
		}
		job_done(j, AUTH_TEMPFAIL, p->jwks == NULL ? "no JWKS" :
		    "keys too old", 1);
		return;
	}
	memset(&pol, 0, sizeof(pol));
	pol.algorithms = p->conf.algorithms;
	pol.typ_relaxed = p->conf.jwt_typ_relaxed;
	pol.issuer = p->conf.issuer;
	pol.audience = p->conf.audience;
	pol.scope = p->conf.scope;
	identity_rules(p, &pol.identity);
	pol.leeway = p->conf.leeway;
	rv = jwt_verify(ctx->password, ctx->pwlen, p->jwks, &pol, time(NULL),
	    &cl, err, sizeof(err));
	if (rv == JWT_UNKNOWN_KID && !j->keys_waited && (p->jwks_req != NULL ||
	    time(NULL) - p->jwks_fetched >= p->conf.jwks_refresh)) {
		/* Keys rotate: ask once more, but not at every token. */
		j->keys_waited = 1;
		await(&p->jwks_wait, j);
		jwks_fetch(p);
		return;
	}
	if (rv != JWT_OK) {
		/* a reason of its own is worth the audit line and a line here */
		if (cl.why != NULL)
			log_info("checker %s: session %016llx: %s", p->name,
			    (unsigned long long)ctx->session_id, err);
		else
			log_debug("checker %s: session %016llx: %s", p->name,
			    (unsigned long long)ctx->session_id, err);
		job_done(j, AUTH_FAIL, rv == JWT_UNKNOWN_KID ? "unknown key" :
		    cl.why != NULL ? cl.why : "invalid token", 0);
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

/*
 * Which way to ask, once the URLs are known: with discovery, a check
 * waits for the first metadata (once; a provider that does not answer
 * is a tempfail, as for any request).
 */
static void
job_route(struct oauth_job *j)
{
	struct provider	*p = j->p;
	struct auth_ctx	*ctx = j->ctx;

	if (p->conf.discovery && !p->meta_ok) {
		if (!j->meta_waited && (p->meta_req != NULL ||
		    time(NULL) - p->meta_fetched >= p->conf.jwks_refresh)) {
			j->meta_waited = 1;
			await(&p->meta_wait, j);
			meta_fetch(p);
			return;
		}
		job_done(j, AUTH_TEMPFAIL, "no provider metadata", 1);
		return;
	}
	if (ctx->mechanism & SASL_PASSWORD_MECHS) {
		if (p->token_url[0] == '\0') {
			log_warnx("checker %s: no token endpoint for %s",
			    p->name, mech_name(ctx->mechanism));
			job_done(j, AUTH_TEMPFAIL, "no token endpoint", 0);
		} else
			password_start(j);
	} else if (p->jwks_url[0] != '\0' &&
	    looks_like_jwt(ctx->password, ctx->pwlen))
		token_jwt(j);
	else if (p->introspection_url[0] != '\0' &&
	    p->conf.client_id[0] != '\0')
		token_introspect(j);
	else
		job_done(j, AUTH_FAIL, "not a JWT", 0);
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
	job_route(j);
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
	struct oauth_job	*j = ctx->job;

	(void)c;
	if (j == NULL)
		return;
	if (j->req != NULL)
		http_cancel(j->req);
	if (j->waiting != NULL)
		TAILQ_REMOVE(j->waiting, j, entry);
	ctx->job = NULL;
	free(j);
}

static void
oauth_stats(const struct checker *c, char *buf, size_t len)
{
	const struct provider	*p = (const struct provider *)c->priv;

	snprintf(buf, len, "circuit %s, %d failures in a row, %d signing "
	    "keys, %u failed fetches", p->open && time(NULL) < p->open_until ?
	    "open" : "closed", p->tempfails, jwks_count(p->jwks),
	    p->failures);
}

static int
oauth_health(const struct checker *c, int *breaker)
{
	const struct provider	*p = (const struct provider *)c->priv;

	*breaker = p->open && time(NULL) < p->open_until;
	/* too_old: its JWKS is past jwks-max-age and cannot be fetched */
	return !*breaker && !p->too_old;
}

static void
oauth_keys(const struct checker *c, void (*row)(const struct ctl_key *,
    void *), void *arg)
{
	const struct provider	*p = (const struct provider *)c->priv;
	const struct jwk	*k;
	struct ctl_key		 ck;

	for (int i = 0; (k = jwks_key(p->jwks, i)) != NULL; i++) {
		memset(&ck, 0, sizeof(ck));
		strlcpy(ck.checker, p->name, sizeof(ck.checker));
		strlcpy(ck.kid, k->has_kid ? k->kid : "", sizeof(ck.kid));
		strlcpy(ck.alg, jwa_alg_name(k->alg), sizeof(ck.alg));
		ck.fetched = p->jwks_good;
		ck.refresh = p->next_refresh;
		ck.expires = p->jwks_good + p->conf.jwks_max_age;
		row(&ck, arg);
	}
}

/* authctl oauth refresh: now, whatever the schedule says. */
static void
oauth_refresh(const struct checker *c, void (*done)(void *,
    const struct ctl_refreshed *), void *arg)
{
	struct provider		*p = (struct provider *)c->priv;
	struct refresh_waiter	*w;

	if (p->jwks_url[0] == '\0' && !p->conf.discovery) {
		/* introspection or passwords only: nothing to say */
		done(arg, NULL);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->done = done;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&p->waiters, w, entry);
	if (p->conf.discovery)
		meta_fetch(p);
	else
		jwks_fetch(p);
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
	strlcpy(p->jwks_url, p->conf.jwks_url, sizeof(p->jwks_url));
	strlcpy(p->introspection_url, p->conf.introspection_url,
	    sizeof(p->introspection_url));
	strlcpy(p->token_url, p->conf.token_url, sizeof(p->token_url));
	TAILQ_INIT(&p->jwks_wait);
	TAILQ_INIT(&p->meta_wait);
	TAILQ_INIT(&p->waiters);
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
	/* No loop (the unit tests): no schedule. */
	if (http_event_base() != NULL &&
	    (p->timer = evtimer_new(http_event_base(), refresh_event,
	    p)) == NULL)
		fatalx("evtimer_new");
	c->priv = &p->priv;
	/* Ready before the first token comes. */
	if (p->conf.discovery)
		meta_fetch(p);
	else if (p->jwks_url[0] != '\0')
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
	.health = oauth_health,
	.keys = oauth_keys,
	.refresh = oauth_refresh,
	.free = provider_free,
};
