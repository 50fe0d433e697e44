/*
 * cache.c -- the login cache database: get, put, flush, expire and
 * list what oauth checkers said, so that the next login needs no HTTP
 * request (authd's checker "cache").
 *
 * Guarantees:
 * - each call runs its own short transaction: thread-safe;
 * - an entry that cannot be decoded serves no login: get says it is
 *   corrupt, list reports it, expire keeps it (it may be a newer
 *   portcullis's), flush removes it when its key names the user;
 * - a store opened read-only without a cache database has an empty
 *   cache, and nothing is wrong with it;
 * - decoded entries and encoded records (verifiers) are wiped.
 */

#include <sys/types.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lmdb.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/* Before a cache call: the database is there, and writable if need be. */
static int
cache_ready(const struct store *st, int write, char *err, size_t errlen)
{
	if (write && (st->flags & STORE_RDONLY)) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if (!st->has_cache) {
		errbuf_set(err, errlen, "store %s has no login cache: it is "
		    "made when the store is opened for writing", st->dir);
		return -1;
	}
	return 0;
}

/* The normalised user of a flush or a listing into norm; NULL: all. */
static int
cache_user(const char *user, char *norm, size_t normlen, char *err,
    size_t errlen)
{
	char		 why[64];

	norm[0] = '\0';
	if (user != NULL && store_name_check(user, norm, normlen, why,
	    sizeof(why)) == -1) {
		store_name_error(user, why, err, errlen);
		return -1;
	}
	return 0;
}

/*
 * Decode one entry of the cache database into e: 0; -1 its key is
 * corrupt; -2 its record is (e holds the key).  err says what is wrong.
 */
static int
cache_entry(const MDB_val *key, const MDB_val *val,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	if (store_cache_key_decode(key->mv_data, key->mv_size, e, err,
	    errlen) == -1)
		return -1;
	if (store_cache_record_decode(val->mv_data, val->mv_size, e, err,
	    errlen) == -1)
		return -2;
	return 0;
}

static void
cache_corrupt_error(const struct store *st, const MDB_val *key,
    const struct store_cache_entry *e, int rc, const char *why, char *err,
    size_t errlen)
{
	char	 safe[STORE_CACHE_KEY_MAX * 4];
	char	 tok[24];

	if (rc == -1) {
		errbuf_set(err, errlen, "store %s: cache key \"%s\" is "
		    "corrupt: %s", st->dir, escape_text(key->mv_data,
		    key->mv_size, safe, sizeof(safe)), why);
		return;
	}
	tok[0] = '\0';
	if (e->kind == STORE_CACHE_TOKEN)
		(void)snprintf(tok, sizeof(tok), " %02x%02x%02x%02x",
		    e->token_hash[0], e->token_hash[1], e->token_hash[2],
		    e->token_hash[3]);
	errbuf_set(err, errlen, "store %s: the %s%s entry of checker \"%s\" "
	    "for user \"%s\" is corrupt: %s", st->dir, store_cache_kind_name(e->kind),
	    tok, e->checker, e->user, why);
}

/* Append " (and N more)" to err when more than one entry was bad. */
static void
more_error(size_t bad, char *err, size_t errlen)
{
	size_t	 l;

	if (bad < 2 || err == NULL)
		return;
	l = strlen(err);
	if (l < errlen)
		errbuf_set(err + l, errlen - l, " (and %zu more)", bad - 1);
}

