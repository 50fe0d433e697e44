/*
 * checker_cache.c -- what the remote checkers (oauth, ldap: those whose
 * ops say cacheable) said, remembered in LMDB.
 *
 * The idea portcullis started from: once the identity provider has
 * said yes, the next login should neither wait for it nor depend on
 * it.  The cache is a checker like the others, so the configuration
 * says where it stands in the chain (before the remote checkers).  It
 * holds the verdicts of the cacheable checkers (ops->cacheable),
 * learnt through its observe hook; its lookup leaves hints in the
 * attempt (hints.skip, hints.fallback) that the chain acts on.
 *
 * A password is never stored, not even hashed the usual way: an entry
 * holds HMAC-SHA-256(key, checker NUL user NUL password), with a key
 * in its own file that only authd reads.  Whoever copies the database
 * alone cannot test guesses against it.  A token entry holds the
 * token's SHA-256 (in its key), whom it proved and until when; it
 * never outlives the token's own expiry.
 *
 * A hit answers ok with no HTTP request.  A miss says fail, and the
 * chain goes on to the provider.  Two more answers:
 * - a password the provider refused a moment ago (negative-ttl) keeps
 *   that provider out of this attempt, so that a client retrying a
 *   wrong password does not hammer it;
 * - an entry expired less than stale-if-error ago is noted in the
 *   attempt: if its provider then tempfails, the chain answers ok from
 *   it, and the audit line says stale=yes.
 *
 * Lookups run on the hash pool (LMDB reads, one HMAC); writes too,
 * since a commit waits for the disk.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "chain.h"
#include "hashpool.h"
#include "log.h"
#include "store.h"

#define CACHE_KEY_LEN		32
#define CACHE_PURGE_EVERY	600	/* seconds between purges */

struct cache {
	struct checker_priv	 priv;		/* first: chain.c's view */
	char			 name[CONF_NAME_MAX];
	struct cache_conf	 conf;
	struct store		*st;
	uint8_t			 key[CACHE_KEY_LEN];
	int			 usable;
	int			 nremote;
	struct {			/* the cacheable checkers */
		char		 name[CONF_NAME_MAX];
		int		 index;
		uint32_t	 mechanisms;
	}			 remote[CONF_CHECKERS_MAX];
	time_t			 purged;
};

struct cache_write {
	struct cache		*cache;
	struct store_cache_entry e;
	int			 purge;
	struct auth_ctx		*ctx;		/* waits for the write */
	void			(*then)(struct auth_ctx *);
};

static void
cache_free(struct checker_priv *priv)
{
	struct cache	*c = (struct cache *)priv;

	freezero(c, sizeof(*c));
}

/*
 * The key: made on the first start, 0600, owned by authd's user.  A
 * key anybody else could read or replace would make the cache no
 * better than plain hashes, so such a file disables the cache.
 */
static int
key_load(struct cache *c)
{
	const char	*path = c->conf.key_file;
	struct stat	 st;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 &&
	    errno == ENOENT) {
		if (RAND_bytes(c->key, sizeof(c->key)) != 1) {
			log_warnx("cache %s: no random bytes", c->name);
			return -1;
		}
		if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600)) == -1) {
			log_warn("cache %s: %s", c->name, path);
			return -1;
		}
		if (write(fd, c->key, sizeof(c->key)) != sizeof(c->key) ||
		    fsync(fd) == -1) {
			log_warn("cache %s: %s", c->name, path);
			close(fd);
			(void)unlink(path);
			return -1;
		}
		close(fd);
		log_info("cache %s: new key in %s", c->name, path);
		return 0;
	}
	if (fd == -1) {
		log_warn("cache %s: %s", c->name, path);
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		log_warnx("cache %s: %s must be a file of mode 0600 owned by "
		    "uid %d", c->name, path, (int)geteuid());
		close(fd);
		return -1;
	}
	n = read(fd, c->key, sizeof(c->key));
	close(fd);
	if (n != (ssize_t)sizeof(c->key)) {
		log_warnx("cache %s: %s: not a %zu-octet key", c->name, path,
		    sizeof(c->key));
		explicit_bzero(c->key, sizeof(c->key));
		return -1;
	}
	return 0;
}

/* HMAC-SHA-256(key, checker NUL user NUL password) */
static int
verifier(const struct cache *c, const char *checker, const char *user,
    const char *pw, size_t pwlen, uint8_t out[STORE_CACHE_HASH_LEN])
{
	size_t		 cl = strlen(checker) + 1, ul = strlen(user) + 1;
	size_t		 len = cl + ul + pwlen;
	unsigned int	 outlen = 0;
	uint8_t		*buf;

	if ((buf = malloc(len)) == NULL)
		return -1;
	memcpy(buf, checker, cl);
	memcpy(buf + cl, user, ul);
	memcpy(buf + cl + ul, pw, pwlen);
	if (HMAC(EVP_sha256(), c->key, sizeof(c->key), buf, len, out,
	    &outlen) == NULL || outlen != STORE_CACHE_HASH_LEN)
		outlen = 0;
	freezero(buf, len);
	return outlen == 0 ? -1 : 0;
}

