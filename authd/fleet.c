/*
 * fleet.c -- this node's own counters for penalties and sending
 * limits, and the choice between them and Redis.
 *
 * Every question is answered here first, so that the node's counters
 * are warm when Redis goes away; when Redis is usable its answer
 * replaces ours (fleet_redis.c).  The tables are bounded: an entry
 * expires at its own time, and when PENALTY_MAX entries are held the
 * least recently touched one goes first (an attacker with many
 * addresses cannot make authd grow).
 *
 * The last wrong passwords of an account and address are remembered
 * as 64 bits of HMAC-SHA-256 under a key made at start (never the
 * password; the key never leaves this process, so the hashes stay on
 * this node, also with Redis).
 */

#include <sys/types.h>
#include <sys/tree.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "authd.h"
#include "fleet.h"
#include "log.h"

#define REPEAT_HASH_LEN		8

enum entry_kind {
	E_ADDRESS = PENALTY_KIND_ADDRESS,
	E_ACCOUNT = PENALTY_KIND_ACCOUNT,
	E_KNOWN = PENALTY_KIND_KNOWN,
	E_REPEATS = PENALTY_KIND_REPEATS,
	E_LIMIT_USER_RCPT,
	E_LIMIT_ADDR_RCPT,
	E_LIMIT_USER_MSG,
	E_LIMIT_ADDR_MSG,
	E_LOCKED,		/* an account Redis says is locked */
	E_LIMIT_REFUSED,	/* an account's refusals, for lock-after */
	E_SENDLOCK,		/* locked for going on over its limit */
};

struct entry {
	RB_ENTRY(entry)		 tree;
	TAILQ_ENTRY(entry)	 lru;
	int			 kind;
	uint32_t		 count;
	time_t			 expires;
	int			 nhash;
	uint8_t			 hash[PENALTY_REPEATS_MAX][REPEAT_HASH_LEN];
	char			*key;		/* right after the entry */
};

struct fleet_counters fleet_counters;

#define C(x)	{ #x, offsetof(struct fleet_counters, x) }
const struct fleet_counter_name fleet_counter_names[] = {
	C(auth_failures), C(auth_delayed), C(auth_repeats), C(auth_trusted),
	C(account_locks), C(account_refused), C(account_known_passed),
	C(limit_recipients_refused), C(limit_messages_refused),
	C(limit_tempfail), C(limit_locks), C(limit_lock_refused),
	C(state_shared), C(state_local), C(state_errors),
	C(state_outages), C(state_reconnects), C(table_evictions),
	{ NULL, 0 }
};
#undef C

static const struct portcullis_conf *fconf;
static uint8_t	 repeat_key[32];
static unsigned int nentries;

static int	entry_cmp(struct entry *, struct entry *);
RB_HEAD(entry_tree, entry);
RB_PROTOTYPE(entry_tree, entry, tree, entry_cmp)
RB_GENERATE(entry_tree, entry, tree, entry_cmp)
static struct entry_tree entries = RB_INITIALIZER(&entries);
static TAILQ_HEAD(, entry) lru = TAILQ_HEAD_INITIALIZER(lru);

static int
entry_cmp(struct entry *a, struct entry *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	return strcmp(a->key, b->key);
}

void
fleet_configure(const struct portcullis_conf *conf)
{
	static int	 keyed;

	if (!keyed) {
		arc4random_buf(repeat_key, sizeof(repeat_key));
		keyed = 1;
	}
	fconf = conf;
	fleet_redis_configure(conf);
}

static void
entry_remove(struct entry *e)
{
	RB_REMOVE(entry_tree, &entries, e);
	TAILQ_REMOVE(&lru, e, lru);
	freezero(e, sizeof(*e) + strlen(e->key) + 1);
	nentries--;
}

