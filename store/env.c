/*
 * env.c -- the store's LMDB environment: opening and closing a store,
 * its databases and layout, and the transactions every other part of
 * the store runs in.
 *
 * Guarantees:
 * - a store of a newer layout than STORE_LAYOUT is refused, so that an
 *   old portcullis never misreads or rewrites a newer store;
 * - a store opened for writing gets its cache database (see
 *   open_cache_db() for why that needs no new layout);
 * - store_txn_begin() and its ends are safe from any thread (MDB_NOTLS,
 *   so a read transaction belongs to no thread); store_open() and
 *   store_close() must not race with anything on the same store;
 * - errors are sentences for an administrator, in err, naming the
 *   directory, and the file and uid when permission is denied;
 *   nothing is logged.
 *
 * LMDB's map size is fixed (STORE_MAPSIZE) and sparse.  Should another
 * process ever grow the map, mdb_txn_begin() says MDB_MAP_RESIZED and
 * the map is adopted; that must happen with no transaction of this
 * process open, hence the read-write lock around every transaction.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

void
store_lmdb_error(const struct store *st, const char *what, int rc, char *err,
    size_t errlen)
{
	if (rc == MDB_MAP_FULL)
		errbuf_set(err, errlen, "store %s is full (its map is %lu MiB)",
		    st->dir, STORE_MAPSIZE / (1024 * 1024));
	else
		errbuf_set(err, errlen, "store %s: %s: %s", st->dir, what,
		    mdb_strerror(rc));
}

/*
 * Transactions hold the map lock for reading; adopting a map another
 * process grew takes it for writing.  A transaction ends in the thread
 * that began it.
 */
int
store_txn_begin(struct store *st, int rdonly, MDB_txn **txn, char *err,
    size_t errlen)
{
	int	 rc, tries;

	for (tries = 0;; tries++) {
		(void)pthread_rwlock_rdlock(&st->maplock);
		rc = mdb_txn_begin(st->env, NULL, rdonly ? MDB_RDONLY : 0,
		    txn);
		if (rc == 0)
			return 0;
		(void)pthread_rwlock_unlock(&st->maplock);
		if (rc != MDB_MAP_RESIZED || tries > 0)
			break;
		(void)pthread_rwlock_wrlock(&st->maplock);
		rc = mdb_env_set_mapsize(st->env, 0);
		(void)pthread_rwlock_unlock(&st->maplock);
		if (rc != 0)
			break;
	}
	store_lmdb_error(st, "cannot begin a transaction", rc, err, errlen);
	return -1;
}

void
store_txn_abort(struct store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	(void)pthread_rwlock_unlock(&st->maplock);
}

int
store_txn_commit(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	int	 rc;

	rc = mdb_txn_commit(txn);
	(void)pthread_rwlock_unlock(&st->maplock);
	if (rc != 0) {
		store_lmdb_error(st, "cannot commit", rc, err, errlen);
		return -1;
	}
	return 0;
}

/*
 * Permission was denied somewhere on the way into dir: find where, to
 * tell the administrator which file and which uid.
 */
static void
perm_error(const char *dir, int rdonly, char *err, size_t errlen)
{
	static const char *const files[] = { "lock.mdb", "data.mdb" };
	struct stat	 sb;
	char		 path[PATH_MAX];
	const char	*blame = NULL;
	size_t		 i;
	int		 mode;

	if (stat(dir, &sb) == -1) {
		errbuf_set(err, errlen, "store %s: permission denied on a parent "
		    "directory for uid %u", dir, (unsigned)geteuid());
		return;
	}
	if (faccessat(AT_FDCWD, dir, X_OK, AT_EACCESS) == -1)
		blame = dir;
	for (i = 0; blame == NULL && i < 2; i++) {
		(void)snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (stat(path, &sb) == -1) {
			if (faccessat(AT_FDCWD, dir, W_OK, AT_EACCESS) == -1) {
				(void)stat(dir, &sb);
				blame = dir;
			}
			continue;
		}
		mode = R_OK;
		if (i == 0 || !rdonly)
			mode |= W_OK;
		if (faccessat(AT_FDCWD, path, mode, AT_EACCESS) == -1)
			blame = path;
	}
	if (blame == NULL) {
		errbuf_set(err, errlen, "store %s: permission denied for uid %u",
		    dir, (unsigned)geteuid());
		return;
	}
	errbuf_set(err, errlen, "store %s: permission denied: %s belongs to uid "
	    "%u (mode %04o) and this process runs as uid %u", dir, blame,
	    (unsigned)sb.st_uid, (unsigned)(sb.st_mode & 07777),
	    (unsigned)geteuid());
}

