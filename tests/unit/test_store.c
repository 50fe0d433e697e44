/*
 * test_store.c -- unit tests of common/store.c, the LMDB user store.
 *
 * Every test works in its own temporary directory; the store is the
 * subdirectory "store" of it, missing until a test creates it.  Where
 * a test must write what store.c never would (a newer layout, a
 * corrupt record), it uses LMDB directly, with the store closed: one
 * process must not open an environment twice.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <lmdb.h>

#include "config.h"
#include "store.h"

static char	 tmpdir[128];
static char	 dir[192];		/* tmpdir/store */
static char	 err[1024];

static void
setup(void)
{
	(void)umask(022);
	(void)strlcpy(tmpdir, "/tmp/portcullis-store-XXXXXX",
	    sizeof(tmpdir));
	cr_assert_not_null(mkdtemp(tmpdir));
	(void)snprintf(dir, sizeof(dir), "%s/store", tmpdir);
	err[0] = '\0';
}

static void
unlink_in(const char *d, const char *name)
{
	char	 path[PATH_MAX];

	(void)snprintf(path, sizeof(path), "%s/%s", d, name);
	(void)unlink(path);
}

static void
teardown(void)
{
	unlink_in(dir, "data.mdb");
	unlink_in(dir, "lock.mdb");
	(void)rmdir(dir);
	unlink_in(tmpdir, "file");
	(void)rmdir(tmpdir);
}

TestSuite(store, .init = setup, .fini = teardown);

static struct store *
open_ok(int flags)
{
	struct store	*st;

	st = store_open(dir, flags, err, sizeof(err));
	cr_assert_not_null(st, "store_open: %s", err);
	return st;
}

static void
user_init(struct store_user *u, const char *name, const char *hash)
{
	memset(u, 0, sizeof(*u));
	(void)strlcpy(u->name, name, sizeof(u->name));
	(void)strlcpy(u->hash, hash, sizeof(u->hash));
}

static void
add_ok(struct store *st, const char *name, const char *hash)
{
	struct store_user	 u;

	user_init(&u, name, hash);
	cr_assert_eq(store_user_put(st, &u, STORE_CREATE_ONLY, err,
	    sizeof(err)), 0, "put %s: %s", name, err);
}

static void
expect_err(const char *fmt, ...)
    __attribute__((__format__ (printf, 1, 2)));

static void
expect_err(const char *fmt, ...)
{
	va_list	 ap;
	char	 want[2048];

	va_start(ap, fmt);
	(void)vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	cr_expect_str_eq(err, want);
}

/* Raw LMDB: put key -> val in database db of the (closed) store. */
static void
raw_put(const char *db, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 dbi;
	MDB_val		 k, v;

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, STORE_MAXDBS), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, db, MDB_CREATE, &dbi), 0);
	k.mv_data = (void *)(uintptr_t)key;
	k.mv_size = klen;
	v.mv_data = (void *)(uintptr_t)val;
	v.mv_size = vlen;
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

Test(store, create_makes_private_directory_and_files)
{
	struct store	*st;
	struct stat	 sb;
	char		 path[PATH_MAX];

	st = open_ok(STORE_CREATE);
	cr_assert_eq(stat(dir, &sb), 0);
	cr_expect(S_ISDIR(sb.st_mode));
	cr_expect_eq(sb.st_mode & 07777, 0700);
	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 07777, 0600);
	(void)snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_expect_eq(sb.st_mode & 07777, 0600);
	store_close(st);

	/* Opened again, created or not, it is the same empty store. */
	st = open_ok(STORE_CREATE);
	store_close(st);
	st = open_ok(0);
	store_close(st);
	st = open_ok(STORE_RDONLY);
	store_close(st);
}

Test(store, missing_store_is_a_clear_error)
{
	char	 path[PATH_MAX];

	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	expect_err("store %s does not exist: create it with authctl user add",
	    dir);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s does not exist: create it with authctl user add",
	    dir);
	/* Nothing was created on the way. */
	cr_expect_eq(access(dir, F_OK), -1);

	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s does not exist (the directory holds no "
	    "data.mdb): create it with authctl user add", dir);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	expect_err("store %s does not exist (the directory holds no "
	    "data.mdb): create it with authctl user add", dir);
	(void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
	cr_expect_eq(access(path, F_OK), -1);
}

