/*
 * store.c -- the LMDB user store (the format is described in store.h).
 *
 * Guarantees:
 * - every call but store_open() and store_close() is thread-safe: each
 *   runs its own short transaction (MDB_NOTLS, so a read transaction
 *   belongs to no thread), and a reader sees what a writer in another
 *   process committed before the reader's transaction began;
 * - a record read from the file is trusted in nothing: every length
 *   and every octet is checked before it is copied, and a bad record
 *   is an error naming its user, not a crash;
 * - a store of a newer layout than STORE_LAYOUT is refused, so that an
 *   old portcullis never misreads or rewrites a newer store;
 * - errors are sentences for an administrator, in err; nothing is
 *   logged.
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "config.h"
#include "store.h"
#include "util.h"

#define RECORD_HEADER	19	/* version, flags, created, changed, H */
#define CACHE_HEADER	50	/* version, flags, created, expires,
				   verifier */

struct store {
	MDB_env			*env;
	MDB_dbi			 meta;
	MDB_dbi			 users;
	MDB_dbi			 cache;		/* if has_cache */
	int			 has_cache;
	int			 flags;
	pthread_rwlock_t	 maplock;
	char			 dir[PATH_MAX];
};

static void
lmdb_error(const struct store *st, const char *what, int rc, char *err,
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
 * 1 if s[0..len) is well-formed UTF-8 without control characters
 * (C0, DEL, C1), nor spaces unless space_ok; else 0, with *why saying
 * which.
 */
static int
text_ok(const unsigned char *s, size_t len, int space_ok, const char **why)
{
	size_t		 i = 0, n, k;
	uint32_t	 cp, min;
	unsigned char	 c;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			if (c == ' ' && !space_ok) {
				*why = "contains a space";
				return 0;
			}
			if (c < 0x20 || c == 0x7f) {
				*why = "contains a control character";
				return 0;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			goto bad;
		if (len - i - 1 < n)
			goto bad;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		if (cp <= 0x9f) {
			*why = "contains a control character";
			return 0;
		}
		i += n + 1;
	}
	return 1;
 bad:
	*why = "is not valid UTF-8";
	return 0;
}

/* store_name_normalize(), saying why a name is refused. */
static int
name_normalize(const char *in, char *out, size_t outlen, const char **why)
{
	const char	*at;
	size_t		 len, i;

	*why = "is not valid";
	if (in == NULL || out == NULL || outlen == 0)
		return -1;
	len = strnlen(in, CONF_AUTH_NAME_MAX);
	if (len == 0) {
		*why = "is empty";
		return -1;
	}
	if (len >= CONF_AUTH_NAME_MAX || len >= outlen) {
		*why = "is too long";
		return -1;
	}
	if (!text_ok((const unsigned char *)in, len, 0, why))
		return -1;
	if ((at = strrchr(in, '@')) != NULL) {
		if (at == in) {
			*why = "has an empty local part";
			return -1;
		}
		if (at[1] == '\0') {
			*why = "has an empty domain";
			return -1;
		}
	}
	i = at == NULL ? len : (size_t)(at - in);
	memmove(out, in, len);
	out[len] = '\0';
	for (; i < len; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
	return 0;
}

int
store_name_normalize(const char *in, char *out, size_t outlen)
{
	const char	*why;

	return name_normalize(in, out, outlen, &why);
}

/* An address: a name with an '@', no longer than STORE_ADDR_MAX. */
static int
addr_normalize(const char *in, char *out, size_t outlen, const char **why)
{
	if (strnlen(in, STORE_ADDR_MAX + 1) > STORE_ADDR_MAX) {
		*why = "is longer than 254 octets";
		return -1;
	}
	if (name_normalize(in, out, outlen, why) == -1)
		return -1;
	if (strchr(out, '@') == NULL) {
		*why = "has no '@'";
		return -1;
	}
	return 0;
}

static int
hash_ok(const unsigned char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

static void
put_i64(unsigned char *p, int64_t v)
{
	uint64_t	 u = (uint64_t)v;
	int		 i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static int64_t
get_i64(const unsigned char *p)
{
	uint64_t	 u = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	return (int64_t)u;
}

int
store_record_encode(const struct store_user *u, unsigned char *buf,
    size_t buflen, char *err, size_t errlen)
{
	const char	*why;
	size_t		 hlen, alen, i, o;

	hlen = strnlen(u->hash, sizeof(u->hash));
	if (hlen > 255 || hlen >= sizeof(u->hash)) {
		errbuf_set(err, errlen, "the hash is longer than 255 octets");
		return -1;
	}
	if (!hash_ok((const unsigned char *)u->hash, hlen)) {
		errbuf_set(err, errlen, "the hash contains a space, a control "
		    "character or a non-ASCII octet");
		return -1;
	}
	if (u->naddrs > STORE_ADDRS_MAX) {
		errbuf_set(err, errlen, "more than %d addresses", STORE_ADDRS_MAX);
		return -1;
	}
	if (buflen < STORE_RECORD_MAX) {
		errbuf_set(err, errlen, "record buffer too small");
		return -1;
	}

	buf[0] = STORE_RECORD_VERSION;
	buf[1] = u->locked ? STORE_LOCKED : 0;
	put_i64(buf + 2, u->created);
	put_i64(buf + 10, u->changed);
	buf[18] = (unsigned char)hlen;
	memcpy(buf + RECORD_HEADER, u->hash, hlen);
	o = RECORD_HEADER + hlen;
	buf[o++] = (unsigned char)u->naddrs;
	for (i = 0; i < u->naddrs; i++) {
		alen = strnlen(u->addrs[i], sizeof(u->addrs[i]));
		if (alen == 0 || alen > STORE_ADDR_MAX) {
			errbuf_set(err, errlen, "address %zu is empty or longer "
			    "than %d octets", i + 1, STORE_ADDR_MAX);
			return -1;
		}
		if (!text_ok((const unsigned char *)u->addrs[i], alen, 0,
		    &why)) {
			errbuf_set(err, errlen, "address %zu %s", i + 1, why);
			return -1;
		}
		buf[o++] = (unsigned char)alen;
		memcpy(buf + o, u->addrs[i], alen);
		o += alen;
	}
	return (int)o;
}

int
store_record_decode(const unsigned char *buf, size_t len,
    struct store_user *u, char *err, size_t errlen)
{
	char		 addr[STORE_ADDR_MAX + 2];
	const char	*why;
	size_t		 hlen, alen, i, o;

	if (len < 1) {
		errbuf_set(err, errlen, "the record is empty");
		return -1;
	}
	if (buf[0] != STORE_RECORD_VERSION) {
		if (buf[0] > STORE_RECORD_VERSION)
			errbuf_set(err, errlen, "the record has format %u, this "
			    "portcullis understands up to %d: upgrade "
			    "portcullis", buf[0], STORE_RECORD_VERSION);
		else
			errbuf_set(err, errlen, "unknown record format %u",
			    buf[0]);
		return -1;
	}
	if (len < RECORD_HEADER + 1) {
		errbuf_set(err, errlen, "the record is %zu octets, too short", len);
		return -1;
	}
	if ((buf[1] & ~STORE_LOCKED) != 0) {
		errbuf_set(err, errlen, "unknown flags 0x%02x", buf[1]);
		return -1;
	}
	hlen = buf[18];
	if (RECORD_HEADER + hlen + 1 > len) {
		errbuf_set(err, errlen, "the hash (%zu octets) overruns the "
		    "record (%zu octets)", hlen, len);
		return -1;
	}
	if (!hash_ok(buf + RECORD_HEADER, hlen)) {
		errbuf_set(err, errlen, "the hash has an octet that is not "
		    "printable ASCII");
		return -1;
	}
	u->locked = (buf[1] & STORE_LOCKED) != 0;
	u->created = get_i64(buf + 2);
	u->changed = get_i64(buf + 10);
	memcpy(u->hash, buf + RECORD_HEADER, hlen);
	u->hash[hlen] = '\0';

	o = RECORD_HEADER + hlen;
	u->naddrs = buf[o++];
	if (u->naddrs > STORE_ADDRS_MAX) {
		errbuf_set(err, errlen, "%zu addresses, more than %d", u->naddrs,
		    STORE_ADDRS_MAX);
		u->naddrs = 0;
		return -1;
	}
	for (i = 0; i < u->naddrs; i++) {
		if (o >= len) {
			errbuf_set(err, errlen, "address %zu is missing", i + 1);
			goto bad;
		}
		alen = buf[o++];
		if (alen == 0 || alen > STORE_ADDR_MAX || alen > len - o) {
			errbuf_set(err, errlen, "address %zu has a bad length "
			    "(%zu octets)", i + 1, alen);
			goto bad;
		}
		memcpy(addr, buf + o, alen);
		addr[alen] = '\0';
		o += alen;
		/* addr_normalize() would stop at a NUL, and pass the rest. */
		if (memchr(addr, '\0', alen) != NULL) {
			errbuf_set(err, errlen, "address %zu contains a "
			    "control character", i + 1);
			goto bad;
		}
		if (addr_normalize(addr, u->addrs[i], sizeof(u->addrs[i]),
		    &why) == -1) {
			errbuf_set(err, errlen, "address %zu %s", i + 1, why);
			goto bad;
		}
		if (strcmp(addr, u->addrs[i]) != 0) {
			errbuf_set(err, errlen, "address %zu is not normalised",
			    i + 1);
			goto bad;
		}
	}
	if (o != len) {
		errbuf_set(err, errlen, "%zu octets of garbage after the record",
		    len - o);
		goto bad;
	}
	return 0;
 bad:
	u->naddrs = 0;
	return -1;
}

/*
 * Transactions hold the map lock for reading; adopting a map another
 * process grew takes it for writing.  A transaction ends in the thread
 * that began it.
 */
static int
txn_begin(struct store *st, int rdonly, MDB_txn **txn, char *err,
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
	lmdb_error(st, "cannot begin a transaction", rc, err, errlen);
	return -1;
}

static void
txn_abort(struct store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	(void)pthread_rwlock_unlock(&st->maplock);
}

static int
txn_commit(struct store *st, MDB_txn *txn, char *err, size_t errlen)
{
	int	 rc;

	rc = mdb_txn_commit(txn);
	(void)pthread_rwlock_unlock(&st->maplock);
	if (rc != 0) {
		lmdb_error(st, "cannot commit", rc, err, errlen);
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

/* Open the databases, check or write the layout. */
static int
open_databases(struct store *st, char *err, size_t errlen)
{
	MDB_txn		*txn;
	MDB_val		 key, val;
	unsigned long	 layout;
	char		 num[16];
	unsigned int	 dbflags = 0;
	int		 rc, rdonly = st->flags & STORE_RDONLY;

	if (st->flags & STORE_CREATE)
		dbflags = MDB_CREATE;
	if (txn_begin(st, rdonly, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_dbi_open(txn, "meta", dbflags, &st->meta)) != 0 ||
	    (rc = mdb_dbi_open(txn, "users", dbflags, &st->users)) != 0) {
		txn_abort(st, txn);
		if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
			errbuf_set(err, errlen, "store %s is not a portcullis "
			    "store: it has no meta or users database", st->dir);
		else
			lmdb_error(st, "cannot open its databases", rc, err,
			    errlen);
		return -1;
	}

	/*
	 * The cache database came after layout 1 without a new layout
	 * number.  An older portcullis opens meta and users by name and
	 * never looks at another database, so a store with a cache is
	 * still a good layout 1 store to it, and going back to it after
	 * an upgrade still works; a layout 2 would make it refuse the
	 * whole store for a database it need not know.  So the cache is
	 * made whenever the store is opened for writing (the transaction
	 * is aborted, and nothing made, if the store is refused below).
	 * Opened read-only, a store without it has an empty cache: the
	 * cache calls say so, and nothing is wrong with the store.
	 */
	rc = mdb_dbi_open(txn, "cache", rdonly ? 0 : MDB_CREATE, &st->cache);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot open its cache database", rc, err,
		    errlen);
		return -1;
	}
	st->has_cache = rc == 0;

	key.mv_data = "layout";
	key.mv_size = strlen("layout");
	rc = mdb_get(txn, st->meta, &key, &val);
	if (rc == MDB_NOTFOUND && (st->flags & STORE_CREATE)) {
		(void)snprintf(num, sizeof(num), "%d", STORE_LAYOUT);
		val.mv_data = num;
		val.mv_size = strlen(num);
		if ((rc = mdb_put(txn, st->meta, &key, &val, 0)) != 0) {
			txn_abort(st, txn);
			lmdb_error(st, "cannot write its layout", rc, err,
			    errlen);
			return -1;
		}
		return txn_commit(st, txn, err, errlen);
	}
	if (rc != 0) {
		txn_abort(st, txn);
		if (rc == MDB_NOTFOUND)
			errbuf_set(err, errlen, "store %s is not a portcullis "
			    "store: its meta database has no layout", st->dir);
		else
			lmdb_error(st, "cannot read its layout", rc, err,
			    errlen);
		return -1;
	}
	if (layout_parse(&val, &layout) == -1) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "store %s: the layout record in its meta "
		    "database is corrupt", st->dir);
		return -1;
	}
	if (layout > STORE_LAYOUT) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "store %s has layout %lu, this portcullis "
		    "understands up to %d: upgrade portcullis", st->dir,
		    layout, STORE_LAYOUT);
		return -1;
	}
	/* Commit, even read-only: the database handles outlive it. */
	return txn_commit(st, txn, err, errlen);
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
		lmdb_error(st, "cannot create an environment", rc, err,
		    errlen);
		goto fail;
	}
	if ((rc = mdb_env_set_maxdbs(st->env, STORE_MAXDBS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, STORE_MAPSIZE)) != 0) {
		lmdb_error(st, "cannot set up the environment", rc, err,
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
			lmdb_error(st, "cannot open", rc, err, errlen);
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

static void
name_error(const char *name, const char *why, char *err, size_t errlen)
{
	char	 safe[CONF_AUTH_NAME_MAX];

	if (name == NULL)
		name = "";
	errbuf_set(err, errlen, "user name \"%s\" %s",
	    escape_text(name, strnlen(name, CONF_AUTH_NAME_MAX), safe,
	    sizeof(safe)), why);
}

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
	const char	*whyname;
	int		 rc;

	memset(u, 0, sizeof(*u));
	if (name_normalize(name, u->name, sizeof(u->name), &whyname) == -1) {
		name_error(name, whyname, err, errlen);
		return 0;
	}
	if (txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = u->name;
	key.mv_size = strlen(u->name);
	rc = mdb_get(txn, st->users, &key, &val);
	if (rc == MDB_NOTFOUND) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "no such user \"%s\"", u->name);
		return 0;
	}
	if (rc != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot read a user", rc, err, errlen);
		return -1;
	}
	rc = store_record_decode(val.mv_data, val.mv_size, u, why,
	    sizeof(why));
	txn_abort(st, txn);
	if (rc == -1) {
		corrupt_error(st, u->name, strlen(u->name), why, err, errlen);
		/* Nothing half-decoded for a careless caller to trust. */
		memset(u->hash, 0, sizeof(u->hash));
		memset(u->addrs, 0, sizeof(u->addrs));
		u->naddrs = 0;
		u->locked = 1;
		return -1;
	}
	return 1;
}