/* Check the directory and, unless creating, that a store is in it. */
static int
open_check_dir(const char *dir, int flags, char *err, size_t errlen)
{
	struct stat	 sb;
	char		 path[PATH_MAX];

	if (stat(dir, &sb) == -1) {
		if (errno == EACCES) {
			perm_error(dir, flags & STORE_RDONLY, err, errlen);
			return -1;
		}
		if (errno != ENOENT || !(flags & STORE_CREATE)) {
			if (errno == ENOENT)
				errbuf_set(err, errlen, "store %s does not exist: "
				    "create it with authctl user add", dir);
			else
				errbuf_set(err, errlen, "store %s: %s", dir,
				    strerror(errno));
			return -1;
		}
		if (mkdir(dir, 0700) == -1 && errno != EEXIST) {
			errbuf_set(err, errlen, "store %s: cannot create the "
			    "directory: %s", dir, strerror(errno));
			return -1;
		}
		if (stat(dir, &sb) == -1) {
			errbuf_set(err, errlen, "store %s: %s", dir,
			    strerror(errno));
			return -1;
		}
	}
	if (!S_ISDIR(sb.st_mode)) {
		errbuf_set(err, errlen, "store %s is not a directory", dir);
		return -1;
	}
	if (flags & STORE_CREATE)
		return 0;
	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (stat(path, &sb) == -1) {
		if (errno == EACCES)
			perm_error(dir, flags & STORE_RDONLY, err, errlen);
		else if (errno == ENOENT)
			errbuf_set(err, errlen, "store %s does not exist (the "
			    "directory holds no data.mdb): create it with "
			    "authctl user add", dir);
		else
			errbuf_set(err, errlen, "store %s: %s: %s", dir, path,
			    strerror(errno));
		return -1;
	}
	return 0;
}

/* Parse the layout record: ASCII decimal, 1..10 digits, no NUL. */
static int
layout_parse(const MDB_val *v, unsigned long *layout)
{
	const unsigned char	*p = v->mv_data;
	unsigned long		 n = 0;
	size_t			 i;

	if (v->mv_size == 0 || v->mv_size > 9)
		return -1;
	for (i = 0; i < v->mv_size; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		n = n * 10 + (p[i] - '0');
	}
	if (n == 0)
		return -1;
	*layout = n;
	return 0;
}

/* The meta and users databases, made if the store is being created. */
static int
open_main_dbs(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	unsigned int	 dbflags = 0;
	int		 rc;

	if (st->flags & STORE_CREATE)
		dbflags = MDB_CREATE;
	if ((rc = mdb_dbi_open(txn, "meta", dbflags, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "users", dbflags, &st->users)) != 0) {
		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
			errbuf_set(err, errlen, "store %s is not a portcullis "
			    "store: it has no meta or users database", st->dir);
		else
			store_lmdb_error(st, "cannot open its databases", rc, err,
			    errlen);
		return -1;
	}
	return 0;
}

/*
 * The cache database came after layout 1 without a new layout number.
 * An older portcullis opens meta and users by name and never looks at
 * another database, so a store with a cache is still a good layout 1
 * store to it, and going back to it after an upgrade still works; a
 * layout 2 would make it refuse the whole store for a database it need
 * not know.  So the cache is made whenever the store is opened for
 * writing (the transaction is aborted, and nothing made, if the store
 * is refused by layout_check()).  Opened read-only, a store without it
 * has an empty cache: the cache calls say so, and nothing is wrong
 * with the store.
 */
static int
open_cache_db(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	int	 rc, rdonly = st->flags & STORE_RDONLY;

	rc = mdb_dbi_open(txn, "cache", rdonly ? 0 : MDB_CREATE, &st->cache);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		store_lmdb_error(st, "cannot open its cache database", rc, err,
		    errlen);
		return -1;
	}
	st->has_cache = rc == 0;
	return 0;
}

/* A new secret for the meta database, in txn. */
static int
secret_make(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	uint8_t		 key[STORE_SECRET_LEN];
	MDB_val		 k, v;
	int		 rc;

	if (getentropy(key, sizeof(key)) == -1) {
		errbuf_set(err, errlen, "store %s: getentropy: %s", st->dir,
		    strerror(errno));
		return -1;
	}
	k.mv_data = "secret";
	k.mv_size = strlen("secret");
	v.mv_data = key;
	v.mv_size = sizeof(key);
	rc = mdb_put(txn, st->meta, &k, &v, MDB_NOOVERWRITE);
	explicit_bzero(key, sizeof(key));
	if (rc != 0 && rc != MDB_KEYEXIST) {
		store_lmdb_error(st, "cannot write its secret", rc, err, errlen);
		return -1;
	}
	return 0;
}

