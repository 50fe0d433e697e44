/*
 * user.c -- the users database: get, put, delete and list the users
 * who may log in.
 *
 * Guarantees:
 * - each call runs its own short transaction, so every call is
 *   thread-safe and a reader sees what a writer in another process
 *   committed before the reader's transaction began;
 * - a name and its addresses are normalised before they are looked up
 *   or written; a record is decoded (and so checked) before anything
 *   of it is returned, and a corrupt one is an error naming its user,
 *   with nothing half-decoded left for the caller;
 * - a listing skips a corrupt record and goes on, and says so;
 * - the encoded record, which holds the password hash, is wiped.
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

static void
corrupt_error(const struct store *st, const char *name, size_t namelen,
    const char *why, char *err, size_t errlen)
{
	char	 safe[CONF_AUTH_NAME_MAX];

	errbuf_set(err, errlen, "store %s: the record of user \"%s\" is "
	    "corrupt: %s", st->dir, escape_text(name, namelen, safe,
	    sizeof(safe)), why);
}

int
store_user_get(struct store *st, const char *name, struct store_user *u,
    char *err, size_t errlen)
{
	MDB_txn		*txn;
	MDB_val		 key, val;
	char		 why[128];
	char		 whyname[64];
	int		 rc;

	memset(u, 0, sizeof(*u));
	if (store_name_check(name, u->name, sizeof(u->name), whyname,
	    sizeof(whyname)) == -1) {
		store_name_error(name, whyname, err, errlen);
		return 0;
	}
	if (store_txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = u->name;
	key.mv_size = strlen(u->name);
	rc = mdb_get(txn, st->users, &key, &val);
	if (rc == MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		errbuf_set(err, errlen, "no such user \"%s\"", u->name);
		return 0;
	}
	if (rc != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot read a user", rc, err, errlen);
		return -1;
	}
	rc = store_record_decode(val.mv_data, val.mv_size, u, why,
	    sizeof(why));
	store_txn_abort(st, txn);
	if (rc == -1) {
		corrupt_error(st, u->name, strlen(u->name), why, err, errlen);
		/* Nothing half-decoded for a careless caller to trust. */
		memset(u->hash, 0, sizeof(u->hash));
		memset(u->addrs, 0, sizeof(u->addrs));
		u->naddrs = 0;
		u->napps = 0;
		explicit_bzero(&u->scram, sizeof(u->scram));
		explicit_bzero(u->apps, sizeof(u->apps));
		memset(u->limits, 0, sizeof(u->limits));
		u->locked = 1;
		return -1;
	}
	return 1;
}

/* Normalise and check u into n: name, hash, addresses. */
static int
user_prepare(const struct store_user *u, struct store_user *n, char *err,
    size_t errlen)
{
	char		 why[64];
	char		 safe[STORE_ADDR_MAX * 4 + 1];
	size_t		 i, j, alen;

	memset(n, 0, sizeof(*n));
	if (store_name_check(u->name, n->name, sizeof(n->name), why,
	    sizeof(why)) == -1) {
		store_name_error(u->name, why, err, errlen);
		return -1;
	}
	if (strnlen(u->hash, sizeof(u->hash)) >= sizeof(u->hash)) {
		errbuf_set(err, errlen, "the hash of \"%s\" is too long", n->name);
		return -1;
	}
	(void)strlcpy(n->hash, u->hash, sizeof(n->hash));
	n->locked = u->locked != 0;
	n->scram = u->scram;
	if (u->napps > STORE_APPS_MAX) {
		errbuf_set(err, errlen, "\"%s\" has %zu app passwords, more "
		    "than %d", n->name, u->napps, STORE_APPS_MAX);
		return -1;
	}
	n->napps = u->napps;
	memcpy(n->apps, u->apps, sizeof(n->apps));
	memcpy(n->limits, u->limits, sizeof(n->limits));
	n->created = u->created;
	n->changed = u->changed;
	if (u->naddrs > STORE_ADDRS_MAX) {
		errbuf_set(err, errlen, "\"%s\" has %zu addresses, more than %d",
		    n->name, u->naddrs, STORE_ADDRS_MAX);
		return -1;
	}
	n->naddrs = u->naddrs;
	for (i = 0; i < u->naddrs; i++) {
		alen = strnlen(u->addrs[i], sizeof(u->addrs[i]));
		if (alen >= sizeof(u->addrs[i]) ||
		    store_addr_normalize(u->addrs[i], n->addrs[i],
		    sizeof(n->addrs[i]), why, sizeof(why)) == -1) {
			if (alen >= sizeof(u->addrs[i]))
				strlcpy(why, "is longer than 254 octets",
				    sizeof(why));
			errbuf_set(err, errlen, "address \"%s\" %s",
			    escape_text(u->addrs[i], alen, safe, sizeof(safe)),
			    why);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(n->addrs[j], n->addrs[i]) == 0) {
				errbuf_set(err, errlen, "address \"%s\" is listed "
				    "twice", n->addrs[i]);
				return -1;
			}
	}
	return 0;
}