static int
token_hash(const char *tok, size_t len, uint8_t out[STORE_CACHE_HASH_LEN])
{
	unsigned int	 outlen = 0;

	if (EVP_Digest(tok, len, out, &outlen, EVP_sha256(), NULL) != 1 ||
	    outlen != STORE_CACHE_HASH_LEN)
		return -1;
	return 0;
}

/* An entry's sending addresses into findings. */
static void
addrs_restore(const struct store_cache_entry *e, struct auth_found *f)
{
	for (int i = 0; i < e->naddrs; i++)
		(void)auth_found_addr(f, e->addrs[i]);
}

/* The addresses a checker found, into the entry (a password ok). */
static void
addrs_keep(const struct auth_found *f, struct store_cache_entry *e)
{
	const char	*p;

	for (p = f->addrs; p < f->addrs + f->addrs_len &&
	    e->naddrs < STORE_ADDRS_MAX; p += strlen(p) + 1)
		if (strlen(p) <= STORE_ADDR_MAX)
			strlcpy(e->addrs[e->naddrs++], p, sizeof(e->addrs[0]));
}

/*
 * An entry expired less than stale-if-error ago: if its checker cannot
 * be reached in this attempt, the chain answers from it, with the
 * addresses it had (kept aside in the hints: a checker that does
 * decide gives its own, or none).
 */
static void
stale_note(const struct cache *c, int i, struct auth_ctx *ctx,
    const struct store_cache_entry *e, const char *canonical)
{
	struct auth_hints	*h = &ctx->hints;

	h->fallback |= 1U << c->remote[i].index;
	if (h->fallback_user[0] != '\0')
		return;
	addrs_restore(e, &h->fallback_found);
	strlcpy(h->fallback_user, canonical, sizeof(h->fallback_user));
	strlcpy(h->fallback_by, c->name, sizeof(h->fallback_by));
	h->fallback_tag = "stale";
}

/* One cacheable checker's entries for this attempt: 1 hit, 0 not. */
static int
lookup_one(struct cache *c, int i, struct auth_ctx *ctx, time_t now)
{
	struct store_cache_entry e;
	uint8_t			 v[STORE_CACHE_HASH_LEN];
	char			 err[256];
	int			 pw = (ctx->mechanism & SASL_PASSWORD_MECHS) != 0;
	int			 hit = 0;

	memset(&e, 0, sizeof(e));
	e.kind = pw ? STORE_CACHE_PASSWORD : STORE_CACHE_TOKEN;
	strlcpy(e.checker, c->remote[i].name, sizeof(e.checker));
	strlcpy(e.user, ctx->user, sizeof(e.user));
	if (pw ? verifier(c, e.checker, e.user, ctx->password, ctx->pwlen,
	    v) == -1 : token_hash(ctx->password, ctx->pwlen,
	    e.token_hash) == -1)
		return 0;
	switch (store_cache_get(c->st, &e, err, sizeof(err))) {
	case 1:
		if (pw && CRYPTO_memcmp(e.verifier, v, sizeof(v)) != 0)
			break;	/* another password: ask the provider */
		if (now < e.expires) {
			strlcpy(ctx->canonical, e.canonical,
			    sizeof(ctx->canonical));
			addrs_restore(&e, &ctx->found);
			hit = 1;
		} else if (now < e.expires + c->conf.stale_if_error)
			stale_note(c, i, ctx, &e, e.canonical);
		break;
	case -1:
		log_warnx("cache %s: %s", c->name, err);
		break;
	}
	if (hit || !pw || c->conf.negative_ttl == 0)
		goto out;
	e.kind = STORE_CACHE_NEGATIVE;
	if (store_cache_get(c->st, &e, err, sizeof(err)) == 1 &&
	    now < e.expires && CRYPTO_memcmp(e.verifier, v, sizeof(v)) == 0)
		ctx->hints.skip |= 1U << c->remote[i].index;
out:
	explicit_bzero(v, sizeof(v));
	explicit_bzero(&e, sizeof(e));
	return hit;
}

/* On a pool thread. */
static void
cache_verify(struct checker *chk, struct auth_ctx *ctx)
{
	struct cache	*c = (struct cache *)chk->priv;
	time_t		 now = time(NULL);

	ctx->result = AUTH_FAIL;
	ctx->why = "miss";
	ctx->lookup = "miss";
	if (!c->usable) {
		ctx->why = "cache unusable";
		return;
	}
	for (int i = 0; i < c->nremote; i++) {
		if ((c->remote[i].mechanisms & ctx->mechanism) == 0)
			continue;
		if (lookup_one(c, i, ctx, now)) {
			ctx->result = AUTH_OK;
			ctx->why = NULL;
			ctx->lookup = "hit";
			return;
		}
	}
	if (ctx->hints.skip != 0) {
		ctx->why = "refused a moment ago";
		ctx->lookup = "negative";
	}
}

