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

struct store {
	MDB_env			*env;
	MDB_dbi			 meta;
	MDB_dbi			 users;
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
 * (C0, DEL, C1) or spaces; else 0, with *why saying which.
 */
static int
text_ok(const unsigned char *s, size_t len, const char **why)
{
	size_t		 i = 0, n, k;
	uint32_t	 cp, min;
	unsigned char	 c;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			if (c == ' ') {
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
	if (!text_ok((const unsigned char *)in, len, why))
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
		if (!text_ok((const unsigned char *)u->addrs[i], alen, &why)) {
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
