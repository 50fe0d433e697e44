/*
 * checker_ldap.c -- users in a directory: OpenLDAP, 389 Directory
 * Server, Active Directory.
 *
 * One login: find the user's entry (a service bind or anonymous, then
 * a search for base/scope/filter with the login escaped per RFC 4515,
 * ldap_filter.c), refuse none or several entries, then check the
 * password one of two ways: bind as the entry's DN with it (the
 * directory decides; Active Directory's way), or read its password
 * attribute ("{SSHA}...", "{CRYPT}$6$...", "{ARGON2}...") and verify it
 * on authd's hash pool (passwd_verify_scheme()).  The entry also gives
 * the canonical name and the addresses the user may send as.
 *
 * The user's bind goes on a second connection of the thread's, so that
 * the first stays bound as the service: a login costs the directory a
 * search and a bind, as Dovecot's auth_bind does.  On one connection it
 * cost a service bind as well, before each search.
 *
 * Never on the loop.  Each checker has a bounded pool of threads, each
 * with its connection to the directory (two with password bind) that it
 * keeps open and reuses; a login is a job in the pool's queue.  Why threads and not libldap's
 * asynchronous calls on the loop: libldap's TLS handshake (ldaps://)
 * and StartTLS's ldap_install_tls() block even with
 * LDAP_OPT_CONNECT_ASYNC -- measured with OpenLDAP 2.5 against a
 * socket that accepts and never answers: ldap_sasl_bind() on ldaps://
 * and ldap_install_tls() each returned after the whole network
 * timeout (3.0 s), where the plain ldap:// bind returned at once --
 * and a hung directory must not stall the loop; on a thread, each
 * call is bounded by the login's deadline
 * (LDAP_OPT_NETWORK_TIMEOUT for connect and TLS, ldap_result()'s
 * timeout for every request), and what waits is one thread of this
 * checker, never the loop, the hash pool or another checker.  A job
 * still queued when its deadline passes is a tempfail at once.
 *
 * Failover: the URLs in order; one that failed waits out a back-off
 * (1 s doubling to 30 s) before it is tried again, unless none is left.
 * A connection that broke while kept open is replaced once within the
 * same login.
 *
 * An unknown user costs what a known one does: with the attribute
 * method, the dummy hash on the pool; with the bind method, a bind as a
 * DN that does not exist, which the directory refuses as it refuses a
 * wrong password.  An empty password never reaches a bind: RFC 4513
 * 5.1.2's unauthenticated bind would "succeed".
 */

#include <sys/queue.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <ldap.h>

#include "authd.h"
#include "chain.h"
#include "hashpool.h"
#include "ldap_filter.h"
#include "log.h"
#include "passwd.h"
#include "store.h"
#include "util.h"

#define LDAP_BACKOFF_MIN_MS	1000
#define LDAP_BACKOFF_MAX_MS	30000
#define LDAP_QUEUE_PER_THREAD	256	/* then tempfail at once */
#define LDAP_HASH_MAX		1024	/* a stored password's octets */
#define LDAP_DUMMY_RDN		"cn=portcullis-no-such-user"

struct lserver {
	char			 url[CONF_HOST_MAX];
	unsigned long		 ok, fail, tempfail, reconnects;
	unsigned long		 down;		/* could not be used */
	struct timespec		 retry_at;	/* monotonic; 0: try it */
	int			 backoff;	/* milliseconds */
};

struct lpool;

struct ljob {
	TAILQ_ENTRY(ljob)	 entry;
	struct lpool		*pool;
	struct auth_ctx		*ctx;
	struct timespec		 deadline;
	int			 server;	/* that answered; -1 none */
	char			*hash;		/* attribute method */
	int			 unknown;	/* attribute method */
	char			 dn[CONF_LDAP_DN_MAX];
	struct auth_found	 found;		/* the entry's addresses */
};
TAILQ_HEAD(ljobq, ljob);

struct lpool {
	struct checker_priv	 priv;		/* first: chain.c's view */
	char			 name[CONF_NAME_MAX];
	struct ldap_conf	 conf;		/* with the bind password */
	struct lserver		 servers[CONF_LDAP_URLS_MAX];
	pthread_mutex_t		 lock;
	pthread_cond_t		 more;
	struct ljobq		 todo, done;
	int			 queued;
	int			 threads;	/* alive */
	int			 stopping;
	int			 wake[2];
	struct event		*wake_ev;
};