static void
write_work(void *arg)
{
	struct cache_write	*w = arg;
	char			 err[256];
	size_t			 n;

	if (store_cache_put(w->cache->st, &w->e, err, sizeof(err)) == -1)
		log_warnx("cache %s: %s", w->cache->name, err);
	if (w->purge && store_cache_expire(w->cache->st,
	    (int64_t)time(NULL) - w->cache->conf.stale_if_error, &n, err,
	    sizeof(err)) == -1)
		log_warnx("cache %s: %s", w->cache->name, err);
}

static void
write_done(void *arg)
{
	struct cache_write	*w = arg;
	struct cache		*c = w->cache;
	struct auth_ctx		*ctx = w->ctx;
	void			(*then)(struct auth_ctx *) = w->then;

	if (--c->priv.refs == 0)
		cache_free(&c->priv);
	freezero(w, sizeof(*w));
	if (then != NULL)
		then(ctx);
}

/*
 * The observe hook: on the loop, when a cacheable checker has decided
 * (ok or fail).  1: the entry is being written, and then(ctx) runs
 * once it is; 0: nothing to write.
 */
static int
cache_observe(struct checker *chk, const struct checker *remote,
    struct auth_ctx *ctx, void (*then)(struct auth_ctx *))
{
	struct cache		*c = (struct cache *)chk->priv;
	struct cache_write	*w;
	struct store_cache_entry *e;
	time_t			 now = time(NULL);
	int			 pw = (ctx->mechanism & SASL_PASSWORD_MECHS) != 0;

	int			 result = ctx->result;

	if (c == NULL || !c->usable || ctx->hints.answered)
		return 0;
	if (result == AUTH_FAIL && (!pw || !ctx->found.refused ||
	    c->conf.negative_ttl == 0))
		return 0;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return 0;
	e = &w->e;
	strlcpy(e->checker, remote->conf->name, sizeof(e->checker));
	strlcpy(e->user, ctx->user, sizeof(e->user));
	if (result == AUTH_OK)
		strlcpy(e->canonical, ctx->canonical, sizeof(e->canonical));
	e->created = now;
	if (pw) {
		e->kind = result == AUTH_OK ? STORE_CACHE_PASSWORD :
		    STORE_CACHE_NEGATIVE;
		e->expires = now + (result == AUTH_OK ? c->conf.ttl :
		    c->conf.negative_ttl);
		if (verifier(c, e->checker, e->user, ctx->password,
		    ctx->pwlen, e->verifier) == -1)
			goto fail;
		if (result == AUTH_OK)
			addrs_keep(&ctx->found, e);
	} else {
		e->kind = STORE_CACHE_TOKEN;
		e->expires = now + c->conf.ttl;
		/* Never longer than the token itself. */
		if (ctx->found.expires > 0 && ctx->found.expires < e->expires)
			e->expires = ctx->found.expires;
		strlcpy(e->scope, ctx->found.scope, sizeof(e->scope));
		if (token_hash(ctx->password, ctx->pwlen, e->token_hash) == -1)
			goto fail;
	}
	if (now - c->purged >= CACHE_PURGE_EVERY) {
		c->purged = now;
		w->purge = 1;
	}
	w->cache = c;
	w->ctx = ctx;
	w->then = then;
	c->priv.refs++;
	hashpool_submit(write_work, write_done, w);
	return 1;
fail:
	freezero(w, sizeof(*w));
	return 0;
}

static int
cache_init(struct checker *chk, struct portcullis_conf *conf)
{
	const struct checker_ops *ops;
	struct checker_conf	*cc;
	struct cache		*c;
	int			 i = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->priv.refs = 1;
	strlcpy(c->name, chk->conf->name, sizeof(c->name));
	c->conf = chk->conf->cache;
	c->purged = time(NULL);
	TAILQ_FOREACH(cc, &conf->checkers, entry) {
		if ((ops = checker_ops_of(cc->type)) != NULL &&
		    ops->cacheable) {
			strlcpy(c->remote[c->nremote].name, cc->name,
			    sizeof(c->remote[c->nremote].name));
			c->remote[c->nremote].index = i;
			c->remote[c->nremote].mechanisms =
			    checker_conf_mechanisms(cc);
			c->nremote++;
		}
		i++;
	}
	c->st = chain_store(chk->conf->path);
	if (c->st != NULL && key_load(c) == 0)
		c->usable = 1;
	else
		log_warnx("cache %s: disabled; every login goes to the "
		    "provider", c->name);
	chk->store = c->st;
	chk->priv = &c->priv;
	return 0;
}

static void
cache_stats(const struct checker *chk, char *buf, size_t len)
{
	const struct cache	*c = (const struct cache *)chk->priv;

	snprintf(buf, len, "%s, for %d checkers", c->usable ? "usable" :
	    "disabled", c->nremote);
}

const struct checker_ops checker_cache_ops = {
	.name = "cache",
	.kinds = CRED_PASSWORD | CRED_TOKEN,
	.cacheable = 0,
	.init = cache_init,
	.start = checker_pool_start,
	.verify = cache_verify,
	.observe = cache_observe,
	.stats = cache_stats,
	.free = cache_free,
};