/* The entry of kind and key, if it is alive; made if create. */
static struct entry *
entry_get(int kind, const char *key, time_t now, int create)
{
	struct entry	 find, *e;
	size_t		 len = strlen(key);

	find.kind = kind;
	find.key = (char *)(uintptr_t)key;
	if ((e = RB_FIND(entry_tree, &entries, &find)) != NULL) {
		if (e->expires > now) {
			TAILQ_REMOVE(&lru, e, lru);
			TAILQ_INSERT_TAIL(&lru, e, lru);
			return e;
		}
		entry_remove(e);
	}
	if (!create)
		return NULL;
	/* Full: the least recently touched goes, expired or not. */
	if (nentries >= PENALTY_MAX && (e = TAILQ_FIRST(&lru)) != NULL) {
		if (e->expires > now)
			fleet_counters.table_evictions++;
		entry_remove(e);
	}
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL) {
		log_warn("%s", __func__);
		return NULL;
	}
	e->kind = kind;
	e->key = (char *)(e + 1);
	memcpy(e->key, key, len + 1);
	RB_INSERT(entry_tree, &entries, e);
	TAILQ_INSERT_TAIL(&lru, e, lru);
	nentries++;
	return e;
}

static uint32_t
entry_count(int kind, const char *key, time_t now)
{
	struct entry	*e = entry_get(kind, key, now, 0);

	return e != NULL ? e->count : 0;
}