Test(store, bad_open_arguments)
{
	char	 path[PATH_MAX];
	FILE	*f;

	cr_expect_null(store_open(dir, STORE_RDONLY | STORE_CREATE, err,
	    sizeof(err)));
	expect_err("store %s: cannot create a store opened read-only", dir);
	cr_expect_null(store_open("", 0, err, sizeof(err)));
	cr_expect_null(store_open(NULL, 0, NULL, 0));

	(void)snprintf(path, sizeof(path), "%s/file", tmpdir);
	cr_assert_not_null(f = fopen(path, "w"));
	(void)fclose(f);
	cr_expect_null(store_open(path, STORE_CREATE, err, sizeof(err)));
	expect_err("store %s is not a directory", path);

	(void)snprintf(path, sizeof(path), "%s/no/such/store", tmpdir);
	cr_expect_null(store_open(path, STORE_CREATE, err, sizeof(err)));
	expect_err("store %s: cannot create the directory: No such file or "
	    "directory", path);
}

Test(store, add_get)
{
	struct store		*st;
	struct store_user	 u;
	time_t			 now = time(NULL);

	st = open_ok(STORE_CREATE);
	user_init(&u, "alice@example.org", "$y$j9T$abc$def");
	u.naddrs = 2;
	(void)strlcpy(u.addrs[0], "alice@example.org", sizeof(u.addrs[0]));
	(void)strlcpy(u.addrs[1], "postmaster@Example.ORG",
	    sizeof(u.addrs[1]));
	cr_assert_eq(store_user_put(st, &u, STORE_CREATE_ONLY, err,
	    sizeof(err)), 0, "%s", err);

	memset(&u, 0xa5, sizeof(u));
	cr_assert_eq(store_user_get(st, "alice@example.org", &u, err,
	    sizeof(err)), 1, "%s", err);
	cr_expect_str_eq(u.name, "alice@example.org");
	cr_expect_str_eq(u.hash, "$y$j9T$abc$def");
	cr_expect_eq(u.locked, 0);
	cr_expect(u.created >= now && u.created <= now + 5);
	cr_expect_eq(u.changed, u.created);
	cr_assert_eq(u.naddrs, 2);
	cr_expect_str_eq(u.addrs[0], "alice@example.org");
	cr_expect_str_eq(u.addrs[1], "postmaster@example.org");

	/* Again: "user exists", and the first record stays. */
	user_init(&u, "alice@EXAMPLE.org", "$6$x$y");
	cr_expect_eq(store_user_put(st, &u, STORE_CREATE_ONLY, err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "user \"alice@example.org\" exists");
	cr_assert_eq(store_user_get(st, "alice@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_str_eq(u.hash, "$y$j9T$abc$def");

	cr_expect_eq(store_user_get(st, "bob@example.org", &u, err,
	    sizeof(err)), 0);
	cr_expect_str_eq(err, "no such user \"bob@example.org\"");
	store_close(st);
}

Test(store, replace_keeps_created_and_moves_changed)
{
	struct store		*st;
	struct store_user	 u;

	st = open_ok(STORE_CREATE);
	user_init(&u, "bob", "$6$old$hash");
	cr_expect_eq(store_user_put(st, &u, STORE_REPLACE_ONLY, err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "no such user \"bob\"");
	cr_expect_eq(store_user_get(st, "bob", &u, err, sizeof(err)), 0);

	/* Explicit times are kept as given. */
	user_init(&u, "bob", "$6$old$hash");
	u.created = 1000;
	u.changed = 2000;
	cr_assert_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(store_user_get(st, "bob", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.created, 1000);
	cr_expect_eq(u.changed, 2000);

	user_init(&u, "bob", "$6$new$hash");
	cr_assert_eq(store_user_put(st, &u, STORE_REPLACE_ONLY, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_user_get(st, "bob", &u, err, sizeof(err)), 1);
	cr_expect_str_eq(u.hash, "$6$new$hash");
	cr_expect_eq(u.created, 1000);
	cr_expect(u.changed >= time(NULL) - 5);

	/* Flags 0 replaces too. */
	user_init(&u, "bob", "$6$newer$hash");
	cr_assert_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0);
	cr_assert_eq(store_user_get(st, "bob", &u, err, sizeof(err)), 1);
	cr_expect_str_eq(u.hash, "$6$newer$hash");
	cr_expect_eq(u.created, 1000);

	cr_expect_eq(store_user_put(st, &u,
	    STORE_CREATE_ONLY | STORE_REPLACE_ONLY, err, sizeof(err)), -1);
	store_close(st);
}

Test(store, lock_and_unlock)
{
	struct store		*st;
	struct store_user	 u;

	st = open_ok(STORE_CREATE);
	add_ok(st, "carol@example.org", "$y$x$y");
	cr_assert_eq(store_user_get(st, "carol@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_eq(u.locked, 0);
	u.locked = 1;
	cr_assert_eq(store_user_put(st, &u, STORE_REPLACE_ONLY, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_user_get(st, "carol@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_eq(u.locked, 1);
	cr_expect_str_eq(u.hash, "$y$x$y");
	u.locked = 0;
	cr_assert_eq(store_user_put(st, &u, STORE_REPLACE_ONLY, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_user_get(st, "carol@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_eq(u.locked, 0);
	store_close(st);
}

Test(store, delete)
{
	struct store		*st;
	struct store_user	 u;

	st = open_ok(STORE_CREATE);
	add_ok(st, "dave@example.org", "$y$x$y");
	add_ok(st, "erin@example.org", "$y$x$y");
	cr_expect_eq(store_user_del(st, "dave@EXAMPLE.ORG", err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(store_user_get(st, "dave@example.org", &u, err,
	    sizeof(err)), 0);
	cr_expect_eq(store_user_get(st, "erin@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_eq(store_user_del(st, "dave@example.org", err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "no such user \"dave@example.org\"");
	cr_expect_eq(store_user_del(st, "bad name", err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"bad name\" contains a space");
	store_close(st);
}

struct collect {
	char	 names[8][64];
	int	 n;
	int	 stop_after;
};

static int
collect_cb(const struct store_user *u, void *arg)
{
	struct collect	*c = arg;

	if (c->n < 8)
		(void)strlcpy(c->names[c->n], u->name, sizeof(c->names[0]));
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

Test(store, list_in_name_order)
{
	struct store	*st;
	struct collect	 c;

	st = open_ok(STORE_CREATE);
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_user_list(st, collect_cb, &c, err, sizeof(err)),
	    0);
	cr_expect_eq(c.n, 0);

	add_ok(st, "zed@example.org", "$y$a$b");
	add_ok(st, "amy@example.org", "$y$a$b");
	add_ok(st, "Max@Example.Org", "$y$a$b");
	memset(&c, 0, sizeof(c));
	cr_assert_eq(store_user_list(st, collect_cb, &c, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(c.n, 3);
	cr_expect_str_eq(c.names[0], "Max@example.org");
	cr_expect_str_eq(c.names[1], "amy@example.org");
	cr_expect_str_eq(c.names[2], "zed@example.org");

	/* The callback stops the walk. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	cr_expect_eq(store_user_list(st, collect_cb, &c, err, sizeof(err)),
	    0);
	cr_expect_eq(c.n, 2);
	store_close(st);
}

static void
expect_norm(const char *in, const char *want)
{
	char	 out[CONF_AUTH_NAME_MAX];

	cr_expect_eq(store_name_normalize(in, out, sizeof(out)), 0, "%s",
	    in);
	cr_expect_str_eq(out, want);
}

static void
expect_refused(const char *in)
{
	char	 out[CONF_AUTH_NAME_MAX];

	cr_expect_eq(store_name_normalize(in, out, sizeof(out)), -1, "\"%s\"",
	    in);
}

Test(store, name_normalisation)
{
	char	 big[CONF_AUTH_NAME_MAX + 1], out[CONF_AUTH_NAME_MAX];
	char	 small[8];

	expect_norm("User@Example.ORG", "User@example.org");
	expect_norm("bob", "bob");
	expect_norm("BOB", "BOB");
	expect_norm("a@b@Example.ORG", "a@b@example.org");
	expect_norm("A.B+Tag@EXAMPLE.org", "A.B+Tag@example.org");
	/* UTF-8 is kept; only ASCII is folded. */
	expect_norm("J\xc3\xbcrgen@B\xc3\x9c" "CHER.Example",
	    "J\xc3\xbcrgen@b\xc3\x9c" "cher.example");

	expect_refused("");
	expect_refused(" bob");
	expect_refused("bob ");
	expect_refused("bo b");
	expect_refused("bob\t");
	expect_refused("bob\r\n");
	expect_refused("bob\x7f");
	expect_refused("bob\x01");
	expect_refused("bob\xc2\x85");		/* NEL, a C1 control */
	expect_refused("bob\xc3");		/* truncated UTF-8 */
	expect_refused("bob\xc3(");
	expect_refused("bob\xc0\xaf");		/* overlong '/' */
	expect_refused("bob\xed\xa0\x80");	/* a surrogate */
	expect_refused("bob\xf5\x80\x80\x80");
	expect_refused("bob\xff");
	expect_refused("@example.org");
	expect_refused("bob@");
	expect_refused("bob@example.org@");

	memset(big, 'a', sizeof(big));
	big[CONF_AUTH_NAME_MAX - 1] = '\0';	/* 255 octets: fine */
	cr_expect_eq(store_name_normalize(big, out, sizeof(out)), 0);
	big[CONF_AUTH_NAME_MAX - 1] = 'a';
	big[CONF_AUTH_NAME_MAX] = '\0';		/* 256: too long */
	cr_expect_eq(store_name_normalize(big, out, sizeof(out)), -1);
	cr_expect_eq(store_name_normalize("12345678", small, sizeof(small)),
	    -1);
	cr_expect_eq(store_name_normalize("1234567", small, sizeof(small)),
	    0);
	cr_expect_eq(store_name_normalize(NULL, out, sizeof(out)), -1);

	/* In place. */
	(void)strlcpy(out, "X@Y.Z", sizeof(out));
	cr_expect_eq(store_name_normalize(out, out, sizeof(out)), 0);
	cr_expect_str_eq(out, "X@y.z");
}

Test(store, normalised_names_in_the_store)
{
	struct store		*st;
	struct store_user	 u;

	st = open_ok(STORE_CREATE);
	add_ok(st, "User@Example.ORG", "$y$a$b");
	cr_expect_eq(store_user_get(st, "User@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_str_eq(u.name, "User@example.org");
	cr_expect_eq(store_user_get(st, "User@EXAMPLE.org", &u, err,
	    sizeof(err)), 1);
	/* The local part is case-sensitive (RFC 5321 2.4). */
	cr_expect_eq(store_user_get(st, "user@example.org", &u, err,
	    sizeof(err)), 0);

	/* A name that cannot be stored is no such user, and says why. */
	cr_expect_eq(store_user_get(st, "bad\x01name", &u, err,
	    sizeof(err)), 0);
	cr_expect_str_eq(err, "user name \"bad\\x01name\" contains a control "
	    "character");
	user_init(&u, "", "$y$a$b");
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"\" is empty");
	user_init(&u, "a b", "$y$a$b");
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"a b\" contains a space");
	store_close(st);
}

Test(store, addresses_and_hash_are_checked)
{
	struct store		*st;
	struct store_user	 u;
	size_t			 i;

	st = open_ok(STORE_CREATE);

	user_init(&u, "frank", "$y$a$b");
	u.naddrs = 1;
	(void)strlcpy(u.addrs[0], "frank", sizeof(u.addrs[0]));
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "address \"frank\" has no '@'");

	u.naddrs = 2;
	(void)strlcpy(u.addrs[0], "frank@Example.org", sizeof(u.addrs[0]));
	(void)strlcpy(u.addrs[1], "frank@example.ORG", sizeof(u.addrs[1]));
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "address \"frank@example.org\" is listed twice");

	(void)strlcpy(u.addrs[1], "fr ank@example.org", sizeof(u.addrs[1]));
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "address \"fr ank@example.org\" contains a "
	    "space");

	memset(u.addrs[1], 'a', STORE_ADDR_MAX + 1);
	u.addrs[1][STORE_ADDR_MAX + 1] = '\0';
	u.addrs[1][3] = '@';
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect(strstr(err, "is longer than 254 octets") != NULL, "%s",
	    err);
	u.addrs[1][STORE_ADDR_MAX] = '\0';	/* 254: fine */
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0, "%s",
	    err);

	u.naddrs = STORE_ADDRS_MAX + 1;
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "\"frank\" has 17 addresses, more than 16");

	u.naddrs = STORE_ADDRS_MAX;
	for (i = 0; i < STORE_ADDRS_MAX; i++)
		(void)snprintf(u.addrs[i], sizeof(u.addrs[i]),
		    "frank%zu@example.org", i);
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(store_user_get(st, "frank", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.naddrs, STORE_ADDRS_MAX);
	cr_expect_str_eq(u.addrs[15], "frank15@example.org");

	u.naddrs = 0;
	(void)strlcpy(u.hash, "$y$a b$c", sizeof(u.hash));
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "the hash contains a space, a control "
	    "character or a non-ASCII octet");
	memset(u.hash, 'h', sizeof(u.hash));	/* not terminated */
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "the hash of \"frank\" is too long");

	/* No hash at all: a user who cannot log in with a password. */
	u.hash[0] = '\0';
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(store_user_get(st, "frank", &u, err, sizeof(err)), 1);
	cr_expect_str_eq(u.hash, "");
	store_close(st);
}

Test(store, read_only)
{
	struct store		*st;
	struct store_user	 u;

	st = open_ok(STORE_CREATE);
	add_ok(st, "gina", "$y$a$b");
	store_close(st);

	st = open_ok(STORE_RDONLY);
	cr_expect_eq(store_user_get(st, "gina", &u, err, sizeof(err)), 1);
	user_init(&u, "hank", "$y$a$b");
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	expect_err("store %s is open read-only", dir);
	cr_expect_eq(store_user_del(st, "gina", err, sizeof(err)), -1);
	expect_err("store %s is open read-only", dir);
	store_close(st);
}

Test(store, newer_layout_is_refused)
{
	struct store	*st;

	st = open_ok(STORE_CREATE);
	store_close(st);
	raw_put("meta", "layout", 6, "99", 2);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	expect_err("store %s has layout 99, this portcullis understands up "
	    "to 1: upgrade portcullis", dir);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s has layout 99, this portcullis understands up "
	    "to 1: upgrade portcullis", dir);
	/* Creating does not overwrite it either. */
	cr_expect_null(store_open(dir, STORE_CREATE, err, sizeof(err)));
	expect_err("store %s has layout 99, this portcullis understands up "
	    "to 1: upgrade portcullis", dir);

	raw_put("meta", "layout", 6, "1", 1);
	st = open_ok(0);
	store_close(st);
}

Test(store, corrupt_layout_and_foreign_environments)
{
	struct store	*st;

	st = open_ok(STORE_CREATE);
	store_close(st);
	raw_put("meta", "layout", 6, "one", 3);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s: the layout record in its meta database is "
	    "corrupt", dir);
	raw_put("meta", "layout", 6, "0", 1);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	raw_put("meta", "layout", 6, "", 0);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	raw_put("meta", "layout", 6, "99999999999999999999", 20);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	expect_err("store %s: the layout record in its meta database is "
	    "corrupt", dir);
	teardown();
	setup();

	/* Some other program's LMDB environment. */
	cr_assert_eq(mkdir(dir, 0700), 0);
	raw_put("other", "k", 1, "v", 1);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s is not a portcullis store: it has no meta or "
	    "users database", dir);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	expect_err("store %s is not a portcullis store: it has no meta or "
	    "users database", dir);
}

static int
count_cb(const struct store_user *u, void *arg)
{
	(void)u;
	(*(int *)arg)++;
	return 0;
}

Test(store, corrupt_record_is_an_error_not_a_crash)
{
	static const unsigned char garbage[] = "\x01\x00garbage";
	struct store		*st;
	struct store_user	 u;
	unsigned char		 rec[STORE_RECORD_MAX];
	int			 n = 0;

	st = open_ok(STORE_CREATE);
	add_ok(st, "good", "$y$a$b");
	store_close(st);
	raw_put("users", "mallory", 7, garbage, sizeof(garbage) - 1);

	st = open_ok(STORE_RDONLY);
	cr_expect_eq(store_user_get(st, "good", &u, err, sizeof(err)), 1);
	cr_expect_eq(store_user_get(st, "mallory", &u, err, sizeof(err)),
	    -1);
	expect_err("store %s: the record of user \"mallory\" is corrupt: "
	    "the record is 9 octets, too short", dir);
	/* The walk goes on past it, and says so. */
	cr_expect_eq(store_user_list(st, count_cb, &n, err, sizeof(err)),
	    -1);
	cr_expect_eq(n, 1);
	expect_err("store %s: the record of user \"mallory\" is corrupt: "
	    "the record is 9 octets, too short", dir);
	store_close(st);

	/* A record of a newer format. */
	memset(&u, 0, sizeof(u));
	cr_assert_eq(store_record_encode(&u, rec, sizeof(rec), err,
	    sizeof(err)), 20);
	rec[0] = 2;
	raw_put("users", "newer", 5, rec, 20);
	/* A key that is no normalised name, and a second bad record. */
	raw_put("users", "bad\x01key", 7, rec, 20);
	st = open_ok(0);
	cr_expect_eq(store_user_get(st, "newer", &u, err, sizeof(err)), -1);
	expect_err("store %s: the record of user \"newer\" is corrupt: the "
	    "record has format 2, this portcullis understands up to 1: "
	    "upgrade portcullis", dir);
	n = 0;
	cr_expect_eq(store_user_list(st, count_cb, &n, err, sizeof(err)),
	    -1);
	cr_expect_eq(n, 1);
	expect_err("store %s: the record of user \"bad\\x01key\" is corrupt: "
	    "its name is not a normalised name (and 2 more)", dir);

	/* put repairs a corrupt record; del removes one. */
	user_init(&u, "mallory", "$y$a$b");
	cr_expect_eq(store_user_put(st, &u, STORE_REPLACE_ONLY, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(store_user_get(st, "mallory", &u, err, sizeof(err)), 1);
	cr_expect_eq(store_user_del(st, "newer", err, sizeof(err)), 0);
	store_close(st);
}

static void
expect_decode_fails(const unsigned char *buf, size_t len, const char *why)
{
	struct store_user	 u;
	char			 e[256];

	cr_expect_eq(store_record_decode(buf, len, &u, e, sizeof(e)), -1);
	if (why != NULL)
		cr_expect_str_eq(e, why);
}

/* The codec, byte by byte: every truncation, every damaged length. */
Test(store, record_decode_is_defensive)
{
	struct store_user	 u, v;
	unsigned char		 rec[STORE_RECORD_MAX], bad[STORE_RECORD_MAX];
	char			 e[256];
	int			 len, i, j;

	memset(&u, 0, sizeof(u));
	(void)strlcpy(u.hash, "$y$j9T$salt$hash", sizeof(u.hash));
	u.locked = 1;
	u.created = -5;
	u.changed = INT64_MAX;
	u.naddrs = 2;
	(void)strlcpy(u.addrs[0], "a@b.c", sizeof(u.addrs[0]));
	(void)strlcpy(u.addrs[1], "d@e.f", sizeof(u.addrs[1]));
	len = store_record_encode(&u, rec, sizeof(rec), e, sizeof(e));
	cr_assert_eq(len, 19 + 16 + 1 + 6 + 6, "%s", e);
	cr_expect_eq(rec[0], 1);
	cr_expect_eq(rec[1], 1);
	cr_expect_eq(rec[2], 0xfb);	/* -5, little-endian */
	cr_expect_eq(rec[9], 0xff);
	cr_expect_eq(rec[18], 16);

	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_record_decode(rec, (size_t)len, &v, e, sizeof(e)),
	    0, "%s", e);
	cr_expect_str_eq(v.hash, u.hash);
	cr_expect_eq(v.locked, 1);
	cr_expect_eq(v.created, -5);
	cr_expect_eq(v.changed, INT64_MAX);
	cr_expect_eq(v.naddrs, 2);
	cr_expect_str_eq(v.addrs[1], "d@e.f");

	for (i = 0; i < len; i++)
		expect_decode_fails(rec, (size_t)i, NULL);
	expect_decode_fails(rec, 0, "the record is empty");
	memcpy(bad, rec, (size_t)len);
	bad[len] = 0;
	expect_decode_fails(bad, (size_t)len + 1,
	    "1 octets of garbage after the record");

	memcpy(bad, rec, (size_t)len);
	bad[0] = 0;
	expect_decode_fails(bad, (size_t)len, "unknown record format 0");
	memcpy(bad, rec, (size_t)len);
	bad[1] = 0x03;
	expect_decode_fails(bad, (size_t)len, "unknown flags 0x03");
	memcpy(bad, rec, (size_t)len);
	bad[18] = 255;
	expect_decode_fails(bad, (size_t)len,
	    "the hash (255 octets) overruns the record (48 octets)");
	memcpy(bad, rec, (size_t)len);
	bad[20] = ' ';
	expect_decode_fails(bad, (size_t)len,
	    "the hash has an octet that is not printable ASCII");
	memcpy(bad, rec, (size_t)len);
	bad[35] = 17;
	expect_decode_fails(bad, (size_t)len, "17 addresses, more than 16");
	memcpy(bad, rec, (size_t)len);
	bad[35] = 3;
	expect_decode_fails(bad, (size_t)len, "address 3 is missing");
	memcpy(bad, rec, (size_t)len);
	bad[36] = 0;
	expect_decode_fails(bad, (size_t)len,
	    "address 1 has a bad length (0 octets)");
	memcpy(bad, rec, (size_t)len);
	bad[42] = 200;
	expect_decode_fails(bad, (size_t)len,
	    "address 2 has a bad length (200 octets)");
	memcpy(bad, rec, (size_t)len);
	bad[38] = '\n';
	expect_decode_fails(bad, (size_t)len,
	    "address 1 contains a control character");
	memcpy(bad, rec, (size_t)len);
	bad[39] = 'B';
	expect_decode_fails(bad, (size_t)len, "address 1 is not normalised");
	memcpy(bad, rec, (size_t)len);
	bad[41] = '@';
	expect_decode_fails(bad, (size_t)len,
	    "address 1 has an empty domain");
	memcpy(bad, rec, (size_t)len);
	bad[43] = '@';
	bad[44] = 'x';
	expect_decode_fails(bad, (size_t)len,
	    "address 2 has an empty local part");

	/* Every single octet changed to every value: no crash. */
	for (i = 0; i < len; i++)
		for (j = 0; j < 256; j++) {
			memcpy(bad, rec, (size_t)len);
			bad[i] = (unsigned char)j;
			(void)store_record_decode(bad, (size_t)len, &v, e,
			    sizeof(e));
			cr_assert_leq(v.naddrs, STORE_ADDRS_MAX);
			cr_assert_lt(strlen(v.hash), sizeof(v.hash));
		}
	/* Random records. */
	srandom(1);
	for (i = 0; i < 20000; i++) {
		size_t	 n = (size_t)random() % sizeof(bad);

		for (j = 0; j < (int)n; j++)
			bad[j] = (unsigned char)random();
		if (n > 0)
			bad[0] = 1;
		if (n > 35 && i % 2 == 0)
			bad[18] = (unsigned char)(random() % 16);
		(void)store_record_decode(bad, n, &v, e, sizeof(e));
		cr_assert_leq(v.naddrs, STORE_ADDRS_MAX);
	}
}

/*
 * authctl in another process adds a user while this one holds the
 * store open: the next get here sees it; a delete likewise.
 */
Test(store, writer_in_another_process_is_seen)
{
	struct store		*st, *cst;
	struct store_user	 u;
	pid_t			 pid;
	int			 status;

	st = open_ok(STORE_CREATE);
	cr_expect_eq(store_user_get(st, "ivan@example.org", &u, err,
	    sizeof(err)), 0);

	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		/* Its own environment; the parent's is not touched. */
		if ((cst = store_open(dir, 0, err, sizeof(err))) == NULL)
			_exit(2);
		user_init(&u, "ivan@example.org", "$y$a$b");
		if (store_user_put(cst, &u, STORE_CREATE_ONLY, err,
		    sizeof(err)) == -1)
			_exit(3);
		store_close(cst);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d", status);
	cr_expect_eq(store_user_get(st, "ivan@example.org", &u, err,
	    sizeof(err)), 1, "%s", err);
	cr_expect_str_eq(u.hash, "$y$a$b");

	cr_assert_neq(pid = fork(), -1);
	if (pid == 0) {
		if ((cst = store_open(dir, 0, err, sizeof(err))) == NULL)
			_exit(2);
		if (store_user_del(cst, "ivan@example.org", err,
		    sizeof(err)) == -1)
			_exit(3);
		store_close(cst);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	cr_expect_eq(store_user_get(st, "ivan@example.org", &u, err,
	    sizeof(err)), 0);
	store_close(st);
}

#define NREADERS	4
#define NREADS		2000

struct reader {
	struct store	*st;
	int		 found, errors;
};

static void *
reader(void *arg)
{
	struct reader		*r = arg;
	struct store_user	 u;
	char			 e[256];
	int			 i, rc;

	for (i = 0; i < NREADS; i++) {
		rc = store_user_get(r->st, i % 2 ? "judy" : "nobody", &u, e,
		    sizeof(e));
		if (rc == 1 && strcmp(u.hash, "$y$a$b") == 0)
			r->found++;
		else if (rc != 0)
			r->errors++;
	}
	return NULL;
}

/* Reads from several threads at once, while this thread writes. */
Test(store, threads_read_at_once)
{
	struct store	*st;
	struct reader	 r[NREADERS];
	pthread_t	 t[NREADERS];
	char		 name[32];
	int		 i;

	st = open_ok(STORE_CREATE);
	add_ok(st, "judy", "$y$a$b");
	for (i = 0; i < NREADERS; i++) {
		r[i].st = st;
		r[i].found = r[i].errors = 0;
		cr_assert_eq(pthread_create(&t[i], NULL, reader, &r[i]), 0);
	}
	for (i = 0; i < 50; i++) {
		(void)snprintf(name, sizeof(name), "user%d", i);
		add_ok(st, name, "$y$c$d");
	}
	for (i = 0; i < NREADERS; i++) {
		cr_assert_eq(pthread_join(t[i], NULL), 0);
		cr_expect_eq(r[i].found, NREADS / 2);
		cr_expect_eq(r[i].errors, 0);
	}
	store_close(st);
}

/* As root, a process of another uid is told which file and uid. */
Test(store, permission_denied_names_file_and_uid)
{
	struct store	*st;
	char		 path[256];
	pid_t		 pid;
	int		 round, status, fd[2];
	ssize_t		 n;

	if (geteuid() != 0)
		cr_skip_test("needs root to run as another uid");
	st = open_ok(STORE_CREATE);
	store_close(st);
	cr_assert_eq(chmod(tmpdir, 0755), 0);
	(void)snprintf(path, sizeof(path), "%s/lock.mdb", dir);

	for (round = 0; round < 2; round++) {
		/* Round 1: the directory opens; lock.mdb does not. */
		if (round == 1)
			cr_assert_eq(chmod(dir, 0755), 0);
		cr_assert_eq(pipe(fd), 0);
		cr_assert_neq(pid = fork(), -1);
		if (pid == 0) {
			(void)close(fd[0]);
			if (setgid(65534) == -1 || setuid(65534) == -1)
				_exit(2);
			st = store_open(dir, STORE_RDONLY, err, sizeof(err));
			if (st != NULL)
				_exit(3);
			if (write(fd[1], err, strlen(err)) == -1)
				_exit(4);
			_exit(0);
		}
		(void)close(fd[1]);
		memset(err, 0, sizeof(err));
		n = read(fd[0], err, sizeof(err) - 1);
		(void)close(fd[0]);
		cr_assert_eq(waitpid(pid, &status, 0), pid);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		    "child status %d", status);
		cr_assert_gt(n, 0);
		if (round == 0)
			expect_err("store %s: permission denied: %s belongs "
			    "to uid 0 (mode 0700) and this process runs as "
			    "uid 65534", dir, dir);
		else
			expect_err("store %s: permission denied: %s belongs "
			    "to uid 0 (mode 0600) and this process runs as "
			    "uid 65534", dir, path);
	}
}