/* A thread's connection. */
struct lconn {
	LDAP			*ld;
	int			 server;
	int			 used;		/* served a login */
};

static void	 lpool_free(struct checker_priv *);

/* ---- time ---- */

static long
ms_left(const struct timespec *deadline)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(deadline->tv_sec - now.tv_sec) * 1000 +
	    (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static struct timeval
tv_of(long ms)
{
	struct timeval	 tv;

	if (ms < 1)
		ms = 1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* ---- the servers' state, under the pool's lock ---- */

static int
server_usable(struct lpool *p, int i)
{
	struct timespec	 now;
	int		 ok;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->lock);
	ok = now.tv_sec > p->servers[i].retry_at.tv_sec ||
	    (now.tv_sec == p->servers[i].retry_at.tv_sec &&
	    now.tv_nsec >= p->servers[i].retry_at.tv_nsec);
	pthread_mutex_unlock(&p->lock);
	return ok;
}

static void
server_down(struct lpool *p, int i, const char *why)
{
	struct lserver	*s = &p->servers[i];
	struct timespec	 now;
	int		 b;

	clock_gettime(CLOCK_MONOTONIC, &now);
	pthread_mutex_lock(&p->lock);
	b = s->backoff == 0 ? LDAP_BACKOFF_MIN_MS : s->backoff * 2;
	if (b > LDAP_BACKOFF_MAX_MS)
		b = LDAP_BACKOFF_MAX_MS;
	s->backoff = b;
	s->down++;
	s->retry_at.tv_sec = now.tv_sec + b / 1000;
	s->retry_at.tv_nsec = now.tv_nsec;
	pthread_mutex_unlock(&p->lock);
	log_warnx("checker %s: %s: %s; not asked again for %d s", p->name,
	    s->url, why, b / 1000);
}

static void
server_up(struct lpool *p, int i, int reconnect)
{
	pthread_mutex_lock(&p->lock);
	p->servers[i].backoff = 0;
	p->servers[i].retry_at.tv_sec = 0;
	p->servers[i].retry_at.tv_nsec = 0;
	if (reconnect)
		p->servers[i].reconnects++;
	pthread_mutex_unlock(&p->lock);
}

/* ---- one connection ---- */

static void
conn_drop(struct lconn *c)
{
	if (c->ld != NULL)
		(void)ldap_unbind_ext(c->ld, NULL, NULL);
	c->ld = NULL;
}

/* Wait for msgid's answer until the deadline: the message, or NULL. */
static LDAPMessage *
await(LDAP *ld, int msgid, const struct timespec *deadline, int *timedout)
{
	LDAPMessage	*res = NULL;
	struct timeval	 tv = tv_of(ms_left(deadline));
	int		 rc;

	*timedout = 0;
	rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, &res);
	if (rc == 0) {
		*timedout = 1;
		(void)ldap_abandon_ext(ld, msgid, NULL, NULL);
	}
	if (rc <= 0) {
		if (res != NULL)
			ldap_msgfree(res);
		return NULL;
	}
	return res;
}

/*
 * A simple bind (RFC 4513 5.1), bounded by the deadline: the LDAP
 * result code, or -1 when the connection is no longer usable (a
 * timeout, a broken connection).
 */
static int
simple_bind(LDAP *ld, const char *dn, const char *pw, size_t pwlen,
    const struct timespec *deadline)
{
	struct berval	 cred;
	LDAPMessage	*res;
	int		 msgid, rc, err = LDAP_OTHER, timedout;

	cred.bv_val = (char *)(uintptr_t)pw;
	cred.bv_len = pwlen;
	if (ldap_sasl_bind(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
	    &msgid) != LDAP_SUCCESS)
		return -1;
	if ((res = await(ld, msgid, deadline, &timedout)) == NULL)
		return -1;
	rc = ldap_parse_result(ld, res, &err, NULL, NULL, NULL, NULL, 1);
	return rc == LDAP_SUCCESS ? err : -1;
}