/* Write st->layout, and the secret layouts 2 and later have, in txn. */
static int
layout_write(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_val		 key, val;
	char		 num[16];
	int		 rc;

	if (st->layout >= 2 && secret_make(st, txn, err, errlen) == -1)
		return -1;
	key.mv_data = "layout";
	key.mv_size = strlen("layout");
	(void)snprintf(num, sizeof(num), "%d", st->layout);
	val.mv_data = num;
	val.mv_size = strlen(num);
	if ((rc = mdb_put(txn, st->meta, &key, &val, 0)) != 0) {
		store_lmdb_error(st, "cannot write its layout", rc, err, errlen);
		return -1;
	}
	return 0;
}

int
store_layout(const struct store *st)
{
	return st->layout;
}

int
store_secret(struct store *st, uint8_t *out, char *err, size_t errlen)
{
	MDB_txn		*txn;
	MDB_val		 k, v;
	int		 rc;

	if (store_txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	k.mv_data = "secret";
	k.mv_size = strlen("secret");
	rc = mdb_get(txn, st->meta, &k, &v);
	if (rc == 0 && v.mv_size == STORE_SECRET_LEN)
		memcpy(out, v.mv_data, STORE_SECRET_LEN);
	store_txn_abort(st, txn);
	if (rc == MDB_NOTFOUND) {
		errbuf_set(err, errlen, "store %s has no secret (layout %d): "
		    "run authctl upgrade", st->dir, st->layout);
		return -1;
	}
	if (rc != 0) {
		store_lmdb_error(st, "cannot read its secret", rc, err, errlen);
		return -1;
	}
	if (v.mv_size != STORE_SECRET_LEN) {
		errbuf_set(err, errlen, "store %s: its secret is corrupt",
		    st->dir);
		return -1;
	}
	return 0;
}

/*
 * Every record rewritten as the newest version, then the secret and
 * the layout, all in one transaction: a store is wholly of one layout.
 * A record that cannot be decoded aborts it.
 */
static int
upgrade_records(struct store *st, MDB_txn *txn, size_t *n, char *err,
    size_t errlen)
{
	struct store_user	 u;
	unsigned char		 buf[STORE_RECORD_MAX];
	MDB_cursor		*cur;
	MDB_val			 key, val;
	char			 why[128], name[CONF_AUTH_NAME_MAX];
	int			 rc, len;

	if ((rc = mdb_cursor_open(txn, st->users, &cur)) != 0) {
		store_lmdb_error(st, "cannot list users", rc, err, errlen);
		return -1;
	}
	for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
	    rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
		memset(&u, 0, sizeof(u));
		if (store_record_decode(val.mv_data, val.mv_size, &u, why,
		    sizeof(why)) == -1) {
			errbuf_set(err, errlen, "store %s: a user record is "
			    "corrupt (%s): nothing upgraded", st->dir, why);
			goto fail;
		}
		u.version = STORE_RECORD_VERSION;
		if ((len = store_record_encode(&u, buf, sizeof(buf), why,
		    sizeof(why))) == -1) {
			errbuf_set(err, errlen, "store %s: %s", st->dir, why);
			goto fail;
		}
		/* key points into a page the put may rewrite: copy it. */
		if (key.mv_size > sizeof(name)) {
			errbuf_set(err, errlen, "store %s: a user name of %zu "
			    "octets: nothing upgraded", st->dir, key.mv_size);
			goto fail;
		}
		memcpy(name, key.mv_data, key.mv_size);
		key.mv_data = name;
		val.mv_data = buf;
		val.mv_size = (size_t)len;
		rc = mdb_cursor_put(cur, &key, &val, MDB_CURRENT);
		explicit_bzero(buf, sizeof(buf));
		explicit_bzero(&u, sizeof(u));
		if (rc != 0) {
			store_lmdb_error(st, "cannot rewrite a user", rc, err,
			    errlen);
			goto fail;
		}
		(*n)++;
	}
	mdb_cursor_close(cur);
	if (rc != MDB_NOTFOUND) {
		store_lmdb_error(st, "cannot list users", rc, err, errlen);
		return -1;
	}
	return 0;
 fail:
	explicit_bzero(&u, sizeof(u));
	mdb_cursor_close(cur);
	return -1;
}