/* The creation time a record holds, or -1 if it holds none. */
static int
record_created(const MDB_val *v, int64_t *created)
{
	const unsigned char	*p = v->mv_data;

	if (v->mv_size < RECORD_HEADER || p[0] != STORE_RECORD_VERSION)
		return -1;
	*created = get_i64(p + 2);
	return 0;
}

/* Normalise and check u into n: name, hash, addresses. */
static int
user_prepare(const struct store_user *u, struct store_user *n, char *err,
    size_t errlen)
{
	const char	*why;
	char		 safe[STORE_ADDR_MAX * 4 + 1];
	size_t		 i, j, alen;

	memset(n, 0, sizeof(*n));
	if (name_normalize(u->name, n->name, sizeof(n->name), &why) == -1) {
		name_error(u->name, why, err, errlen);
		return -1;
	}
	if (strnlen(u->hash, sizeof(u->hash)) >= sizeof(u->hash)) {
		errbuf_set(err, errlen, "the hash of \"%s\" is too long", n->name);
		return -1;
	}
	(void)strlcpy(n->hash, u->hash, sizeof(n->hash));
	n->locked = u->locked != 0;
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
		    addr_normalize(u->addrs[i], n->addrs[i],
		    sizeof(n->addrs[i]), &why) == -1) {
			if (alen >= sizeof(u->addrs[i]))
				why = "is longer than 254 octets";
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
	if (user_prepare(u, &n, err, errlen) == -1)
		return -1;

	if (txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = n.name;
	key.mv_size = strlen(n.name);
	rc = mdb_get(txn, st->users, &key, &val);
	if (rc != 0 && rc != MDB_NOTFOUND) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot read a user", rc, err, errlen);
		return -1;
	}
	exists = rc == 0;
	if (exists && (flags & STORE_CREATE_ONLY)) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "user \"%s\" exists", n.name);
		return -1;
	}
	if (!exists && (flags & STORE_REPLACE_ONLY)) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "no such user \"%s\"", n.name);
		return -1;
	}
	if (n.created == 0)
		n.created = exists && record_created(&val, &created) == 0 ?
		    created : now;
	if (n.changed == 0)
		n.changed = now;

	if ((len = store_record_encode(&n, buf, sizeof(buf), err,
	    errlen)) == -1) {
		txn_abort(st, txn);
		return -1;
	}
	val.mv_data = buf;
	val.mv_size = (size_t)len;
	rc = mdb_put(txn, st->users, &key, &val, 0);
	explicit_bzero(buf, sizeof(buf));
	if (rc != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot write a user", rc, err, errlen);
		return -1;
	}
	return txn_commit(st, txn, err, errlen);
}