static int
starttls(LDAP *ld, const struct timespec *deadline)
{
	LDAPMessage	*res;
	int		 msgid, err = LDAP_OTHER, timedout;

	if (ldap_start_tls(ld, NULL, NULL, &msgid) != LDAP_SUCCESS)
		return -1;
	if ((res = await(ld, msgid, deadline, &timedout)) == NULL)
		return -1;
	if (ldap_parse_result(ld, res, &err, NULL, NULL, NULL, NULL, 1) !=
	    LDAP_SUCCESS || err != LDAP_SUCCESS)
		return -1;
	return ldap_install_tls(ld) == LDAP_SUCCESS ? 0 : -1;
}

/* The service's identity (or anonymous) on c: 0, or -1 with why. */
static int
service_bind(struct lpool *p, struct lconn *c,
    const struct timespec *deadline, const char **why)
{
	const struct ldap_conf	*l = &p->conf;
	int			 rc;

	rc = simple_bind(c->ld, l->bind_dn, l->bind_password,
	    strlen(l->bind_password), deadline);
	if (rc == LDAP_SUCCESS)
		return 0;
	*why = rc == -1 ? "no answer to the service bind" :
	    rc == LDAP_INVALID_CREDENTIALS ? "the service bind was refused" :
	    "the service bind failed";
	return -1;
}

static int
conn_open_one(struct lpool *p, struct lconn *c, int i,
    const struct timespec *deadline, const char **why)
{
	const struct ldap_conf	*l = &p->conf;
	struct timeval		 tv = tv_of(ms_left(deadline));
	int			 v3 = LDAP_VERSION3, hard = LDAP_OPT_X_TLS_HARD;
	int			 zero = 0;

	*why = "cannot set up the connection";
	if (ldap_initialize(&c->ld, p->servers[i].url) != LDAP_SUCCESS) {
		c->ld = NULL;
		return -1;
	}
	if (ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &v3) != 0 ||
	    ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF) != 0 ||
	    ldap_set_option(c->ld, LDAP_OPT_NETWORK_TIMEOUT, &tv) != 0 ||
	    ldap_set_option(c->ld, LDAP_OPT_TIMEOUT, &tv) != 0 ||
	    ldap_set_option(c->ld, LDAP_OPT_RESTART, LDAP_OPT_ON) != 0)
		goto fail;
	/* TLS: this connection's own context, our CA, no exceptions. */
	if ((l->starttls || strncasecmp(p->servers[i].url, "ldaps:", 6) == 0) &&
	    (ldap_set_option(c->ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &hard) != 0 ||
	    (l->ca_file[0] != '\0' && ldap_set_option(c->ld,
	    LDAP_OPT_X_TLS_CACERTFILE, l->ca_file) != 0) ||
	    ldap_set_option(c->ld, LDAP_OPT_X_TLS_NEWCTX, &zero) != 0))
		goto fail;
	if (l->starttls && starttls(c->ld, deadline) == -1) {
		*why = "StartTLS failed (unreachable, or a certificate the CA "
		    "does not vouch for)";
		goto fail;
	}
	if (service_bind(p, c, deadline, why) == -1)
		goto fail;
	c->server = i;
	return 0;
fail:
	conn_drop(c);
	return -1;
}

/* A connection to the first usable URL: 0, or -1 (all down). */
static int
conn_ready(struct lpool *p, struct lconn *c, const struct timespec *deadline,
    const char **why)
{
	int	 i, pass, reconnect = c->used;

	if (c->ld != NULL)
		return 0;
	/* First the URLs not in their back-off; then, if none, all. */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < p->conf.nurls; i++) {
			if (ms_left(deadline) <= 0) {
				*why = "timeout";
				return -1;
			}
			if (pass == 0 ? !server_usable(p, i) :
			    server_usable(p, i))
				continue;
			if (conn_open_one(p, c, i, deadline, why) == 0) {
				server_up(p, i, reconnect);
				return 0;
			}
			server_down(p, i, *why);
		}
	*why = "no directory answered";
	return -1;
}

/* ---- one login, on a pool thread ---- */

static int
scope_of(enum ldap_scope_conf s)
{
	return s == LDAP_SCOPE_CONF_BASE ? LDAP_SCOPE_BASE :
	    s == LDAP_SCOPE_CONF_ONE ? LDAP_SCOPE_ONELEVEL : LDAP_SCOPE_SUBTREE;
}