int
store_upgrade(struct store *st, size_t *n, char *err, size_t errlen)
{
	MDB_txn		*txn;
	int		 was = st->layout;

	*n = 0;
	if (st->flags & STORE_RDONLY) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if (st->layout >= STORE_LAYOUT) {
		errbuf_set(err, errlen, "store %s has layout %d already",
		    st->dir, st->layout);
		return -1;
	}
	if (store_txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	st->layout = STORE_LAYOUT;
	if (upgrade_records(st, txn, n, err, errlen) == -1 ||
	    layout_write(st, txn, err, errlen) == -1) {
		st->layout = was;
		*n = 0;
		store_txn_abort(st, txn);
		return -1;
	}
	if (store_txn_commit(st, txn, err, errlen) == -1) {
		st->layout = was;
		*n = 0;
		return -1;
	}
	return 0;
}

/*
 * Read the layout and refuse a newer one; a store being created gets
 * STORE_LAYOUT written.  0, or -1 with err.
 */
static int
layout_check(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	MDB_val		 key, val;
	unsigned long	 layout;
	int		 rc;

	key.mv_data = "layout";
	key.mv_size = strlen("layout");
	rc = mdb_get(txn, st->meta, &key, &val);
	if (rc == MDB_NOTFOUND && (st->flags & STORE_CREATE)) {
		st->layout = STORE_LAYOUT;
		return layout_write(st, txn, err, errlen);
	}
	if (rc != 0) {
		if (rc == MDB_NOTFOUND)
			errbuf_set(err, errlen, "store %s is not a portcullis "
			    "store: its meta database has no layout", st->dir);
		else
			store_lmdb_error(st, "cannot read its layout", rc, err,
			    errlen);
		return -1;
	}
	if (layout_parse(&val, &layout) == -1) {
		errbuf_set(err, errlen, "store %s: the layout record in its meta "
		    "database is corrupt", st->dir);
		return -1;
	}
	if (layout > STORE_LAYOUT) {
		errbuf_set(err, errlen, "store %s has layout %lu, this portcullis "
		    "understands up to %d: upgrade portcullis", st->dir,
		    layout, STORE_LAYOUT);
		return -1;
	}
	st->layout = (int)layout;
	return 0;
}

/* Open the databases, check or write the layout. */
static int
open_databases(struct store *st, char *err, size_t errlen)
{
	MDB_txn		*txn;

	if (store_txn_begin(st, st->flags & STORE_RDONLY, &txn, err,
	    errlen) == -1)
		return -1;
	if (open_main_dbs(st, txn, err, errlen) == -1 ||
	    open_cache_db(st, txn, err, errlen) == -1 ||
	    layout_check(st, txn, err, errlen) == -1) {
		store_txn_abort(st, txn);
		return -1;
	}
	/* Commit, even read-only: the database handles outlive it. */
	return store_txn_commit(st, txn, err, errlen);
}

struct store *
store_open(const char *dir, int flags, char *err, size_t errlen)
{
	struct store	*st;
	unsigned int	 envflags = MDB_NOTLS;
	int		 rc, dead;

	if (dir == NULL || dir[0] == '\0' ||
	    strlen(dir) >= sizeof(st->dir) - sizeof("/data.mdb")) {
		errbuf_set(err, errlen, "store: no directory, or its name is "
		    "too long");
		return NULL;
	}
	if ((flags & STORE_RDONLY) && (flags & STORE_CREATE)) {
		errbuf_set(err, errlen, "store %s: cannot create a store "
		    "opened read-only", dir);
		return NULL;
	}
	if (open_check_dir(dir, flags, err, errlen) == -1)
		return NULL;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		errbuf_set(err, errlen, "store %s: %s", dir, strerror(errno));
		return NULL;
	}
	(void)strlcpy(st->dir, dir, sizeof(st->dir));
	st->flags = flags;
	if ((rc = pthread_rwlock_init(&st->maplock, NULL)) != 0) {
		errbuf_set(err, errlen, "store %s: %s", dir, strerror(rc));
		free(st);
		return NULL;
	}
	if ((rc = mdb_env_create(&st->env)) != 0) {
		store_lmdb_error(st, "cannot create an environment", rc, err,
		    errlen);
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, STORE_MAXDBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, STORE_MAPSIZE)) != 0) {
		store_lmdb_error(st, "cannot set up the environment", rc, err,
		    errlen);
		goto fail;
	}
	if (flags & STORE_RDONLY)
		envflags |= MDB_RDONLY;
	if ((rc = mdb_env_open(st->env, dir, envflags, 0600)) != 0) {
		if (rc == EACCES || rc == EPERM)
			perm_error(dir, flags & STORE_RDONLY, err, errlen);
		else if (rc == MDB_INVALID)
			errbuf_set(err, errlen, "store %s: data.mdb is not an "
			    "LMDB file", dir);
		else if (rc == MDB_VERSION_MISMATCH)
			errbuf_set(err, errlen, "store %s was written by another "
			    "version of LMDB", dir);
		else
			store_lmdb_error(st, "cannot open", rc, err, errlen);
		goto fail;
	}
	/* Free the reader slots of processes that died in a read. */
	(void)mdb_reader_check(st->env, &dead);
	if (open_databases(st, err, errlen) == -1)
		goto fail;
	return st;

 fail:
	if (st->env != NULL)
		mdb_env_close(st->env);
	(void)pthread_rwlock_destroy(&st->maplock);
	free(st);
	return NULL;
}

void
store_close(struct store *st)
{
	if (st == NULL)
		return;
	mdb_env_close(st->env);
	(void)pthread_rwlock_destroy(&st->maplock);
	free(st);
}