int
store_user_put(struct store *st, const struct store_user *u, int flags,
    char *err, size_t errlen)
{
	struct store_user	 n;
	unsigned char		 buf[STORE_RECORD_MAX];
	MDB_txn			*txn;
	MDB_val			 key, val;
	int64_t			 now = (int64_t)time(NULL), created = 0;
	int			 rc, len, exists;

	if (st->flags & STORE_RDONLY) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if ((flags & STORE_CREATE_ONLY) && (flags & STORE_REPLACE_ONLY)) {
		errbuf_set(err, errlen, "store_user_put: STORE_CREATE_ONLY and "
		    "STORE_REPLACE_ONLY together");
		return -1;
	}
	if (user_prepare(u, &n, err, errlen) == -1) {
		explicit_bzero(&n, sizeof(n));
		return -1;
	}
	/* A layout 1 store must stay readable by the code that made it. */
	n.version = st->layout;

	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = n.name;
	key.mv_size = strlen(n.name);
	rc = mdb_get(txn, st->users, &key, &val);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot read a user", rc, err, errlen);
		return -1;
	}
	exists = rc == 0;
	if (exists && (flags & STORE_CREATE_ONLY)) {
		store_txn_abort(st, txn);
		errbuf_set(err, errlen, "user \"%s\" exists", n.name);
		return -1;
	}
	if (!exists && (flags & STORE_REPLACE_ONLY)) {
		store_txn_abort(st, txn);
		errbuf_set(err, errlen, "no such user \"%s\"", n.name);
		return -1;
	}
	if (n.created == 0)
		n.created = exists && store_record_created(&val, &created) == 0 ?
		    created : now;
	if (n.changed == 0)
		n.changed = now;

	if ((len = store_record_encode(&n, buf, sizeof(buf), err,
	    errlen)) == -1) {
		store_txn_abort(st, txn);
		return -1;
	}
	val.mv_data = buf;
	val.mv_size = (size_t)len;
	rc = mdb_put(txn, st->users, &key, &val, 0);
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(&n, sizeof(n));
	if (rc != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot write a user", rc, err, errlen);
		return -1;
	}
	return store_txn_commit(st, txn, err, errlen);
}

/* One touch inside txn: 1 written, 0 nothing to do, -1 error. */
static int
app_touch_one(struct store *st, MDB_txn *txn, const struct store_touch *t,
    char *err, size_t errlen)
{
	struct store_user	 u;
	unsigned char		 buf[STORE_RECORD_MAX];
	MDB_val			 key, val;
	char			 why[128];
	size_t			 i;
	int			 rc, len, hit = 0;

	key.mv_data = (void *)t->user;
	key.mv_size = strlen(t->user);
	if ((rc = mdb_get(txn, st->users, &key, &val)) == MDB_NOTFOUND)
		return 0;
	if (rc != 0) {
		store_lmdb_error(st, "cannot read a user", rc, err, errlen);
		return -1;
	}
	memset(&u, 0, sizeof(u));
	if (store_record_decode(val.mv_data, val.mv_size, &u, why,
	    sizeof(why)) == -1)
		return 0;	/* store_user_get() reports it */
	for (i = 0; i < u.napps; i++)
		if (strcmp(u.apps[i].label, t->label) == 0 &&
		    u.apps[i].last_used < t->when) {
			u.apps[i].last_used = t->when;
			hit = 1;
		}
	if (hit && (len = store_record_encode(&u, buf, sizeof(buf), err,
	    errlen)) >= 0) {
		val.mv_data = buf;
		val.mv_size = (size_t)len;
		if ((rc = mdb_put(txn, st->users, &key, &val, 0)) != 0) {
			store_lmdb_error(st, "cannot write a user", rc, err,
			    errlen);
			len = -1;
		}
	} else if (hit)
		len = -1;
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(&u, sizeof(u));
	return !hit ? 0 : len < 0 ? -1 : 1;
}