/* The first value of attr in e into buf: 1, or 0 when it has none. */
static int
first_value(LDAP *ld, LDAPMessage *e, const char *attr, char *buf,
    size_t len)
{
	struct berval	**v;
	int		 ok = 0;

	if (attr[0] == '\0' || (v = ldap_get_values_len(ld, e, attr)) == NULL)
		return 0;
	if (v[0] != NULL && v[0]->bv_len < len &&
	    memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL) {
		memcpy(buf, v[0]->bv_val, v[0]->bv_len);
		buf[v[0]->bv_len] = '\0';
		ok = 1;
	}
	ldap_value_free_len(v);
	return ok;
}

/* The entry's sending addresses and canonical name into ctx. */
static void
entry_identity(struct lpool *p, LDAP *ld, LDAPMessage *e,
    struct auth_ctx *ctx, struct auth_found *found)
{
	const struct ldap_conf	*l = &p->conf;
	struct berval		**v;
	char			 buf[CONF_AUTH_NAME_MAX], addr[STORE_ADDR_MAX + 1];
	char			 err[64];
	int			 i, j;

	strlcpy(ctx->canonical, ctx->user, sizeof(ctx->canonical));
	if (first_value(ld, e, l->user_attr, buf, sizeof(buf)) &&
	    store_name_check(buf, ctx->canonical, sizeof(ctx->canonical),
	    err, sizeof(err)) == -1)
		strlcpy(ctx->canonical, ctx->user, sizeof(ctx->canonical));
	for (i = 0; i < l->nmail_attrs; i++) {
		if ((v = ldap_get_values_len(ld, e, l->mail_attrs[i])) == NULL)
			continue;
		for (j = 0; v[j] != NULL; j++) {
			if (v[j]->bv_len >= sizeof(buf) ||
			    memchr(v[j]->bv_val, '\0', v[j]->bv_len) != NULL)
				continue;
			memcpy(buf, v[j]->bv_val, v[j]->bv_len);
			buf[v[j]->bv_len] = '\0';
			if (store_addr_normalize(buf, addr, sizeof(addr), err,
			    sizeof(err)) == 0)
				(void)auth_found_addr(found, addr);
		}
		ldap_value_free_len(v);
	}
}

/* disabled-attribute: set, and not FALSE or 0. */
static int
attr_disabled(struct lpool *p, LDAP *ld, LDAPMessage *e)
{
	struct berval	**v;
	char		 buf[64];

	if (p->conf.disabled_attr[0] == '\0')
		return 0;
	if ((v = ldap_get_values_len(ld, e, p->conf.disabled_attr)) == NULL)
		return 0;
	ldap_value_free_len(v);
	if (!first_value(ld, e, p->conf.disabled_attr, buf, sizeof(buf)))
		return 1;
	return strcasecmp(buf, "FALSE") != 0 && strcmp(buf, "0") != 0;
}

/*
 * disabled-filter: the entry itself, searched with it.  1 disabled,
 * 0 not, -1 no answer.
 */
static int
filter_disabled(struct lpool *p, struct lconn *c, const char *dn,
    const struct timespec *deadline)
{
	char		*attrs[] = { LDAP_NO_ATTRS, NULL };
	LDAPMessage	*res;
	int		 msgid, n, timedout;

	if (p->conf.disabled_filter[0] == '\0')
		return 0;
	if (ldap_search_ext(c->ld, dn, LDAP_SCOPE_BASE,
	    p->conf.disabled_filter, attrs, 0, NULL, NULL, NULL, 1,
	    &msgid) != LDAP_SUCCESS)
		return -1;
	if ((res = await(c->ld, msgid, deadline, &timedout)) == NULL)
		return -1;
	n = ldap_count_entries(c->ld, res);
	ldap_msgfree(res);
	return n > 0;
}

/*
 * The search: 1 one entry (*resp holds it), 0 none, 2 several, -1 the
 * connection failed, -2 the directory refused the search.
 */