int
store_user_del(struct store *st, const char *name, char *err,
    size_t errlen)
{
	char		 norm[CONF_AUTH_NAME_MAX];
	const char	*why;
	MDB_txn		*txn;
	MDB_val		 key;
	int		 rc;

	if (st->flags & STORE_RDONLY) {
		errbuf_set(err, errlen, "store %s is open read-only", st->dir);
		return -1;
	}
	if (name_normalize(name, norm, sizeof(norm), &why) == -1) {
		name_error(name, why, err, errlen);
		return -1;
	}
	if (txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = norm;
	key.mv_size = strlen(norm);
	if ((rc = mdb_del(txn, st->users, &key, NULL)) != 0) {
		txn_abort(st, txn);
		if (rc == MDB_NOTFOUND)
			errbuf_set(err, errlen, "no such user \"%s\"", norm);
		else
			lmdb_error(st, "cannot delete a user", rc, err,
			    errlen);
		return -1;
	}
	return txn_commit(st, txn, err, errlen);
}

/* Decode one entry of the users database into u; -1 with why. */
static int
list_entry(const MDB_val *key, const MDB_val *val, struct store_user *u,
    char *why, size_t whylen)
{
	const char	*whyname;
	char		 name[CONF_AUTH_NAME_MAX];

	memset(u, 0, sizeof(*u));
	if (key->mv_size == 0 || key->mv_size >= sizeof(name)) {
		errbuf_set(why, whylen, "its name is %zu octets", key->mv_size);
		return -1;
	}
	memcpy(name, key->mv_data, key->mv_size);
	name[key->mv_size] = '\0';
	if (strlen(name) != key->mv_size ||
	    name_normalize(name, u->name, sizeof(u->name), &whyname) == -1 ||
	    strcmp(name, u->name) != 0) {
		errbuf_set(why, whylen, "its name is not a normalised name");
		return -1;
	}
	return store_record_decode(val->mv_data, val->mv_size, u, why,
	    whylen);
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

	if (txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->users, &cur)) != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot list users", rc, err, errlen);
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
	txn_abort(st, txn);
	if (rc != MDB_NOTFOUND) {
		lmdb_error(st, "cannot list users", rc, err, errlen);
		return -1;
	}
	if (bad > 1) {
		size_t	 l = err != NULL ? strlen(err) : 0;

		if (err != NULL && l < errlen)
			errbuf_set(err + l, errlen - l, " (and %zu more)", bad - 1);
	}
	return bad > 0 ? -1 : 0;
}