int
store_app_touch(struct store *st, const struct store_touch *t, size_t n,
    char *err, size_t errlen)
{
	MDB_txn		*txn;
	size_t		 i;

	if (st->flags & STORE_RDONLY) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (app_touch_one(st, txn, &t[i], err, errlen) == -1) {
			store_txn_abort(st, txn);
			return -1;
		}
	return store_txn_commit(st, txn, err, errlen);
}

int
store_user_del(struct store *st, const char *name, char *err,
    size_t errlen)
{
	char		 norm[CONF_AUTH_NAME_MAX];
	char		 why[64];
	MDB_txn		*txn;
	MDB_val		 key;
	int		 rc;

	if (st->flags & STORE_RDONLY) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if (store_name_check(name, norm, sizeof(norm), why, sizeof(why)) == -1) {
		store_name_error(name, why, err, errlen);
		return -1;
	}
	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = norm;
	key.mv_size = strlen(norm);
	if ((rc = mdb_del(txn, st->users, &key, NULL)) != 0) {
		store_txn_abort(st, txn);
		if (rc == MDB_NOTFOUND)
			errbuf_set(err, errlen, "no such user \"%s\"", norm);
		else
			store_lmdb_error(st, "cannot delete a user", rc, err,
			    errlen);
		return -1;
	}
	return store_txn_commit(st, txn, err, errlen);
}

/* Decode one entry of the users database into u; -1 with err. */
static int
list_entry(const MDB_val *key, const MDB_val *val, struct store_user *u,
    char *err, size_t errlen)
{
	char		 whyname[64];
	char		 name[CONF_AUTH_NAME_MAX];

	memset(u, 0, sizeof(*u));
	if (key->mv_size == 0 || key->mv_size >= sizeof(name)) {
		errbuf_set(err, errlen, "its name is %zu octets", key->mv_size);
		return -1;
	}
	memcpy(name, key->mv_data, key->mv_size);
	name[key->mv_size] = '\0';
	if (strlen(name) != key->mv_size ||
	    store_name_check(name, u->name, sizeof(u->name), whyname,
	    sizeof(whyname)) == -1 ||
	    strcmp(name, u->name) != 0) {
		errbuf_set(err, errlen, "its name is not a normalised name");
		return -1;
	}
	return store_record_decode(val->mv_data, val->mv_size, u, err,
	    errlen);
}

int
store_user_list(struct store *st,
    int (*cb)(const struct store_user *, void *), void *arg, char *err,
    size_t errlen)
{
	struct store_user	 u;
	MDB_txn			*txn;
	MDB_cursor		*cur;
	MDB_val			 key, val;
	char			 why[128];
	size_t			 bad = 0;
	int			 rc;

	if (store_txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->users, &cur)) != 0) {
		store_txn_abort(st, txn);
		store_lmdb_error(st, "cannot list users", rc, err, errlen);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		if (list_entry(&key, &val, &u, why, sizeof(why)) == -1) {
			if (bad++ == 0)
				corrupt_error(st, key.mv_data, key.mv_size,
				    why, err, errlen);
			continue;
		}
		if (cb(&u, arg) != 0) {
			rc = MDB_NOTFOUND;
			break;
		}
	}
	mdb_cursor_close(cur);
	store_txn_abort(st, txn);
	if (rc != MDB_NOTFOUND) {
		store_lmdb_error(st, "cannot list users", rc, err, errlen);
		return -1;
	}
	if (bad > 1) {
		size_t	 l = err != NULL ? strlen(err) : 0;

		if (err != NULL && l < errlen)
			errbuf_set(err + l, errlen - l, " (and %zu more)", bad - 1);
	}
	return bad > 0 ? -1 : 0;
}