static int
search(struct lpool *p, struct lconn *c, const char *filter,
    const struct timespec *deadline, LDAPMessage **resp)
{
	const struct ldap_conf	*l = &p->conf;
	char			*attrs[CONF_LDAP_MAIL_ATTRS_MAX + 4];
	LDAPMessage		*res;
	int			 i, n = 0, msgid, err = LDAP_OTHER, timedout;

	if (l->user_attr[0] != '\0')
		attrs[n++] = (char *)(uintptr_t)l->user_attr;
	for (i = 0; i < l->nmail_attrs; i++)
		attrs[n++] = (char *)(uintptr_t)l->mail_attrs[i];
	if (l->method == LDAP_METHOD_ATTRIBUTE)
		attrs[n++] = (char *)(uintptr_t)l->password_attr;
	if (l->disabled_attr[0] != '\0')
		attrs[n++] = (char *)(uintptr_t)l->disabled_attr;
	if (n == 0)
		attrs[n++] = LDAP_NO_ATTRS;
	attrs[n] = NULL;

	*resp = NULL;
	/* Two entries are enough to refuse: sizelimit 2. */
	if (ldap_search_ext(c->ld, l->base, scope_of(l->scope), filter, attrs,
	    0, NULL, NULL, NULL, 2, &msgid) != LDAP_SUCCESS)
		return -1;
	if ((res = await(c->ld, msgid, deadline, &timedout)) == NULL)
		return -1;
	n = ldap_count_entries(c->ld, res);
	if (ldap_parse_result(c->ld, res, &err, NULL, NULL, NULL, NULL, 0) !=
	    LDAP_SUCCESS) {
		ldap_msgfree(res);
		return -1;
	}
	if (err == LDAP_SIZELIMIT_EXCEEDED || n > 1) {
		ldap_msgfree(res);
		return 2;
	}
	if (err != LDAP_SUCCESS && err != LDAP_NO_SUCH_OBJECT) {
		ldap_msgfree(res);
		return -2;
	}
	if (n == 0) {
		ldap_msgfree(res);
		return 0;
	}
	*resp = res;
	return 1;
}

/*
 * A bind as dn with the login's password on bc, the thread's bind
 * connection: the LDAP result code, or -1 when no connection answered.
 * A kept connection the directory closed meanwhile is replaced once.
 */
static int
bind_as(struct lpool *p, struct lconn *bc, struct ljob *j, const char *dn)
{
	const char	*why;
	int		 fresh, rc;

	for (;;) {
		fresh = bc->ld == NULL;
		if (conn_ready(p, bc, &j->deadline, &why) == -1)
			return -1;
		rc = simple_bind(bc->ld, dn, j->ctx->password, j->ctx->pwlen,
		    &j->deadline);
		bc->used = 1;
		if (rc != -1)
			return rc;
		conn_drop(bc);
		if (fresh || ms_left(&j->deadline) <= 0)
			return -1;
	}
}

/* The user's own bind, and the directory's word on it. */
static void
user_bind(struct lpool *p, struct lconn *bc, struct ljob *j, const char *dn)
{
	struct auth_ctx	*ctx = j->ctx;
	int		 rc;

	if (ctx->pwlen == 0) {
		ctx->result = AUTH_FAIL;
		ctx->why = "empty password";
		return;
	}
	rc = bind_as(p, bc, j, dn);
	if (rc == LDAP_SUCCESS) {
		ctx->result = AUTH_OK;
		return;
	}
	if (rc == LDAP_INVALID_CREDENTIALS) {
		ctx->result = AUTH_FAIL;
		ctx->found.refused = 1;
		ctx->why = "wrong password";
		return;
	}
	ctx->result = AUTH_TEMPFAIL;
	ctx->why = rc == -1 ? "no answer to the user's bind" :
	    "the directory could not check the password";
}

/* No such user: cost what a wrong password would. */
static void
unknown_user(struct lpool *p, struct lconn *bc, struct ljob *j)
{
	char	 dn[CONF_LDAP_DN_MAX + 64];

	j->ctx->result = AUTH_FAIL;
	j->ctx->why = "unknown user";
	if (p->conf.method == LDAP_METHOD_ATTRIBUTE) {
		j->unknown = 1;		/* the dummy hash, on the pool */
		return;
	}
	if (j->ctx->pwlen == 0)
		return;
	(void)snprintf(dn, sizeof(dn), "%s,%s", LDAP_DUMMY_RDN, p->conf.base);
	(void)bind_as(p, bc, j, dn);
	j->ctx->why = "unknown user";
}