/*
 * The login cache.  Keys and records are described in store.h; as for
 * users, nothing read from the file is trusted before it is checked.
 */

static int
cache_kind_ok(int kind)
{
	return kind == STORE_CACHE_PASSWORD || kind == STORE_CACHE_NEGATIVE ||
	    kind == STORE_CACHE_TOKEN;
}

const char *
store_cache_kind_name(int kind)
{
	switch (kind) {
	case STORE_CACHE_PASSWORD:
		return "password";
	case STORE_CACHE_NEGATIVE:
		return "negative";
	case STORE_CACHE_TOKEN:
		return "token";
	}
	return "unknown";
}

/* A checker name: 1..CONF_NAME_MAX - 1 octets of text (spaces too). */
static int
checker_ok(const unsigned char *s, size_t len, const char **why)
{
	if (len == 0) {
		*why = "is empty";
		return 0;
	}
	if (len >= CONF_NAME_MAX) {
		*why = "is too long";
		return 0;
	}
	return text_ok(s, len, 1, why);
}

/* A scope: printable ASCII, spaces between its tokens (RFC 6749 3.3). */
static int
scope_ok(const unsigned char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * e's key into buf (STORE_CACHE_KEY_MAX octets), its user normalised
 * into user (CONF_AUTH_NAME_MAX octets).  The length; -1 when e breaks
 * the format; -2 when only its user name is refused.
 */
static int
cache_key(const struct store_cache_entry *e, unsigned char *buf,
    size_t buflen, char *user, char *err, size_t errlen)
{
	char		 safe[CONF_NAME_MAX * 4];
	const char	*why;
	size_t		 clen, ulen, o;

	if (!cache_kind_ok(e->kind)) {
		errbuf_set(err, errlen, "unknown cache entry kind %d", e->kind);
		return -1;
	}
	clen = strnlen(e->checker, sizeof(e->checker));
	if (!checker_ok((const unsigned char *)e->checker, clen, &why)) {
		errbuf_set(err, errlen, "checker name \"%s\" %s",
		    escape_text(e->checker, clen, safe, sizeof(safe)), why);
		return -1;
	}
	user[0] = '\0';
	/* A token may come with no user name; a password never does. */
	if ((e->kind != STORE_CACHE_TOKEN || e->user[0] != '\0') &&
	    name_normalize(e->user, user, CONF_AUTH_NAME_MAX, &why) == -1) {
		name_error(e->user, why, err, errlen);
		return -2;
	}
	if (buflen < STORE_CACHE_KEY_MAX) {
		errbuf_set(err, errlen, "cache key buffer too small");
		return -1;
	}
	ulen = strlen(user);
	buf[0] = (unsigned char)e->kind;
	memcpy(buf + 1, e->checker, clen);
	o = 1 + clen;
	buf[o++] = '\0';
	memcpy(buf + o, user, ulen);
	o += ulen;
	buf[o++] = '\0';
	if (e->kind == STORE_CACHE_TOKEN) {
		memcpy(buf + o, e->token_hash, STORE_CACHE_HASH_LEN);
		o += STORE_CACHE_HASH_LEN;
	}
	return (int)o;
}

int
store_cache_key_encode(const struct store_cache_entry *e, unsigned char *buf,
    size_t buflen, char *err, size_t errlen)
{
	char	 user[CONF_AUTH_NAME_MAX];
	int	 len;

	len = cache_key(e, buf, buflen, user, err, errlen);
	return len < 0 ? -1 : len;
}

int
store_cache_key_decode(const unsigned char *buf, size_t len,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	const unsigned char	*p, *nul;
	const char		*why;
	char			 name[CONF_AUTH_NAME_MAX];
	size_t			 clen, ulen, rest;

	e->kind = 0;
	memset(e->checker, 0, sizeof(e->checker));
	memset(e->user, 0, sizeof(e->user));
	memset(e->token_hash, 0, sizeof(e->token_hash));
	if (len < 1) {
		errbuf_set(err, errlen, "the key is empty");
		return -1;
	}
	if (!cache_kind_ok(buf[0])) {
		errbuf_set(err, errlen, "unknown entry kind 0x%02x", buf[0]);
		return -1;
	}
	p = buf + 1;
	rest = len - 1;
	if ((nul = memchr(p, '\0', rest)) == NULL) {
		errbuf_set(err, errlen, "the checker name has no end");
		return -1;
	}
	clen = (size_t)(nul - p);
	if (!checker_ok(p, clen, &why)) {
		errbuf_set(err, errlen, "the checker name %s", why);
		return -1;
	}
	memcpy(e->checker, p, clen);
	e->checker[clen] = '\0';

	p = nul + 1;
	rest = len - (size_t)(p - buf);
	if ((nul = memchr(p, '\0', rest)) == NULL) {
		errbuf_set(err, errlen, "the user name has no end");
		goto bad;
	}
	ulen = (size_t)(nul - p);
	if (ulen >= sizeof(name)) {
		errbuf_set(err, errlen, "the user name is too long");
		goto bad;
	}
	memcpy(name, p, ulen);
	name[ulen] = '\0';
	if (ulen == 0 && buf[0] != STORE_CACHE_TOKEN) {
		errbuf_set(err, errlen, "the user name is empty");
		goto bad;
	}
	if (ulen > 0) {
		if (name_normalize(name, e->user, sizeof(e->user),
		    &why) == -1) {
			errbuf_set(err, errlen, "the user name %s", why);
			goto bad;
		}
		if (strcmp(name, e->user) != 0) {
			errbuf_set(err, errlen, "the user name is not "
			    "normalised");
			goto bad;
		}
	}

	p = nul + 1;
	rest = len - (size_t)(p - buf);
	if (buf[0] == STORE_CACHE_TOKEN) {
		if (rest != STORE_CACHE_HASH_LEN) {
			errbuf_set(err, errlen, "the token hash is %zu octets, "
			    "not %d", rest, STORE_CACHE_HASH_LEN);
			goto bad;
		}
		memcpy(e->token_hash, p, STORE_CACHE_HASH_LEN);
	} else if (rest != 0) {
		errbuf_set(err, errlen, "%zu octets of garbage after the key",
		    rest);
		goto bad;
	}
	e->kind = buf[0];
	return 0;
 bad:
	memset(e->checker, 0, sizeof(e->checker));
	memset(e->user, 0, sizeof(e->user));
	return -1;
}

/* Nothing half-decoded for a careless caller to trust. */
static void
cache_record_clear(struct store_cache_entry *e)
{
	e->created = 0;
	e->expires = 0;
	memset(e->verifier, 0, sizeof(e->verifier));
	memset(e->canonical, 0, sizeof(e->canonical));
	memset(e->scope, 0, sizeof(e->scope));
}

int
store_cache_record_encode(const struct store_cache_entry *e,
    unsigned char *buf, size_t buflen, char *err, size_t errlen)
{
	char		 canon[CONF_AUTH_NAME_MAX];
	char		 safe[CONF_AUTH_NAME_MAX];
	const char	*why;
	size_t		 clen = 0, slen, o;

	if (!cache_kind_ok(e->kind)) {
		errbuf_set(err, errlen, "unknown cache entry kind %d", e->kind);
		return -1;
	}
	canon[0] = '\0';
	slen = strnlen(e->scope, sizeof(e->scope));
	if (e->kind == STORE_CACHE_NEGATIVE) {
		/* A refused password authenticates nobody. */
		if (e->canonical[0] != '\0' || slen != 0) {
			errbuf_set(err, errlen, "a negative cache entry has "
			    "neither a canonical name nor a scope");
			return -1;
		}
	} else if (name_normalize(e->canonical, canon, sizeof(canon),
	    &why) == -1) {
		errbuf_set(err, errlen, "canonical name \"%s\" %s",
		    escape_text(e->canonical, strnlen(e->canonical,
		    sizeof(e->canonical)), safe, sizeof(safe)), why);
		return -1;
	}
	clen = strlen(canon);
	if (slen >= sizeof(e->scope) || slen > 255) {
		errbuf_set(err, errlen, "the scope is longer than 255 octets");
		return -1;
	}
	if (!scope_ok((const unsigned char *)e->scope, slen)) {
		errbuf_set(err, errlen, "the scope has an octet that is not "
		    "printable ASCII");
		return -1;
	}
	if (buflen < STORE_CACHE_RECORD_MAX) {
		errbuf_set(err, errlen, "cache record buffer too small");
		return -1;
	}

	buf[0] = STORE_CACHE_RECORD_VERSION;
	buf[1] = 0;
	put_i64(buf + 2, e->created);
	put_i64(buf + 10, e->expires);
	/* A token's entry holds only the token's hash, in its key. */
	if (e->kind == STORE_CACHE_TOKEN)
		memset(buf + 18, 0, STORE_CACHE_HASH_LEN);
	else
		memcpy(buf + 18, e->verifier, STORE_CACHE_HASH_LEN);
	o = CACHE_HEADER;
	buf[o++] = (unsigned char)clen;
	memcpy(buf + o, canon, clen);
	o += clen;
	buf[o++] = (unsigned char)slen;
	memcpy(buf + o, e->scope, slen);
	o += slen;
	return (int)o;
}

int
store_cache_record_decode(const unsigned char *buf, size_t len,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	char		 name[CONF_AUTH_NAME_MAX];
	const char	*why;
	size_t		 clen, slen, i, o;

	cache_record_clear(e);
	if (!cache_kind_ok(e->kind)) {
		errbuf_set(err, errlen, "unknown cache entry kind %d", e->kind);
		return -1;
	}
	if (len < 1) {
		errbuf_set(err, errlen, "the record is empty");
		return -1;
	}
	if (buf[0] != STORE_CACHE_RECORD_VERSION) {
		if (buf[0] > STORE_CACHE_RECORD_VERSION)
			errbuf_set(err, errlen, "the record has format %u, this "
			    "portcullis understands up to %d: upgrade "
			    "portcullis", buf[0], STORE_CACHE_RECORD_VERSION);
		else
			errbuf_set(err, errlen, "unknown record format %u",
			    buf[0]);
		return -1;
	}
	if (len < CACHE_HEADER + 2) {
		errbuf_set(err, errlen, "the record is %zu octets, too short",
		    len);
		return -1;
	}
	if (buf[1] != 0) {
		errbuf_set(err, errlen, "unknown flags 0x%02x", buf[1]);
		return -1;
	}
	if (e->kind == STORE_CACHE_TOKEN)
		for (i = 0; i < STORE_CACHE_HASH_LEN; i++)
			if (buf[18 + i] != 0) {
				errbuf_set(err, errlen, "a token entry holds a "
				    "verifier");
				return -1;
			}

	o = CACHE_HEADER;
	clen = buf[o++];
	if (clen + 1 > len - o) {
		errbuf_set(err, errlen, "the canonical name (%zu octets) "
		    "overruns the record (%zu octets)", clen, len);
		return -1;
	}
	if (e->kind == STORE_CACHE_NEGATIVE && clen != 0) {
		errbuf_set(err, errlen, "a negative entry has a canonical "
		    "name");
		return -1;
	}
	if (e->kind != STORE_CACHE_NEGATIVE && clen == 0) {
		errbuf_set(err, errlen, "the canonical name is empty");
		return -1;
	}
	memcpy(name, buf + o, clen);
	name[clen] = '\0';
	o += clen;
	/* name_normalize() would stop at a NUL, and pass the rest. */
	if (memchr(name, '\0', clen) != NULL) {
		errbuf_set(err, errlen, "the canonical name contains a control "
		    "character");
		goto bad;
	}
	if (clen > 0) {
		if (name_normalize(name, e->canonical, sizeof(e->canonical),
		    &why) == -1) {
			errbuf_set(err, errlen, "the canonical name %s", why);
			goto bad;
		}
		if (strcmp(name, e->canonical) != 0) {
			errbuf_set(err, errlen, "the canonical name is not "
			    "normalised");
			goto bad;
		}
	}

	slen = buf[o++];
	if (slen > len - o) {
		errbuf_set(err, errlen, "the scope (%zu octets) overruns the "
		    "record (%zu octets)", slen, len);
		goto bad;
	}
	if (e->kind == STORE_CACHE_NEGATIVE && slen != 0) {
		errbuf_set(err, errlen, "a negative entry has a scope");
		goto bad;
	}
	if (!scope_ok(buf + o, slen)) {
		errbuf_set(err, errlen, "the scope has an octet that is not "
		    "printable ASCII");
		goto bad;
	}
	memcpy(e->scope, buf + o, slen);
	e->scope[slen] = '\0';
	o += slen;
	if (o != len) {
		errbuf_set(err, errlen, "%zu octets of garbage after the "
		    "record", len - o);
		goto bad;
	}
	e->created = get_i64(buf + 2);
	e->expires = get_i64(buf + 10);
	memcpy(e->verifier, buf + 18, STORE_CACHE_HASH_LEN);
	return 0;
 bad:
	cache_record_clear(e);
	return -1;
}

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
	const char	*why;

	norm[0] = '\0';
	if (user != NULL && name_normalize(user, norm, normlen, &why) == -1) {
		name_error(user, why, err, errlen);
		return -1;
	}
	return 0;
}