int
store_cache_get(struct store *st, struct store_cache_entry *e, char *err,
    size_t errlen)
{
	struct store_cache_entry	 d;
	unsigned char			 kbuf[STORE_CACHE_KEY_MAX];
	char				 user[CONF_AUTH_NAME_MAX];
	char				 why[128];
	MDB_txn				*txn;
	MDB_val				 key, val;
	int				 rc, len;

	store_cache_record_clear(e);
	if ((len = store_cache_key(e, kbuf, sizeof(kbuf), user, err,
	    errlen)) == -1)
		return -1;
	/* A name that cannot be stored has no entry. */
	if (len == -2)
		return 0;
	(void)strlcpy(e->user, user, sizeof(e->user));
	if (!st->has_cache) {
		(void)cache_ready(st, 0, err, errlen);
		return 0;
	}
	if (store_txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = kbuf;
	key.mv_size = (size_t)len;
	rc = mdb_get(txn, st->cache, &key, &val);
	if (rc == MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		errbuf_set(err, errlen, "no cache entry");
		return 0;
	}
	if (rc != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot read the cache", rc, err, errlen);
		return -1;
	}
	memset(&d, 0, sizeof(d));
	d.kind = e->kind;
	rc = store_cache_record_decode(val.mv_data, val.mv_size, &d, why,
	    sizeof(why));
	store_txn_abort(st, txn);
	if (rc == -1) {
		cache_corrupt_error(st, &key, e, -2, why, err, errlen);
		return -1;
	}
	e->created = d.created;
	e->expires = d.expires;
	memcpy(e->verifier, d.verifier, sizeof(e->verifier));
	(void)strlcpy(e->canonical, d.canonical, sizeof(e->canonical));
	(void)strlcpy(e->scope, d.scope, sizeof(e->scope));
	memcpy(e->addrs, d.addrs, sizeof(e->addrs));
	e->naddrs = d.naddrs;
	explicit_bzero(&d, sizeof(d));
	return 1;
}

int
store_cache_put(struct store *st, const struct store_cache_entry *e,
    char *err, size_t errlen)
{
	unsigned char	 kbuf[STORE_CACHE_KEY_MAX];
	unsigned char	 rbuf[STORE_CACHE_RECORD_MAX];
	char		 user[CONF_AUTH_NAME_MAX];
	MDB_txn		*txn;
	MDB_val		 key, val;
	int		 rc, klen, rlen;

	if (cache_ready(st, 1, err, errlen) == -1)
		return -1;
	if ((klen = store_cache_key(e, kbuf, sizeof(kbuf), user, err,
	    errlen)) < 0)
		return -1;
	if ((rlen = store_cache_record_encode(e, rbuf, sizeof(rbuf), err,
	    errlen)) == -1)
		return -1;
	if (store_txn_begin(st, 0, &txn, err, errlen) == -1) {
		explicit_bzero(rbuf, sizeof(rbuf));
		return -1;
	}
	key.mv_data = kbuf;
	key.mv_size = (size_t)klen;
	val.mv_data = rbuf;
	val.mv_size = (size_t)rlen;
	rc = mdb_put(txn, st->cache, &key, &val, 0);
	explicit_bzero(rbuf, sizeof(rbuf));
	if (rc != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot write the cache", rc, err, errlen);
		return -1;
	}
	return store_txn_commit(st, txn, err, errlen);
}

/*
 * Whether an entry belongs to user norm: its key names norm, or its
 * record (when it could be decoded, rc 0) names norm as canonical.
 */
static int
cache_entry_of(const struct store_cache_entry *e, int rc, const char *norm)
{
	if (rc == -1)
		return 0;
	if (strcmp(e->user, norm) == 0)
		return 1;
	return rc == 0 && strcmp(e->canonical, norm) == 0;
}

/*
 * Delete, in one write transaction, the entries that user norm owns
 * (expire 0) or that are expired at before (expire 1).  An entry that
 * cannot be decoded is left alone: it is of no use to a login, and
 * may be a newer portcullis's.
 */
static int
cache_delete(struct store *st, const char *norm, int expire,
    int64_t before, size_t *n, char *err, size_t errlen)
{
	struct store_cache_entry	 e;
	MDB_txn				*txn;
	MDB_cursor			*cur;
	MDB_val				 key, val;
	char				 why[128];
	size_t				 count = 0;
	int				 rc, drc, del;

	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->cache, &cur)) != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot walk the cache", rc, err, errlen);
		return -1;
	}
	/* After mdb_cursor_del(), MDB_NEXT gives the entry after it. */
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		drc = cache_entry(&key, &val, &e, why, sizeof(why));
		if (expire)
			del = drc == 0 && e.expires <= before;
		else
			del = cache_entry_of(&e, drc, norm);
		if (!del)
			continue;
		if ((rc = mdb_cursor_del(cur, 0)) != 0)
			break;
		count++;
	}
	mdb_cursor_close(cur);
	explicit_bzero(&e, sizeof(e));
	if (rc != MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot delete from the cache", rc, err, errlen);
		return -1;
	}
	if (store_txn_commit(st, txn, err, errlen) == -1)
		return -1;
	*n = count;
	return 0;
}

int
store_cache_flush(struct store *st, const char *user, size_t *n, char *err,
    size_t errlen)
{
	char		 norm[CONF_AUTH_NAME_MAX];
	MDB_txn		*txn;
	MDB_stat	 ms;
	size_t		 dummy;
	int		 rc;

	if (n == NULL)
		n = &dummy;
	*n = 0;
	if (cache_ready(st, 1, err, errlen) == -1 ||
	    cache_user(user, norm, sizeof(norm), err, errlen) == -1)
		return -1;
	if (user != NULL)
		return cache_delete(st, norm, 0, 0, n, err, errlen);

	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_stat(txn, st->cache, &ms)) != 0 ||
	    (rc = mdb_drop(txn, st->cache, 0)) != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot empty the cache", rc, err, errlen);
		return -1;
	}
	if (store_txn_commit(st, txn, err, errlen) == -1)
		return -1;
	*n = ms.ms_entries;
	return 0;
}

int
store_cache_expire(struct store *st, int64_t before, size_t *n, char *err,
    size_t errlen)
{
	size_t	 dummy;

	if (n == NULL)
		n = &dummy;
	*n = 0;
	if (cache_ready(st, 1, err, errlen) == -1)
		return -1;
	return cache_delete(st, NULL, 1, before, n, err, errlen);
}

int
store_cache_list(struct store *st, const char *user,
    int (*cb)(const struct store_cache_entry *, void *), void *arg,
    char *err, size_t errlen)
{
	struct store_cache_entry	 e;
	char				 norm[CONF_AUTH_NAME_MAX];
	char				 why[128];
	MDB_txn				*txn;
	MDB_cursor			*cur;
	MDB_val				 key, val;
	size_t				 bad = 0;
	int				 rc, drc;

	if (cache_user(user, norm, sizeof(norm), err, errlen) == -1)
		return -1;
	/* Read-only, a store without a cache has an empty one. */
	if (!st->has_cache)
		return 0;
	if (store_txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->cache, &cur)) != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot list the cache", rc, err, errlen);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		/* A bad entry might be user's: it is always reported. */
		if ((drc = cache_entry(&key, &val, &e, why,
		    sizeof(why))) != 0) {
			if (bad++ == 0)
				cache_corrupt_error(st, &key, &e, drc, why,
				    err, errlen);
			continue;
		}
		if (user != NULL && !cache_entry_of(&e, drc, norm))
			continue;
		if (cb(&e, arg) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	mdb_cursor_close(cur);
	store_txn_abort(st, txn);
	explicit_bzero(&e, sizeof(e));
	if (rc != MDB_NOTFOUND) {
		store_lmdb_error(st, "cannot list the cache", rc, err, errlen);
		return -1;
	}
	more_error(bad, err, errlen);
	return bad > 0 ? -1 : 0;
}