/* The entry found: its identity, whether it may log in, its password. */
static void
entry_check(struct lpool *p, struct lconn *c, struct lconn *bc,
    struct ljob *j, LDAPMessage *res)
{
	struct auth_ctx	*ctx = j->ctx;
	LDAPMessage	*e = ldap_first_entry(c->ld, res);
	char		*dn;
	char		 hash[LDAP_HASH_MAX];
	int		 d;

	if (e == NULL || (dn = ldap_get_dn(c->ld, e)) == NULL) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "an entry without a DN";
		return;
	}
	strlcpy(j->dn, dn, sizeof(j->dn));
	ldap_memfree(dn);
	entry_identity(p, c->ld, e, ctx, &j->found);
	if (attr_disabled(p, c->ld, e) ||
	    (d = filter_disabled(p, c, j->dn, &j->deadline)) == 1) {
		ctx->result = AUTH_FAIL;
		ctx->why = "disabled";
		return;
	}
	if (d == -1) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "no answer to the disabled-filter search";
		conn_drop(c);
		return;
	}
	if (p->conf.method == LDAP_METHOD_BIND) {
		user_bind(p, bc, j, j->dn);
		return;
	}
	if (!first_value(c->ld, e, p->conf.password_attr, hash,
	    sizeof(hash))) {
		j->unknown = 1;
		ctx->result = AUTH_FAIL;
		ctx->why = "no password in the directory";
		return;
	}
	if ((j->hash = strdup(hash)) == NULL) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "out of memory";
	}
	explicit_bzero(hash, sizeof(hash));
}

/*
 * One try with c for the search and bc for the user's bind: 0 decided,
 * -1 the search connection failed (c dropped).
 */
static int
try_once(struct lpool *p, struct lconn *c, struct lconn *bc, struct ljob *j,
    const char *filter)
{
	struct auth_ctx	*ctx = j->ctx;
	LDAPMessage	*res = NULL;
	const char	*why = NULL;
	int		 r;

	if (conn_ready(p, c, &j->deadline, &why) == -1) {
		ctx->why = why;
		return -1;
	}
	j->server = c->server;
	switch ((r = search(p, c, filter, &j->deadline, &res))) {
	case -1:
		ctx->why = "no answer to the search";
		conn_drop(c);
		return -1;
	case -2:
		ctx->why = "the directory refused the search";
		break;
	case 0:
		unknown_user(p, bc, j);
		break;
	case 2:
		ctx->result = AUTH_FAIL;
		ctx->why = "several entries for this login";
		break;
	default:
		entry_check(p, c, bc, j, res);
		ldap_msgfree(res);
	}
	c->used = 1;
	return 0;
}

static void
ldap_login(struct lpool *p, struct lconn *c, struct lconn *bc, struct ljob *j)
{
	struct auth_ctx	*ctx = j->ctx;
	char		 filter[CONF_LDAP_FILTER_MAX * 2];
	char		 err[128];
	int		 fresh;

	ctx->result = AUTH_TEMPFAIL;
	if (ldap_filter_build(p->conf.filter, ctx->user, strlen(ctx->user),
	    filter, sizeof(filter), err, sizeof(err)) == -1) {
		/* Too long to be anybody in the directory. */
		j->unknown = p->conf.method == LDAP_METHOD_ATTRIBUTE;
		ctx->result = AUTH_FAIL;
		ctx->why = "login too long for the filter";
		return;
	}
	fresh = c->ld == NULL;
	if (try_once(p, c, bc, j, filter) == 0)
		return;
	/* A kept connection the directory closed meanwhile: once more. */
	if (!fresh && ms_left(&j->deadline) > 0)
		(void)try_once(p, c, bc, j, filter);
	if (ms_left(&j->deadline) <= 0 && ctx->result == AUTH_TEMPFAIL)
		ctx->why = "timeout";
}

/* ---- the pool ---- */