/*
 * Decode one entry of the cache database into e: 0; -1 its key is
 * corrupt; -2 its record is (e holds the key).  why says what is wrong.
 */
static int
cache_entry(const MDB_val *key, const MDB_val *val,
    struct store_cache_entry *e, char *why, size_t whylen)
{
	memset(e, 0, sizeof(*e));
	if (store_cache_key_decode(key->mv_data, key->mv_size, e, why,
	    whylen) == -1)
		return -1;
	if (store_cache_record_decode(val->mv_data, val->mv_size, e, why,
	    whylen) == -1)
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

	cache_record_clear(e);
	if ((len = cache_key(e, kbuf, sizeof(kbuf), user, err,
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
	if (txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	key.mv_data = kbuf;
	key.mv_size = (size_t)len;
	rc = mdb_get(txn, st->cache, &key, &val);
	if (rc == MDB_NOTFOUND) {
		txn_abort(st, txn);
		errbuf_set(err, errlen, "no cache entry");
		return 0;
	}
	if (rc != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot read the cache", rc, err, errlen);
		return -1;
	}
	memset(&d, 0, sizeof(d));
	d.kind = e->kind;
	rc = store_cache_record_decode(val.mv_data, val.mv_size, &d, why,
	    sizeof(why));
	txn_abort(st, txn);
	if (rc == -1) {
		cache_corrupt_error(st, &key, e, -2, why, err, errlen);
		return -1;
	}
	e->created = d.created;
	e->expires = d.expires;
	memcpy(e->verifier, d.verifier, sizeof(e->verifier));
	(void)strlcpy(e->canonical, d.canonical, sizeof(e->canonical));
	(void)strlcpy(e->scope, d.scope, sizeof(e->scope));
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
	if ((klen = cache_key(e, kbuf, sizeof(kbuf), user, err,
	    errlen)) < 0)
		return -1;
	if ((rlen = store_cache_record_encode(e, rbuf, sizeof(rbuf), err,
	    errlen)) == -1)
		return -1;
	if (txn_begin(st, 0, &txn, err, errlen) == -1) {
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
		txn_abort(st, txn);
		lmdb_error(st, "cannot write the cache", rc, err, errlen);
		return -1;
	}
	return txn_commit(st, txn, err, errlen);
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

	if (txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->cache, &cur)) != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot walk the cache", rc, err, errlen);
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
		txn_abort(st, txn);
		lmdb_error(st, "cannot delete from the cache", rc, err, errlen);
		return -1;
	}
	if (txn_commit(st, txn, err, errlen) == -1)
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

	if (txn_begin(st, 0, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_stat(txn, st->cache, &ms)) != 0 ||
	    (rc = mdb_drop(txn, st->cache, 0)) != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot empty the cache", rc, err, errlen);
		return -1;
	}
	if (txn_commit(st, txn, err, errlen) == -1)
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
	if (txn_begin(st, 1, &txn, err, errlen) == -1)
		return -1;
	if ((rc = mdb_cursor_open(txn, st->cache, &cur)) != 0) {
		txn_abort(st, txn);
		lmdb_error(st, "cannot list the cache", rc, err, errlen);
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
	txn_abort(st, txn);
	explicit_bzero(&e, sizeof(e));
	if (rc != MDB_NOTFOUND) {
		lmdb_error(st, "cannot list the cache", rc, err, errlen);
		return -1;
	}
	more_error(bad, err, errlen);
	return bad > 0 ? -1 : 0;
}