/* "user address": the key of what belongs to both. */
static int
pair_key(const char *user, const char *addr, char *buf, size_t len)
{
	int	 n = snprintf(buf, len, "%s %s", user, addr);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Count one more; a new entry lives for window from now. */
static uint32_t
entry_add(int kind, const char *key, time_t now, uint32_t n, int window,
    int refresh)
{
	struct entry	*e;

	if ((e = entry_get(kind, key, now, 1)) == NULL)
		return 0;
	if (e->count == 0 || refresh)
		e->expires = now + window;
	e->count += n;
	return e->count;
}

static void
local_check(struct fleet_req *r, time_t now)
{
	char	 pair[400];

	r->account_count = entry_count(E_ACCOUNT, r->user, now);
	r->hard = entry_get(E_SENDLOCK, r->user, now, 0) != NULL;
	r->known = pair_key(r->user, r->addr, pair, sizeof(pair)) == 0 &&
	    entry_get(E_KNOWN, pair, now, 0) != NULL;
}

static void
local_fail(struct fleet_req *r, time_t now)
{
	const struct penalty_conf *p = &fconf->penalty;

	if (r->addr[0] != '\0')
		r->addr_count = r->grow_addr ? entry_add(E_ADDRESS, r->addr,
		    now, 1, p->forget, 1) : entry_count(E_ADDRESS, r->addr,
		    now);
	if (r->user[0] != '\0')
		r->account_count = r->count_account ? entry_add(E_ACCOUNT,
		    r->user, now, 1, p->account_window, 0) :
		    entry_count(E_ACCOUNT, r->user, now);
}

static void
local_ok(struct fleet_req *r, time_t now)
{
	struct entry	*e;
	char		 pair[400];

	if ((e = entry_get(E_ADDRESS, r->addr, now, 0)) != NULL)
		entry_remove(e);
	if (r->user[0] == '\0' || pair_key(r->user, r->addr, pair,
	    sizeof(pair)) == -1)
		return;
	if ((e = entry_get(E_KNOWN, pair, now, 1)) != NULL) {
		e->count = 1;
		e->expires = now + fconf->penalty.known_for;
	}
	if ((e = entry_get(E_REPEATS, pair, now, 0)) != NULL)
		entry_remove(e);
}

static int
limit_kind_user(enum limit_kind k)
{
	return k == LIMIT_RECIPIENTS ? E_LIMIT_USER_RCPT : E_LIMIT_USER_MSG;
}

static int
limit_kind_addr(enum limit_kind k)
{
	return k == LIMIT_RECIPIENTS ? E_LIMIT_ADDR_RCPT : E_LIMIT_ADDR_MSG;
}

/*
 * Over for the account (1) or the address (2), each against its own
 * limit (0: none); else counted.  An account's refusal is counted
 * too when refusals may lock it.
 */
static void
local_limit(struct fleet_req *r, time_t now)
{
	int	 addr = r->addr[0] != '\0' && r->addr_max > 0;

	if (r->max > 0 && entry_count(limit_kind_user(r->kind), r->user,
	    now) + r->n > r->max)
		r->over = 1;
	else if (addr && entry_count(limit_kind_addr(r->kind), r->addr,
	    now) + r->n > r->addr_max)
		r->over = 2;
	if (r->over == 1 && r->lock_after > 0)
		r->refusals = entry_add(E_LIMIT_REFUSED, r->user, now, 1,
		    r->window, 0);
	if (r->over)
		return;
	if (r->max > 0)
		(void)entry_add(limit_kind_user(r->kind), r->user, now, r->n,
		    r->window, 0);
	if (addr)
		(void)entry_add(limit_kind_addr(r->kind), r->addr, now, r->n,
		    r->addr_window, 0);
}

/* Redis refused what we counted here: take it back. */
void
fleet_local_limit_undo(const struct fleet_req *r)
{
	struct entry	*e;
	time_t		 now = time(NULL);

	if (r->max > 0 && (e = entry_get(limit_kind_user(r->kind), r->user,
	    now, 0)) != NULL && e->count >= r->n)
		e->count -= r->n;
	if (r->addr[0] != '\0' && r->addr_max > 0 &&
	    (e = entry_get(limit_kind_addr(r->kind), r->addr, now, 0)) !=
	    NULL && e->count >= r->n)
		e->count -= r->n;
}

/* Answer r from this node's tables. */
void
fleet_local(struct fleet_req *r)
{
	time_t	 now = time(NULL);

	switch (r->op) {
	case FLEET_CHECK:
		local_check(r, now);
		break;
	case FLEET_FAIL:
		local_fail(r, now);
		break;
	case FLEET_OK:
		local_ok(r, now);
		break;
	case FLEET_LIMIT:
		local_limit(r, now);
		break;
	}
}

/*
 * Redis says the account is locked until then (its own failure count,
 * or another node's news): until then its logins ask Redis.
 */
void
fleet_lock_note(const char *user, time_t until)
{
	struct entry	*e;
	time_t		 now = time(NULL);

	if (until <= now || (e = entry_get(E_LOCKED, user, now, 1)) == NULL)
		return;
	e->count = 1;
	e->expires = until;
}

void
fleet_lock_drop(const char *user)
{
	static const int kinds[] = { E_LOCKED, E_SENDLOCK, E_LIMIT_REFUSED };
	struct entry	*e;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if ((e = entry_get(kinds[i], user, time(NULL), 0)) != NULL)
			entry_remove(e);
}

/*
 * r's account went on over its limit: locked until then, here, and
 * (Redis's script set it there already) the other nodes are told.
 */
void
fleet_sendlock(const struct fleet_req *r, time_t until)
{
	struct entry	*e;

	if ((e = entry_get(E_SENDLOCK, r->user, time(NULL), 1)) != NULL) {
		e->count = 1;
		e->expires = until;
	}
	if (r->shared) {
		fleet_lock_note(r->user, until);
		fleet_redis_lock_news(r->user, until);
	}
}

/*
 * Answered here, then by Redis if it can; done() once either way, at
 * once when it is not Redis.  Every login asks whether its account is
 * locked: with Redis, only an account some node found locked (the
 * nodes tell each other, fleet_redis.c) is asked of Redis, so that a
 * login usually costs no round trip.
 */
void
fleet_submit(struct fleet_req *r)
{
	fleet_local(r);
	if (fleet_redis_usable()) {
		if (r->op == FLEET_CHECK && fleet_redis_informed() &&
		    entry_get(E_LOCKED, r->user, time(NULL), 0) == NULL) {
			r->account_count = 0;
			r->known = 0;
			r->shared = 1;
			fleet_counters.state_shared++;
			r->done(r);
			return;
		}
		fleet_redis_submit(r);
		return;
	}
	if (fconf->state.type == STATE_REDIS) {
		fleet_counters.state_local++;
		if (fconf->state.fail_closed && r->op != FLEET_OK)
			r->failed = 1;
	}
	r->done(r);
}

/*
 * 1 if this wrong secret was tried already for the account from the
 * address (then it is not counted again), else 0 and it is
 * remembered, the oldest forgotten first.
 */
int
fleet_repeat(const char *user, const char *addr, const char *secret,
    size_t len)
{
	struct entry	*e;
	uint8_t		 mac[EVP_MAX_MD_SIZE], *buf;
	unsigned int	 maclen = 0;
	char		 pair[400];
	size_t		 plen;
	time_t		 now = time(NULL);
	int		 i, ok;

	if (fconf->penalty.repeats == 0 || pair_key(user, addr, pair,
	    sizeof(pair)) == -1)
		return 0;
	/* HMAC-SHA-256(key, "user address" NUL secret) */
	plen = strlen(pair) + 1;
	if ((buf = malloc(plen + len)) == NULL)
		return 0;
	memcpy(buf, pair, plen);
	memcpy(buf + plen, secret, len);
	ok = HMAC(EVP_sha256(), repeat_key, sizeof(repeat_key), buf,
	    plen + len, mac, &maclen) != NULL;
	freezero(buf, plen + len);
	if (!ok || maclen < REPEAT_HASH_LEN)
		return 0;
	if ((e = entry_get(E_REPEATS, pair, now, 1)) == NULL)
		return 0;
	e->expires = now + fconf->penalty.forget;
	for (i = 0; i < e->nhash; i++)
		if (memcmp(e->hash[i], mac, REPEAT_HASH_LEN) == 0) {
			explicit_bzero(mac, sizeof(mac));
			return 1;
		}
	if (e->nhash == fconf->penalty.repeats) {
		memmove(e->hash[0], e->hash[1],
		    (size_t)(e->nhash - 1) * REPEAT_HASH_LEN);
		e->nhash--;
	}
	memcpy(e->hash[e->nhash++], mac, REPEAT_HASH_LEN);
	explicit_bzero(mac, sizeof(mac));
	return 0;
}

/* The delay after the failures-th failure: doubled each time. */
uint32_t
fleet_delay(const struct portcullis_conf *conf, uint32_t failures)
{
	long	 ms = conf->failure_delay;

	for (; failures > 1 && ms < conf->failure_delay_max; failures--)
		ms *= 2;
	if (ms > conf->failure_delay_max)
		ms = conf->failure_delay_max;
	return ms < 0 ? 0 : (uint32_t)ms;
}

/* Does an entry concern what ("" everything)? */
static int
entry_matches(const struct entry *e, const char *what)
{
	size_t	 n = strlen(what);

	if (what[0] == '\0' || strcmp(e->key, what) == 0)
		return 1;
	/* "user address": either half */
	if (e->kind != E_KNOWN && e->kind != E_REPEATS)
		return 0;
	return (strncmp(e->key, what, n) == 0 && e->key[n] == ' ') ||
	    (strlen(e->key) > n && e->key[strlen(e->key) - n - 1] == ' ' &&
	    strcmp(e->key + strlen(e->key) - n, what) == 0);
}

/*
 * For authctl penalty list: this node's penalties and accounts locked
 * by their limit (not the sending counts).
 */
void
fleet_list(const char *what, void (*row)(const struct ctl_penalty *, void *),
    void *arg)
{
	struct entry		*e, *next;
	struct ctl_penalty	 p;
	time_t			 now = time(NULL);

	RB_FOREACH_SAFE(e, entry_tree, &entries, next) {
		if (e->expires <= now) {
			entry_remove(e);
			continue;
		}
		if ((e->kind > E_REPEATS && e->kind != E_SENDLOCK) ||
		    !entry_matches(e, what))
			continue;
		memset(&p, 0, sizeof(p));
		strlcpy(p.what, e->key, sizeof(p.what));
		p.kind = e->kind == E_SENDLOCK ? PENALTY_KIND_SENDING :
		    (uint32_t)e->kind;
		p.locked = e->kind == E_SENDLOCK;
		p.count = e->kind == E_REPEATS ? (uint32_t)e->nhash : e->count;
		p.expires = (int64_t)e->expires;
		if (e->kind == E_ADDRESS)
			p.delay_ms = fleet_delay(fconf, e->count + 1);
		if (e->kind == E_ACCOUNT)
			p.locked = fconf->penalty.account_max > 0 &&
			    e->count >= (uint32_t)fconf->penalty.account_max;
		row(&p, arg);
	}
}

/* authctl penalty clear, on this node (control.c asks Redis). */
uint32_t
fleet_clear(const char *what)
{
	struct entry	*e, *next;
	uint32_t	 n = 0;

	RB_FOREACH_SAFE(e, entry_tree, &entries, next)
		if ((e->kind <= E_REPEATS || e->kind >= E_LOCKED) &&
		    entry_matches(e, what)) {
			if (e->kind != E_LOCKED && e->kind != E_LIMIT_REFUSED)
				n++;
			entry_remove(e);
		}
	return n;
}