static void *
lpool_thread(void *arg)
{
	struct lpool	*p = arg;
	struct lconn	 c, bc;		/* the search's, the user's bind's */
	struct ljob	*j;
	char		 b = 0;
	int		 first, last;

	memset(&c, 0, sizeof(c));
	memset(&bc, 0, sizeof(bc));
	c.server = bc.server = -1;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->stopping && TAILQ_EMPTY(&p->todo))
			pthread_cond_wait(&p->more, &p->lock);
		if (p->stopping) {
			pthread_mutex_unlock(&p->lock);
			break;
		}
		j = TAILQ_FIRST(&p->todo);
		TAILQ_REMOVE(&p->todo, j, entry);
		p->queued--;
		pthread_mutex_unlock(&p->lock);

		if (ms_left(&j->deadline) <= 0) {
			j->ctx->result = AUTH_TEMPFAIL;
			j->ctx->why = "timeout, waiting for a connection";
		} else
			ldap_login(p, &c, &bc, j);

		pthread_mutex_lock(&p->lock);
		first = TAILQ_EMPTY(&p->done);
		TAILQ_INSERT_TAIL(&p->done, j, entry);
		pthread_mutex_unlock(&p->lock);
		while (first && write(p->wake[1], &b, 1) == -1 &&
		    errno == EINTR)
			;
	}
	conn_drop(&c);
	conn_drop(&bc);
	pthread_mutex_lock(&p->lock);
	last = --p->threads == 0;
	pthread_mutex_unlock(&p->lock);
	if (last) {
		close(p->wake[1]);
		pthread_mutex_destroy(&p->lock);
		pthread_cond_destroy(&p->more);
		freezero(p, sizeof(*p));
	}
	return NULL;
}

static void
job_count(struct ljob *j)
{
	struct lpool	*p = j->pool;
	struct lserver	*s;

	if (j->server < 0)
		return;
	s = &p->servers[j->server];
	pthread_mutex_lock(&p->lock);
	if (j->ctx->result == AUTH_OK)
		s->ok++;
	else if (j->ctx->result == AUTH_FAIL)
		s->fail++;
	else
		s->tempfail++;
	pthread_mutex_unlock(&p->lock);
}

static void
job_finish(struct ljob *j)
{
	struct auth_ctx	*ctx = j->ctx;
	char		 u[CONF_AUTH_NAME_MAX * 4], dn[CONF_LDAP_DN_MAX * 4];

	job_count(j);
	/*
	 * The directory's answer replaces what a stale cache entry left;
	 * a tempfail leaves it, for the stale answer.
	 */
	if (ctx->result != AUTH_TEMPFAIL) {
		memset(ctx->found.addrs, 0, sizeof(ctx->found.addrs));
		ctx->found.addrs_len = 0;
	}
	if (ctx->result == AUTH_OK) {
		memcpy(ctx->found.addrs, j->found.addrs, j->found.addrs_len);
		ctx->found.addrs_len = j->found.addrs_len;
	}
	/* authctl test: which entry the login was (no DN in the verdict). */
	if (ctx->wc != NULL && ctx->wc->control)
		log_info("checker %s: user=\"%s\" dn=\"%s\" server=%s", j->pool->name,
		    escape_text(ctx->user, strlen(ctx->user), u, sizeof(u)),
		    escape_text(j->dn, strlen(j->dn), dn, sizeof(dn)),
		    j->server >= 0 ? j->pool->servers[j->server].url : "none");
	if (j->hash != NULL)
		freezero(j->hash, strlen(j->hash));
	freezero(j, sizeof(*j));
	chain_checker_done(ctx);
}

/* On a hash pool thread: the attribute method's verification. */
static void
hash_work(void *arg)
{
	struct ljob	*j = arg;
	struct auth_ctx	*ctx = j->ctx;

	if (j->unknown) {
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
		return;		/* result and why are set */
	}
	switch (passwd_verify_scheme(j->hash, ctx->password, ctx->pwlen)) {
	case 1:
		ctx->result = AUTH_OK;
		break;
	case 0:
		ctx->result = AUTH_FAIL;
		ctx->found.refused = 1;
		ctx->why = "wrong password";
		break;
	default:
		ctx->result = AUTH_FAIL;
		ctx->why = "unusable hash in the directory";
	}
}

static void
hash_done(void *arg)
{
	job_finish(arg);
}

static void
lpool_wake(evutil_socket_t fd, short ev, void *arg)
{
	struct lpool	*p = arg;
	struct ljobq	 done = TAILQ_HEAD_INITIALIZER(done);
	struct ljob	*j;
	char		 buf[64];

	(void)ev;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&p->lock);
	TAILQ_CONCAT(&done, &p->done, entry);
	pthread_mutex_unlock(&p->lock);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		if (j->hash != NULL || j->unknown)
			hashpool_submit(hash_work, hash_done, j);
		else
			job_finish(j);
	}
}

static void
ldap_start(struct checker *c, struct auth_ctx *ctx)
{
	struct lpool	*p = (struct lpool *)c->priv;
	struct ljob	*j;
	int		 full;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->pool = p;
	j->ctx = ctx;
	j->server = -1;
	clock_gettime(CLOCK_MONOTONIC, &j->deadline);
	j->deadline.tv_sec += p->conf.timeout / 1000;
	j->deadline.tv_nsec += (long)(p->conf.timeout % 1000) * 1000000;
	if (j->deadline.tv_nsec >= 1000000000) {
		j->deadline.tv_sec++;
		j->deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	full = p->queued >= p->conf.connections * LDAP_QUEUE_PER_THREAD;
	if (!full) {
		TAILQ_INSERT_TAIL(&p->todo, j, entry);
		p->queued++;
		pthread_cond_signal(&p->more);
	}
	pthread_mutex_unlock(&p->lock);
	if (full) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "too many logins waiting for the directory";
		freezero(j, sizeof(*j));
		chain_checker_done(ctx);
	}
}

static int
ldap_init(struct checker *c, struct portcullis_conf *conf)
{
	struct lpool	*p;
	pthread_t	 t;
	int		 i;

	(void)conf;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	p->priv.refs = 1;
	strlcpy(p->name, c->conf->name, sizeof(p->name));
	memcpy(&p->conf, &c->conf->ldap, sizeof(p->conf));
	for (i = 0; i < p->conf.nurls; i++)
		strlcpy(p->servers[i].url, p->conf.urls[i],
		    sizeof(p->servers[i].url));
	TAILQ_INIT(&p->todo);
	TAILQ_INIT(&p->done);
	if (pthread_mutex_init(&p->lock, NULL) != 0 ||
	    pthread_cond_init(&p->more, NULL) != 0)
		fatalx("checker %s: pthread", p->name);
	if (pipe2(p->wake, O_NONBLOCK | O_CLOEXEC) == -1)
		fatal("pipe2");
	if ((p->wake_ev = event_new(authd->base, p->wake[0],
	    EV_READ | EV_PERSIST, lpool_wake, p)) == NULL ||
	    event_add(p->wake_ev, NULL) == -1)
		fatalx("checker %s: event", p->name);
	for (i = 0; i < p->conf.connections; i++) {
		if ((errno = pthread_create(&t, NULL, lpool_thread, p)) != 0)
			fatal("checker %s: pthread_create", p->name);
		pthread_detach(t);
		p->threads++;
	}
	c->priv = &p->priv;
	return 0;
}

/* Unreferenced: no job in flight; the last thread to go frees it. */
static void
lpool_free(struct checker_priv *priv)
{
	struct lpool	*p = (struct lpool *)priv;

	event_free(p->wake_ev);
	close(p->wake[0]);
	pthread_mutex_lock(&p->lock);
	p->stopping = 1;
	pthread_cond_broadcast(&p->more);
	pthread_mutex_unlock(&p->lock);
}

static void
ldap_stats(const struct checker *c, char *buf, size_t len)
{
	struct lpool	*p = (struct lpool *)c->priv;
	size_t		 o = 0;
	int		 i, n;

	buf[0] = '\0';
	pthread_mutex_lock(&p->lock);
	for (i = 0; i < p->conf.nurls && o < len; i++) {
		n = snprintf(buf + o, len - o, "%s%s ok=%lu fail=%lu "
		    "tempfail=%lu reconnects=%lu down=%lu", i > 0 ? "; " : "",
		    p->servers[i].url, p->servers[i].ok, p->servers[i].fail,
		    p->servers[i].tempfail, p->servers[i].reconnects,
		    p->servers[i].down);
		if (n < 0)
			break;
		o += (size_t)n;
	}
	pthread_mutex_unlock(&p->lock);
}

const struct checker_ops checker_ldap_ops = {
	.name = "ldap",
	.kinds = CRED_PASSWORD,
	.cacheable = 1,		/* a remote directory: the cache may answer */
	.init = ldap_init,
	.start = ldap_start,
	.stats = ldap_stats,
	.free = lpool_free,
};
