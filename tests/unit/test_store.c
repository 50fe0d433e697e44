/*
 * test_store.c -- unit tests of store/, the LMDB user store.
 *
 * Every test works in its own temporary directory; the store is the
 * subdirectory "store" of it, missing until a test creates it.  Where
 * a test must write what the store never would (a newer layout, a
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
	    "to 3: upgrade portcullis", dir);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s has layout 99, this portcullis understands up "
	    "to 3: upgrade portcullis", dir);
	/* Creating does not overwrite it either. */
	cr_expect_null(store_open(dir, STORE_CREATE, err, sizeof(err)));
	expect_err("store %s has layout 99, this portcullis understands up "
	    "to 3: upgrade portcullis", dir);

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
	u.version = 1;
	cr_assert_eq(store_record_encode(&u, rec, sizeof(rec), err,
	    sizeof(err)), 20);
	rec[0] = 4;
	raw_put("users", "newer", 5, rec, 20);
	/* A key that is no normalised name, and a second bad record. */
	raw_put("users", "bad\x01key", 7, rec, 20);
	st = open_ok(0);
	cr_expect_eq(store_user_get(st, "newer", &u, err, sizeof(err)), -1);
	expect_err("store %s: the record of user \"newer\" is corrupt: the "
	    "record has format 4, this portcullis understands up to 3: "
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
	u.version = 1;	/* version 2 has its own test below */
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
	bad[41] = '\0';	/* "a@b.\0": no cutting an address short */
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

/* Version 2: SCRAM keys and app passwords, round trip and damage. */
Test(store, record_version_2)
{
	struct store_user	 u, v;
	unsigned char		 rec[STORE_RECORD_MAX], bad[STORE_RECORD_MAX];
	char			 e[256];
	int			 len, i, j;

	memset(&u, 0, sizeof(u));
	u.version = 2;	/* version 3 has its own test below */
	(void)strlcpy(u.hash, "$6$salt$hash", sizeof(u.hash));
	u.naddrs = 1;
	(void)strlcpy(u.addrs[0], "a@b.c", sizeof(u.addrs[0]));
	u.scram.saltlen = 16;
	memset(u.scram.salt, 's', 16);
	u.scram.iter = 4096;
	memset(u.scram.stored_key, 'k', 32);
	memset(u.scram.server_key, 'K', 32);
	u.napps = 2;
	(void)strlcpy(u.apps[0].label, "phone", sizeof(u.apps[0].label));
	u.apps[0].created = 10;
	u.apps[0].expires = 20;
	u.apps[0].flags = STORE_APP_SEND_ONLY;
	(void)strlcpy(u.apps[1].label, "lap-top_2.x", sizeof(u.apps[1].label));
	u.apps[1].last_used = 30;
	len = store_record_encode(&u, rec, sizeof(rec), e, sizeof(e));
	cr_assert_gt(len, 0, "%s", e);
	cr_expect_eq(rec[0], 2);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_record_decode(rec, (size_t)len, &v, e, sizeof(e)),
	    0, "%s", e);
	cr_expect_eq(v.version, 2);
	cr_expect_eq(v.scram.iter, 4096);
	cr_expect_eq(memcmp(&v.scram, &u.scram, sizeof(u.scram)), 0);
	cr_expect_eq(v.napps, 2);
	cr_expect_str_eq(v.apps[1].label, "lap-top_2.x");
	cr_expect_eq(v.apps[0].flags, STORE_APP_SEND_ONLY);
	cr_expect_eq(v.apps[0].expires, 20);
	cr_expect_eq(v.apps[1].last_used, 30);

	/* A version 1 record cannot hold them. */
	u.version = 1;
	cr_expect_eq(store_record_encode(&u, rec, sizeof(rec), e, sizeof(e)),
	    -1);
	cr_expect_str_eq(e, "a layout 1 store holds no SCRAM keys and no app "
	    "passwords: run authctl upgrade");
	u.version = 0;
	(void)strlcpy(u.apps[1].label, "phone", sizeof(u.apps[1].label));
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	(void)strlcpy(u.apps[1].label, "a b", sizeof(u.apps[1].label));
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	u.scram.saltlen = 8;
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);

	for (i = 0; i < len; i++)
		expect_decode_fails(rec, (size_t)i, NULL);
	for (i = 0; i < len; i++)
		for (j = 0; j < 256; j += 3) {
			memcpy(bad, rec, (size_t)len);
			bad[i] = (unsigned char)j;
			if (store_record_decode(bad, (size_t)len, &v, e,
			    sizeof(e)) == -1) {
				cr_assert_eq(v.napps, 0);
				cr_assert_eq(v.scram.saltlen, 0);
			}
			cr_assert_leq(v.napps, STORE_APPS_MAX);
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

/* The login cache. */

static void
cache_init(struct store_cache_entry *e, int kind, const char *checker,
    const char *user, const char *canonical)
{
	size_t	 i;

	memset(e, 0, sizeof(*e));
	e->kind = kind;
	(void)strlcpy(e->checker, checker, sizeof(e->checker));
	(void)strlcpy(e->user, user, sizeof(e->user));
	(void)strlcpy(e->canonical, canonical, sizeof(e->canonical));
	e->created = 1000;
	e->expires = 2000;
	for (i = 0; i < STORE_CACHE_HASH_LEN; i++) {
		if (kind != STORE_CACHE_TOKEN)
			e->verifier[i] = (uint8_t)(i + 1);
		else
			e->token_hash[i] = (uint8_t)(0xa0 + i);
	}
}

static void
cache_put_ok(struct store *st, const struct store_cache_entry *e)
{
	cr_assert_eq(store_cache_put(st, e, err, sizeof(err)), 0,
	    "put %c/%s/%s: %s", e->kind, e->checker, e->user, err);
}

/* Get the entry with e's key into *out: the result of store_cache_get. */
static int
cache_get(struct store *st, const struct store_cache_entry *e,
    struct store_cache_entry *out)
{
	memset(out, 0x5a, sizeof(*out));
	out->kind = e->kind;
	(void)strlcpy(out->checker, e->checker, sizeof(out->checker));
	(void)strlcpy(out->user, e->user, sizeof(out->user));
	memcpy(out->token_hash, e->token_hash, sizeof(out->token_hash));
	return store_cache_get(st, out, err, sizeof(err));
}

struct centries {
	struct store_cache_entry	 e[16];
	int				 n;
	int				 stop_after;
};

static int
centries_cb(const struct store_cache_entry *e, void *arg)
{
	struct centries	*c = arg;

	if (c->n < 16)
		c->e[c->n] = *e;
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static int
cache_count(struct store *st, const char *user)
{
	struct centries	 c;

	memset(&c, 0, sizeof(c));
	cr_assert_eq(store_cache_list(st, user, centries_cb, &c, err,
	    sizeof(err)), 0, "%s", err);
	return c.n;
}

Test(store, cache_round_trip_of_each_kind)
{
	struct store			*st;
	struct store_cache_entry	 p, n, t, got;
	static const uint8_t		 zero[STORE_CACHE_HASH_LEN];

	st = open_ok(STORE_CREATE);
	cache_init(&p, STORE_CACHE_PASSWORD, "remote", "Alice@Example.ORG",
	    "alice@EXAMPLE.org");
	(void)strlcpy(p.scope, "smtp offline_access", sizeof(p.scope));
	p.created = -1;
	p.expires = INT64_MAX;
	cache_put_ok(st, &p);
	cache_init(&n, STORE_CACHE_NEGATIVE, "remote", "alice@example.org", "");
	n.verifier[0] = 0xff;
	cache_put_ok(st, &n);
	cache_init(&t, STORE_CACHE_TOKEN, "remote", "alice@example.org",
	    "alice@example.org");
	(void)strlcpy(t.scope, "https://mail.example.org/smtp",
	    sizeof(t.scope));
	cache_put_ok(st, &t);

	cr_assert_eq(cache_get(st, &p, &got), 1, "%s", err);
	cr_expect_eq(got.kind, STORE_CACHE_PASSWORD);
	cr_expect_str_eq(got.checker, "remote");
	cr_expect_str_eq(got.user, "Alice@example.org");	/* normalised */
	cr_expect_str_eq(got.canonical, "alice@example.org");
	cr_expect_str_eq(got.scope, "smtp offline_access");
	cr_expect_eq(got.created, -1);
	cr_expect_eq(got.expires, INT64_MAX);
	cr_expect_arr_eq(got.verifier, p.verifier, STORE_CACHE_HASH_LEN);

	cr_assert_eq(cache_get(st, &n, &got), 1, "%s", err);
	cr_expect_str_eq(got.canonical, "");
	cr_expect_str_eq(got.scope, "");
	cr_expect_arr_eq(got.verifier, n.verifier, STORE_CACHE_HASH_LEN);
	cr_expect_eq(got.created, 1000);
	cr_expect_eq(got.expires, 2000);

	cr_assert_eq(cache_get(st, &t, &got), 1, "%s", err);
	cr_expect_str_eq(got.canonical, "alice@example.org");
	cr_expect_str_eq(got.scope, "https://mail.example.org/smtp");
	cr_expect_arr_eq(got.token_hash, t.token_hash, STORE_CACHE_HASH_LEN);
	/* A token entry holds no verifier, whatever the caller left. */
	cr_expect_arr_eq(got.verifier, zero, STORE_CACHE_HASH_LEN);

	/* Another token of the same user is another entry: none. */
	t.token_hash[31] ^= 1;
	cr_expect_eq(cache_get(st, &t, &got), 0);
	cr_expect_str_eq(err, "no cache entry");
	cr_expect_eq(got.expires, 0);
	cr_expect_str_eq(got.canonical, "");

	/* Replacing keeps one entry. */
	p.expires = 5000;
	cache_put_ok(st, &p);
	cr_assert_eq(cache_get(st, &p, &got), 1);
	cr_expect_eq(got.expires, 5000);
	cr_expect_eq(cache_count(st, NULL), 3);

	/* And after the store is opened again, read-only. */
	store_close(st);
	st = open_ok(STORE_RDONLY);
	cr_assert_eq(cache_get(st, &p, &got), 1, "%s", err);
	cr_expect_eq(got.expires, 5000);
	cr_expect_eq(store_cache_put(st, &p, err, sizeof(err)), -1);
	expect_err("store %s is open read-only", dir);
	store_close(st);
}

Test(store, cache_users_never_collide)
{
	struct store			*st;
	struct store_cache_entry	 a, b, got;

	st = open_ok(STORE_CREATE);
	/* The NUL after the checker keeps "c"+"ab" from "ca"+"b". */
	cache_init(&a, STORE_CACHE_PASSWORD, "c", "ab", "ab");
	cache_init(&b, STORE_CACHE_PASSWORD, "ca", "b", "b");
	b.verifier[0] = 0x77;
	cache_put_ok(st, &a);
	cache_put_ok(st, &b);
	cr_assert_eq(cache_get(st, &a, &got), 1);
	cr_expect_str_eq(got.canonical, "ab");
	cr_expect_eq(got.verifier[0], 1);
	cr_assert_eq(cache_get(st, &b, &got), 1);
	cr_expect_str_eq(got.canonical, "b");
	cr_expect_eq(got.verifier[0], 0x77);

	/* The local part is case-sensitive: Bob is not bob. */
	cache_init(&a, STORE_CACHE_PASSWORD, "c", "bob@example.org",
	    "bob@example.org");
	cache_init(&b, STORE_CACHE_PASSWORD, "c", "Bob@example.org",
	    "Bob@example.org");
	b.verifier[0] = 0x99;
	cache_put_ok(st, &a);
	cache_put_ok(st, &b);
	cr_assert_eq(cache_get(st, &a, &got), 1);
	cr_expect_eq(got.verifier[0], 1);
	cr_expect_str_eq(got.canonical, "bob@example.org");
	cr_assert_eq(cache_get(st, &b, &got), 1);
	cr_expect_eq(got.verifier[0], 0x99);

	/* A user that is a prefix of another. */
	cache_init(&a, STORE_CACHE_TOKEN, "c", "bo", "bo");
	cache_init(&b, STORE_CACHE_TOKEN, "c", "bob@example.org",
	    "bob@example.org");
	cache_put_ok(st, &a);
	cr_expect_eq(cache_get(st, &b, &got), 0);
	cr_expect_eq(cache_count(st, NULL), 5);
	cr_expect_eq(cache_count(st, "bob@example.org"), 1);
	cr_expect_eq(cache_count(st, "Bob@example.org"), 1);
	store_close(st);
}

Test(store, cache_same_user_under_two_checkers)
{
	struct store			*st;
	struct store_cache_entry	 a, b, got;
	struct centries			 c;

	st = open_ok(STORE_CREATE);
	cache_init(&a, STORE_CACHE_PASSWORD, "google", "carol@example.org",
	    "carol@example.org");
	cache_init(&b, STORE_CACHE_PASSWORD, "azure", "carol@example.org",
	    "carol@example.org");
	b.verifier[5] = 0;
	cache_put_ok(st, &a);
	cache_put_ok(st, &b);
	cr_assert_eq(cache_get(st, &a, &got), 1);
	cr_expect_eq(got.verifier[5], 6);
	cr_assert_eq(cache_get(st, &b, &got), 1);
	cr_expect_eq(got.verifier[5], 0);

	/* In key order: kind, then checker. */
	memset(&c, 0, sizeof(c));
	cr_assert_eq(store_cache_list(st, "carol@example.org", centries_cb,
	    &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.n, 2);
	cr_expect_str_eq(c.e[0].checker, "azure");
	cr_expect_str_eq(c.e[1].checker, "google");

	/* A checker name may hold a space, not a control character. */
	(void)strlcpy(a.checker, "my cache", sizeof(a.checker));
	cache_put_ok(st, &a);
	(void)strlcpy(a.checker, "bad\tname", sizeof(a.checker));
	cr_expect_eq(store_cache_put(st, &a, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "checker name \"bad\\x09name\" contains a "
	    "control character");
	cr_expect_eq(cache_get(st, &a, &got), -1);
	a.checker[0] = '\0';
	cr_expect_eq(store_cache_put(st, &a, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "checker name \"\" is empty");
	a.kind = 'x';
	(void)strlcpy(a.checker, "google", sizeof(a.checker));
	cr_expect_eq(store_cache_put(st, &a, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "unknown cache entry kind 120");
	store_close(st);
}

Test(store, cache_token_entries_without_a_user)
{
	struct store			*st;
	struct store_cache_entry	 t, p, got;

	st = open_ok(STORE_CREATE);
	cache_init(&t, STORE_CACHE_TOKEN, "remote", "", "dave@example.org");
	cache_put_ok(st, &t);
	cr_assert_eq(cache_get(st, &t, &got), 1, "%s", err);
	cr_expect_str_eq(got.user, "");
	cr_expect_str_eq(got.canonical, "dave@example.org");
	/* The same token named with a user is another entry. */
	(void)strlcpy(t.user, "dave@example.org", sizeof(t.user));
	cr_expect_eq(cache_get(st, &t, &got), 0);

	/* Passwords always come with a user. */
	cache_init(&p, STORE_CACHE_PASSWORD, "remote", "", "dave@example.org");
	cr_expect_eq(store_cache_put(st, &p, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"\" is empty");
	cr_expect_eq(cache_get(st, &p, &got), 0);
	cr_expect_str_eq(err, "user name \"\" is empty");
	p.kind = STORE_CACHE_NEGATIVE;
	p.canonical[0] = '\0';
	cr_expect_eq(store_cache_put(st, &p, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"\" is empty");
	/* Nor may a token's user be one that cannot be stored. */
	(void)strlcpy(t.user, "da ve", sizeof(t.user));
	cr_expect_eq(store_cache_put(st, &t, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"da ve\" contains a space");
	/* Every positive entry says whom it authenticates. */
	cache_init(&t, STORE_CACHE_TOKEN, "remote", "", "");
	cr_expect_eq(store_cache_put(st, &t, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "canonical name \"\" is empty");
	cache_init(&p, STORE_CACHE_NEGATIVE, "remote", "dave", "dave");
	cr_expect_eq(store_cache_put(st, &p, err, sizeof(err)), -1);
	cr_expect_str_eq(err, "a negative cache entry has neither a canonical "
	    "name nor a scope");
	cr_expect_eq(cache_count(st, NULL), 1);
	store_close(st);
}

/* alice: 2 entries of her own and a token of hers; bob: 2. */
static void
cache_fill(struct store *st)
{
	struct store_cache_entry	 e;

	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "alice@example.org",
	    "alice@example.org");
	cache_put_ok(st, &e);
	cache_init(&e, STORE_CACHE_NEGATIVE, "remote", "alice@example.org",
	    "");
	e.expires = 1500;
	cache_put_ok(st, &e);
	cache_init(&e, STORE_CACHE_TOKEN, "remote", "", "alice@example.org");
	e.expires = 3000;
	cache_put_ok(st, &e);
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "bob@example.org",
	    "bob@example.org");
	e.expires = 1000;
	cache_put_ok(st, &e);
	/* bob's alias: his entry by its key. */
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "bobby@example.org",
	    "bob@example.org");
	e.expires = 4000;
	cache_put_ok(st, &e);
}

Test(store, cache_flush_one_user_leaves_the_others)
{
	struct store	*st;
	size_t		 n = 99;

	st = open_ok(STORE_CREATE);
	cache_fill(st);
	cr_expect_eq(cache_count(st, "alice@example.org"), 3);
	cr_expect_eq(cache_count(st, "bob@example.org"), 2);
	cr_expect_eq(cache_count(st, "bobby@EXAMPLE.org"), 1);
	cr_expect_eq(cache_count(st, "nobody"), 0);

	/* By its key's user, or its canonical name; normalised first. */
	cr_assert_eq(store_cache_flush(st, "alice@Example.Org", &n, err,
	    sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 3);
	cr_expect_eq(cache_count(st, "alice@example.org"), 0);
	cr_expect_eq(cache_count(st, NULL), 2);
	cr_assert_eq(store_cache_flush(st, "alice@example.org", &n, err,
	    sizeof(err)), 0);
	cr_expect_eq(n, 0);
	/* An alias goes alone; its canonical user keeps the rest. */
	cr_assert_eq(store_cache_flush(st, "bobby@example.org", &n, err,
	    sizeof(err)), 0);
	cr_expect_eq(n, 1);
	cr_expect_eq(cache_count(st, "bob@example.org"), 1);

	cr_expect_eq(store_cache_flush(st, "bad name", &n, err, sizeof(err)),
	    -1);
	cr_expect_str_eq(err, "user name \"bad name\" contains a space");
	cr_expect_eq(store_cache_flush(st, "", NULL, err, sizeof(err)), -1);
	cr_expect_eq(store_cache_list(st, "", centries_cb, NULL, err,
	    sizeof(err)), -1);
	cr_expect_str_eq(err, "user name \"\" is empty");
	cr_expect_eq(cache_count(st, NULL), 1);
	store_close(st);
}

Test(store, cache_flush_all)
{
	struct store	*st;
	struct centries	 c;
	size_t		 n;

	st = open_ok(STORE_CREATE);
	cr_assert_eq(store_cache_flush(st, NULL, &n, err, sizeof(err)), 0);
	cr_expect_eq(n, 0);
	cache_fill(st);
	cr_assert_eq(store_cache_flush(st, NULL, &n, err, sizeof(err)), 0,
	    "%s", err);
	cr_expect_eq(n, 5);
	cr_expect_eq(cache_count(st, NULL), 0);
	/* The database is still there to write to. */
	cache_fill(st);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	cr_expect_eq(store_cache_list(st, NULL, centries_cb, &c, err,
	    sizeof(err)), 0);
	cr_expect_eq(c.n, 2);
	/* In key order: negative, password, token. */
	cr_expect_eq(c.e[0].kind, STORE_CACHE_NEGATIVE);
	cr_expect_eq(c.e[1].kind, STORE_CACHE_PASSWORD);
	cr_expect_str_eq(c.e[1].user, "alice@example.org");
	store_close(st);

	/* Read-only, nothing is flushed. */
	st = open_ok(STORE_RDONLY);
	cr_expect_eq(store_cache_flush(st, NULL, &n, err, sizeof(err)), -1);
	expect_err("store %s is open read-only", dir);
	cr_expect_eq(store_cache_expire(st, INT64_MAX, &n, err, sizeof(err)),
	    -1);
	expect_err("store %s is open read-only", dir);
	cr_expect_eq(cache_count(st, NULL), 5);
	store_close(st);
}

Test(store, cache_expire)
{
	struct store			*st;
	struct store_cache_entry	 e, got;
	size_t				 n;

	st = open_ok(STORE_CREATE);
	cache_fill(st);		/* expires 1000, 1500, 2000, 3000, 4000 */
	cr_assert_eq(store_cache_expire(st, 999, &n, err, sizeof(err)), 0);
	cr_expect_eq(n, 0);
	/* Not valid from expires on: an entry expiring at "before" goes. */
	cr_assert_eq(store_cache_expire(st, 1500, &n, err, sizeof(err)), 0,
	    "%s", err);
	cr_expect_eq(n, 2);
	cr_expect_eq(cache_count(st, NULL), 3);
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "bob@example.org",
	    "bob@example.org");
	cr_expect_eq(cache_get(st, &e, &got), 0);
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "alice@example.org",
	    "alice@example.org");
	cr_expect_eq(cache_get(st, &e, &got), 1);
	cr_assert_eq(store_cache_expire(st, INT64_MAX, NULL, err,
	    sizeof(err)), 0);
	cr_expect_eq(cache_count(st, NULL), 0);
	store_close(st);
}

Test(store, cache_corrupt_entries_are_reported_and_skipped)
{
	static const unsigned char	 garbage[] = "\x01\x00garbage";
	struct store			*st;
	struct store_cache_entry	 e, got;
	struct centries			 c;
	unsigned char			 key[STORE_CACHE_KEY_MAX];
	unsigned char			 rec[STORE_CACHE_RECORD_MAX];
	int				 klen, rlen;
	size_t				 n;

	st = open_ok(STORE_CREATE);
	cache_fill(st);
	store_close(st);

	/* A good key with a bad record: mallory's. */
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "mallory", "mallory");
	cr_assert_gt(klen = store_cache_key_encode(&e, key, sizeof(key), err,
	    sizeof(err)), 0, "%s", err);
	raw_put("cache", key, (size_t)klen, garbage, sizeof(garbage) - 1);

	st = open_ok(STORE_RDONLY);
	cr_expect_eq(cache_get(st, &e, &got), -1);
	expect_err("store %s: the password entry of checker \"remote\" for "
	    "user \"mallory\" is corrupt: the record is 9 octets, too short",
	    dir);
	cr_expect_str_eq(got.canonical, "");
	cr_expect_eq(got.expires, 0);
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_cache_list(st, NULL, centries_cb, &c, err,
	    sizeof(err)), -1);
	cr_expect_eq(c.n, 5);
	expect_err("store %s: the password entry of checker \"remote\" for "
	    "user \"mallory\" is corrupt: the record is 9 octets, too short",
	    dir);
	/* Reported to a listing of another user too: it might be his. */
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_cache_list(st, "alice@example.org", centries_cb,
	    &c, err, sizeof(err)), -1);
	cr_expect_eq(c.n, 3);
	store_close(st);

	/* A bad key, and a record of a newer format. */
	raw_put("cache", "p\0\0x\0", 5, garbage, sizeof(garbage) - 1);
	cache_init(&e, STORE_CACHE_TOKEN, "remote", "", "eve@example.org");
	e.token_hash[0] = 0xee;
	cr_assert_gt(klen = store_cache_key_encode(&e, key, sizeof(key), err,
	    sizeof(err)), 0);
	cr_assert_gt(rlen = store_cache_record_encode(&e, rec, sizeof(rec),
	    err, sizeof(err)), 0);
	rec[0] = 3;
	raw_put("cache", key, (size_t)klen, rec, (size_t)rlen);

	st = open_ok(0);
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_cache_list(st, NULL, centries_cb, &c, err,
	    sizeof(err)), -1);
	cr_expect_eq(c.n, 5);
	expect_err("store %s: cache key \"p\\x00\\x00x\\x00\" is corrupt: the "
	    "checker name is empty (and 2 more)", dir);
	cr_expect_eq(cache_get(st, &e, &got), -1);
	expect_err("store %s: the token eea1a2a3 entry of checker \"remote\" "
	    "for user \"\" is corrupt: the record has format 3, this "
	    "portcullis understands up to 2: upgrade portcullis", dir);

	/* expire keeps what it cannot read; flush of the user does not. */
	cr_assert_eq(store_cache_expire(st, INT64_MAX, &n, err, sizeof(err)),
	    0, "%s", err);
	cr_expect_eq(n, 5);
	cr_assert_eq(store_cache_flush(st, "mallory", &n, err, sizeof(err)),
	    0, "%s", err);
	cr_expect_eq(n, 1);
	/* eve's token: the record holds her name, but cannot be read. */
	cr_assert_eq(store_cache_flush(st, "eve@example.org", &n, err,
	    sizeof(err)), 0);
	cr_expect_eq(n, 0);
	/* put repairs a corrupt record. */
	cache_put_ok(st, &e);
	cr_expect_eq(cache_get(st, &e, &got), 1);
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_cache_list(st, NULL, centries_cb, &c, err,
	    sizeof(err)), -1);
	cr_expect_eq(c.n, 1);
	expect_err("store %s: cache key \"p\\x00\\x00x\\x00\" is corrupt: the "
	    "checker name is empty", dir);
	cr_assert_eq(store_cache_flush(st, NULL, &n, err, sizeof(err)), 0);
	cr_expect_eq(n, 2);
	cr_expect_eq(cache_count(st, NULL), 0);
	store_close(st);
}

/* Raw LMDB: an old layout 1 store, of meta and users only. */
static void
make_old_store(void)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 meta, users, cache;
	MDB_val		 k, v;

	cr_assert_eq(mkdir(dir, 0700), 0);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, STORE_MAXDBS), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", MDB_CREATE, &meta), 0);
	cr_assert_eq(mdb_dbi_open(txn, "users", MDB_CREATE, &users), 0);
	k.mv_data = "layout";
	k.mv_size = 6;
	v.mv_data = "1";
	v.mv_size = 1;
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(mdb_dbi_open(txn, "cache", 0, &cache), MDB_NOTFOUND);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* The layout stays 1, and the cache database is there (1) or not. */
static int
old_store_state(void)
{
	MDB_env		*env;
	MDB_txn		*txn;
	MDB_dbi		 meta, cache;
	MDB_val		 k, v;
	int		 rc;

	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, STORE_MAXDBS), 0);
	cr_assert_eq(mdb_env_open(env, dir, MDB_RDONLY, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	k.mv_data = "layout";
	k.mv_size = 6;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect(v.mv_size == 1 && memcmp(v.mv_data, "1", 1) == 0);
	rc = mdb_dbi_open(txn, "cache", 0, &cache);
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc == 0;
}

Test(store, cache_in_an_old_store)
{
	struct store			*st;
	struct store_cache_entry	 e, got;
	struct centries			 c;

	make_old_store();

	/* Read-only: an empty cache, said plainly, nothing made. */
	st = open_ok(STORE_RDONLY);
	cache_init(&e, STORE_CACHE_PASSWORD, "remote", "frank", "frank");
	cr_expect_eq(cache_get(st, &e, &got), 0);
	expect_err("store %s has no login cache: it is made when the store is "
	    "opened for writing", dir);
	memset(&c, 0, sizeof(c));
	cr_expect_eq(store_cache_list(st, NULL, centries_cb, &c, err,
	    sizeof(err)), 0);
	cr_expect_eq(c.n, 0);
	cr_expect_eq(store_cache_put(st, &e, err, sizeof(err)), -1);
	expect_err("store %s is open read-only", dir);
	store_close(st);
	cr_expect_eq(old_store_state(), 0);

	/* For writing, even without STORE_CREATE, it is made. */
	st = open_ok(0);
	cache_put_ok(st, &e);
	store_close(st);
	cr_expect_eq(old_store_state(), 1);
	st = open_ok(STORE_RDONLY);
	cr_expect_eq(cache_get(st, &e, &got), 1, "%s", err);
	store_close(st);

	/* A newer layout is refused before anything is made. */
	teardown();
	setup();
	make_old_store();
	raw_put("meta", "layout", 6, "4", 1);
	cr_expect_null(store_open(dir, 0, err, sizeof(err)));
	raw_put("meta", "layout", 6, "1", 1);
	cr_expect_eq(old_store_state(), 0);
}

static void
expect_key_fails(const unsigned char *buf, size_t len, const char *why)
{
	struct store_cache_entry	 e;
	char				 e2[256];

	cr_expect_eq(store_cache_key_decode(buf, len, &e, e2, sizeof(e2)), -1,
	    "key of %zu octets", len);
	if (why != NULL)
		cr_expect_str_eq(e2, why);
	cr_expect_eq(e.kind, 0);
	cr_expect_str_eq(e.user, "");
}

static void
expect_rec_fails(int kind, const unsigned char *buf, size_t len,
    const char *why)
{
	struct store_cache_entry	 e;
	char				 e2[256];

	memset(&e, 0x5a, sizeof(e));
	e.kind = kind;
	cr_expect_eq(store_cache_record_decode(buf, len, &e, e2, sizeof(e2)),
	    -1, "record of %zu octets", len);
	if (why != NULL)
		cr_expect_str_eq(e2, why);
	cr_expect_str_eq(e.canonical, "");
	cr_expect_str_eq(e.scope, "");
	cr_expect_eq(e.expires, 0);
}

/* The cache codec, octet by octet. */
Test(store, cache_codec_edge_cases)
{
	struct store_cache_entry	 e, d;
	unsigned char			 key[STORE_CACHE_KEY_MAX];
	unsigned char			 rec[STORE_CACHE_RECORD_MAX];
	unsigned char			 bad[STORE_CACHE_RECORD_MAX + 8];
	char				 e2[256], big[300];
	int				 klen, rlen, i, j;

	/* Keys: exactly as store.h says. */
	cache_init(&e, STORE_CACHE_PASSWORD, "ck", "U@X.Y", "u@x.y");
	klen = store_cache_key_encode(&e, key, sizeof(key), e2, sizeof(e2));
	cr_assert_eq(klen, 10, "%s", e2);
	cr_expect_arr_eq(key, "pck\0U@x.y\0", 10);
	cache_init(&e, STORE_CACHE_TOKEN, "ck", "", "u@x.y");
	klen = store_cache_key_encode(&e, key, sizeof(key), e2, sizeof(e2));
	cr_assert_eq(klen, 5 + 32);
	cr_expect_arr_eq(key, "tck\0\0", 5);
	cr_expect_arr_eq(key + 5, e.token_hash, 32);
	memset(&d, 0x5a, sizeof(d));
	cr_assert_eq(store_cache_key_decode(key, (size_t)klen, &d, e2,
	    sizeof(e2)), 0, "%s", e2);
	cr_expect_eq(d.kind, STORE_CACHE_TOKEN);
	cr_expect_str_eq(d.checker, "ck");
	cr_expect_str_eq(d.user, "");
	cr_expect_arr_eq(d.token_hash, e.token_hash, 32);
	/* The longest key fits. */
	memset(&e, 0, sizeof(e));
	e.kind = STORE_CACHE_TOKEN;
	memset(e.checker, 'c', CONF_NAME_MAX - 1);
	memset(e.user, 'u', CONF_AUTH_NAME_MAX - 1);
	cr_expect_eq(store_cache_key_encode(&e, key, sizeof(key), e2,
	    sizeof(e2)), STORE_CACHE_KEY_MAX);
	cr_expect_eq(store_cache_key_decode(key, STORE_CACHE_KEY_MAX, &d, e2,
	    sizeof(e2)), 0, "%s", e2);
	/* An unterminated checker or user is refused, not overrun. */
	memset(e.checker, 'c', sizeof(e.checker));
	cr_expect_eq(store_cache_key_encode(&e, key, sizeof(key), e2,
	    sizeof(e2)), -1);
	memset(e.checker, 0, sizeof(e.checker));
	e.checker[0] = 'c';
	memset(e.user, 'u', sizeof(e.user));
	cr_expect_eq(store_cache_key_encode(&e, key, sizeof(key), e2,
	    sizeof(e2)), -1);
	cr_expect_eq(strncmp(e2, "user name \"uuu", 14), 0, "%s", e2);
	cache_init(&e, STORE_CACHE_TOKEN, "ck", "", "u@x.y");
	cr_expect_eq(store_cache_key_encode(&e, key, 10, e2, sizeof(e2)), -1);
	cr_expect_str_eq(e2, "cache key buffer too small");

	expect_key_fails(key, 0, "the key is empty");
	expect_key_fails((const unsigned char *)"x", 1,
	    "unknown entry kind 0x78");
	expect_key_fails((const unsigned char *)"pck", 3,
	    "the checker name has no end");
	expect_key_fails((const unsigned char *)"p\0u\0", 4,
	    "the checker name is empty");
	expect_key_fails((const unsigned char *)"pc\x01\0u\0", 6,
	    "the checker name contains a control character");
	expect_key_fails((const unsigned char *)"pck\0u", 5,
	    "the user name has no end");
	expect_key_fails((const unsigned char *)"pck\0\0", 5,
	    "the user name is empty");
	expect_key_fails((const unsigned char *)"nck\0a b\0", 8,
	    "the user name contains a space");
	expect_key_fails((const unsigned char *)"pck\0u@X\0", 8,
	    "the user name is not normalised");
	expect_key_fails((const unsigned char *)"pck\0u\0\0", 7,
	    "1 octets of garbage after the key");
	expect_key_fails((const unsigned char *)"tck\0u\0abc", 9,
	    "the token hash is 3 octets, not 32");
	memset(big, 'c', sizeof(big));
	big[0] = 'p';
	big[CONF_NAME_MAX + 1] = '\0';
	expect_key_fails((unsigned char *)big, sizeof(big),
	    "the checker name is too long");
	big[CONF_NAME_MAX + 1] = 'c';
	big[5] = '\0';
	expect_key_fails((unsigned char *)big, sizeof(big),
	    "the user name has no end");
	big[sizeof(big) - 1] = '\0';
	expect_key_fails((unsigned char *)big, sizeof(big),
	    "the user name is too long");

	/* Records: exactly as store.h says. */
	cache_init(&e, STORE_CACHE_PASSWORD, "ck", "u", "U@X.Y");
	(void)strlcpy(e.scope, "a b", sizeof(e.scope));
	e.created = -5;
	e.expires = 0x0102030405060708LL;
	rlen = store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2));
	cr_assert_eq(rlen, 50 + 1 + 5 + 1 + 3, "%s", e2);
	cr_expect_eq(rec[0], 1);
	cr_expect_eq(rec[1], 0);
	cr_expect_eq(rec[2], 0xfb);
	cr_expect_eq(rec[9], 0xff);
	cr_expect_eq(rec[10], 0x08);
	cr_expect_eq(rec[17], 0x01);
	cr_expect_arr_eq(rec + 18, e.verifier, 32);
	cr_expect_eq(rec[50], 5);
	cr_expect_arr_eq(rec + 51, "U@x.y", 5);	/* normalised */
	cr_expect_eq(rec[56], 3);
	cr_expect_arr_eq(rec + 57, "a b", 3);
	memset(&d, 0, sizeof(d));
	d.kind = STORE_CACHE_PASSWORD;
	cr_assert_eq(store_cache_record_decode(rec, (size_t)rlen, &d, e2,
	    sizeof(e2)), 0, "%s", e2);
	cr_expect_eq(d.created, -5);
	cr_expect_eq(d.expires, 0x0102030405060708LL);
	cr_expect_str_eq(d.canonical, "U@x.y");
	cr_expect_str_eq(d.scope, "a b");
	cr_expect_arr_eq(d.verifier, e.verifier, 32);

	for (i = 0; i < rlen; i++)
		expect_rec_fails(STORE_CACHE_PASSWORD, rec, (size_t)i, NULL);
	expect_rec_fails(STORE_CACHE_PASSWORD, rec, 0, "the record is empty");
	expect_rec_fails(STORE_CACHE_PASSWORD, rec, 51,
	    "the record is 51 octets, too short");
	memcpy(bad, rec, (size_t)rlen);
	bad[rlen] = 'x';
	expect_rec_fails(STORE_CACHE_PASSWORD, bad, (size_t)rlen + 1,
	    "1 octets of garbage after the record");
	/* A password record read as a negative or a token one. */
	expect_rec_fails(STORE_CACHE_NEGATIVE, rec, (size_t)rlen,
	    "a negative entry has a canonical name");
	expect_rec_fails(STORE_CACHE_TOKEN, rec, (size_t)rlen,
	    "a token entry holds a verifier");
	expect_rec_fails(0, rec, (size_t)rlen, "unknown cache entry kind 0");
#define DAMAGE(off, val, why) do {					\
	memcpy(bad, rec, (size_t)rlen);					\
	bad[(off)] = (val);						\
	expect_rec_fails(STORE_CACHE_PASSWORD, bad, (size_t)rlen, (why)); \
} while (0)
	DAMAGE(0, 0, "unknown record format 0");
	DAMAGE(0, 3, "the record has format 3, this portcullis understands "
	    "up to 2: upgrade portcullis");
	DAMAGE(0, 2, "a version 2 record without addresses");
	DAMAGE(1, 0x80, "unknown flags 0x80");
	DAMAGE(50, 0, "the canonical name is empty");
	DAMAGE(50, 3, "the scope (46 octets) overruns the record (60 "
	    "octets)");
	DAMAGE(50, 9, "the canonical name (9 octets) overruns the record "
	    "(60 octets)");
	DAMAGE(50, 200, "the canonical name (200 octets) overruns the record "
	    "(60 octets)");
	DAMAGE(55, '@', "the canonical name has an empty domain");
	DAMAGE(53, 'X', "the canonical name is not normalised");
	DAMAGE(52, ' ', "the canonical name contains a space");
	DAMAGE(52, 0, "the canonical name contains a control character");
	DAMAGE(56, 4, "the scope (4 octets) overruns the record (60 octets)");
	DAMAGE(56, 2, "1 octets of garbage after the record");
	DAMAGE(58, '\n', "the scope has an octet that is not printable "
	    "ASCII");
	DAMAGE(58, 0xc3, "the scope has an octet that is not printable "
	    "ASCII");
#undef DAMAGE

	/* Negative records: nothing but the times and the verifier. */
	cache_init(&e, STORE_CACHE_NEGATIVE, "ck", "u", "");
	rlen = store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2));
	cr_assert_eq(rlen, 52, "%s", e2);
	memcpy(bad, rec, (size_t)rlen);
	bad[51] = 1;
	bad[52] = 's';
	expect_rec_fails(STORE_CACHE_NEGATIVE, bad, 53,
	    "a negative entry has a scope");
	(void)strlcpy(e.scope, "s", sizeof(e.scope));
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
	/* Token records hold no verifier. */
	cache_init(&e, STORE_CACHE_TOKEN, "ck", "u", "u");
	memset(e.verifier, 0xee, sizeof(e.verifier));
	rlen = store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2));
	cr_assert_eq(rlen, 53);
	for (i = 18; i < 50; i++)
		cr_expect_eq(rec[i], 0);

	/* What encode refuses. */
	cache_init(&e, STORE_CACHE_PASSWORD, "ck", "u", "u");
	memset(e.scope, 's', sizeof(e.scope));	/* unterminated */
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
	cr_expect_str_eq(e2, "the scope is longer than 255 octets");
	e.scope[255] = '\0';			/* 255: fine */
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), 50 + 2 + 255 + 1);
	memset(e.canonical, 'c', CONF_AUTH_NAME_MAX - 1);
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), 50 + 1 + 255 + 1 + 255);
	memset(&d, 0, sizeof(d));
	d.kind = STORE_CACHE_PASSWORD;
	cr_expect_eq(store_cache_record_decode(rec, 50 + 1 + 255 + 1 + 255,
	    &d, e2, sizeof(e2)), 0, "%s", e2);
	(void)strlcpy(e.scope, "tab\there", sizeof(e.scope));
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
	cr_expect_str_eq(e2, "the scope has an octet that is not printable "
	    "ASCII");
	cache_init(&e, STORE_CACHE_PASSWORD, "ck", "u", "c@");
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
	cr_expect_str_eq(e2, "canonical name \"c@\" has an empty domain");
	cache_init(&e, STORE_CACHE_PASSWORD, "ck", "u", "u");
	cr_expect_eq(store_cache_record_encode(&e, rec, 100, e2,
	    sizeof(e2)), -1);
	cr_expect_str_eq(e2, "cache record buffer too small");

	/* Every octet of a key and of a record to every value: no crash. */
	cache_init(&e, STORE_CACHE_TOKEN, "ck", "u@x", "u@x");
	(void)strlcpy(e.scope, "smtp", sizeof(e.scope));
	klen = store_cache_key_encode(&e, key, sizeof(key), e2, sizeof(e2));
	rlen = store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2));
	cr_assert(klen > 0 && rlen > 0);
	for (i = 0; i < klen; i++)
		for (j = 0; j < 256; j++) {
			memcpy(bad, key, (size_t)klen);
			bad[i] = (unsigned char)j;
			if (store_cache_key_decode(bad, (size_t)klen, &d, e2,
			    sizeof(e2)) == 0) {
				cr_assert_lt(strlen(d.checker),
				    sizeof(d.checker));
				cr_assert_lt(strlen(d.user), sizeof(d.user));
			}
		}
	for (i = 0; i < rlen; i++)
		for (j = 0; j < 256; j++) {
			memcpy(bad, rec, (size_t)rlen);
			bad[i] = (unsigned char)j;
			d.kind = STORE_CACHE_TOKEN;
			if (store_cache_record_decode(bad, (size_t)rlen, &d,
			    e2, sizeof(e2)) == 0) {
				cr_assert_lt(strlen(d.canonical),
				    sizeof(d.canonical));
				cr_assert_lt(strlen(d.scope), sizeof(d.scope));
			}
		}
	srandom(2);
	for (i = 0; i < 20000; i++) {
		size_t	 n = (size_t)random() % sizeof(bad);
		int	 kinds[] = { 'p', 'n', 't' };

		for (j = 0; j < (int)n; j++)
			bad[j] = (unsigned char)random();
		if (n > 0)
			bad[0] = i % 2 ? 1 : (unsigned char)kinds[i % 3];
		if (n > 52 && i % 4 == 1) {
			bad[1] = 0;
			bad[50] = (unsigned char)(random() % 16);
		}
		d.kind = kinds[i % 3];
		(void)store_cache_record_decode(bad, n, &d, e2, sizeof(e2));
		cr_assert_lt(strnlen(d.scope, sizeof(d.scope)),
		    sizeof(d.scope));
		(void)store_cache_key_decode(bad, n, &d, e2, sizeof(e2));
		cr_assert_lt(strnlen(d.user, sizeof(d.user)), sizeof(d.user));
	}
}

/* Deleting while walking, over many pages: none skipped, none twice. */
Test(store, cache_flush_and_expire_over_many_pages)
{
	struct store			*st;
	struct store_cache_entry	 e;
	char				 name[32];
	size_t				 n;
	int				 i;

	st = open_ok(STORE_CREATE);
	for (i = 0; i < 3000; i++) {
		(void)snprintf(name, sizeof(name), "user%04d@example.org", i);
		cache_init(&e, STORE_CACHE_PASSWORD, "remote", name,
		    i % 2 ? "odd" : "even");
		e.expires = i % 3 == 0 ? 100 : 200;
		cache_put_ok(st, &e);
	}
	cr_assert_eq(store_cache_flush(st, "even", &n, err, sizeof(err)), 0,
	    "%s", err);
	cr_expect_eq(n, 1500);
	cr_expect_eq(cache_count(st, "even"), 0);
	cr_expect_eq(cache_count(st, "odd"), 1500);
	/* Of the odd ones, every third expires at 100. */
	cr_assert_eq(store_cache_expire(st, 100, &n, err, sizeof(err)), 0);
	cr_expect_eq(n, 500);
	cr_expect_eq(cache_count(st, NULL), 1000);
	cr_assert_eq(store_cache_expire(st, 200, &n, err, sizeof(err)), 0);
	cr_expect_eq(n, 1000);
	cr_expect_eq(cache_count(st, NULL), 0);
	store_close(st);
}

/* authctl upgrade: layout 1 to 3 in place, no user lost. */
Test(store, upgrade_layout_1_to_3)
{
	struct store		*st;
	struct store_user	 u;
	uint8_t			 key[STORE_SECRET_LEN];
	size_t			 n;
	int			 count = 0;

	make_old_store();
	st = open_ok(0);
	cr_expect_eq(store_layout(st), 1);
	cr_expect_eq(store_secret(st, key, err, sizeof(err)), -1);
	add_ok(st, "one", "$y$a$b");
	add_ok(st, "two@example.org", "$y$a$c");
	cr_expect_eq(store_user_get(st, "one", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.version, 1);
	cr_expect_eq(store_upgrade(st, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 2);
	cr_expect_eq(store_layout(st), 3);
	cr_expect_eq(store_secret(st, key, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(store_upgrade(st, &n, err, sizeof(err)), -1);
	expect_err("store %s has layout 3 already", dir);
	store_close(st);

	st = open_ok(STORE_RDONLY);
	cr_expect_eq(store_layout(st), 3);
	cr_expect_eq(store_user_get(st, "two@example.org", &u, err,
	    sizeof(err)), 1);
	cr_expect_eq(u.version, 3);
	cr_expect_eq(u.limits[STORE_LIMIT_MESSAGES].mode,
	    STORE_LIMIT_DEFAULT);
	cr_expect_str_eq(u.hash, "$y$a$c");
	cr_expect_eq(store_user_list(st, count_cb, &count, err, sizeof(err)),
	    0);
	cr_expect_eq(count, 2);
	store_close(st);
}

/* A password entry keeps the addresses its checker found (version 2). */
Test(store, cache_record_addresses)
{
	struct store_cache_entry	 e, d;
	unsigned char			 rec[STORE_CACHE_RECORD_MAX];
	char				 e2[256];
	int				 len;

	cache_init(&e, STORE_CACHE_PASSWORD, "dir", "alice", "alice");
	len = store_cache_record_encode(&e, rec, sizeof(rec), e2, sizeof(e2));
	cr_assert_gt(len, 0, "%s", e2);
	cr_expect_eq(rec[0], 1);	/* none: as before */
	(void)strlcpy(e.addrs[0], "alice@example.org", sizeof(e.addrs[0]));
	(void)strlcpy(e.addrs[1], "a.l@example.org", sizeof(e.addrs[1]));
	e.naddrs = 2;
	len = store_cache_record_encode(&e, rec, sizeof(rec), e2, sizeof(e2));
	cr_assert_gt(len, 0, "%s", e2);
	cr_expect_eq(rec[0], 2);
	memset(&d, 0, sizeof(d));
	d.kind = STORE_CACHE_PASSWORD;
	cr_assert_eq(store_cache_record_decode(rec, (size_t)len, &d, e2,
	    sizeof(e2)), 0, "%s", e2);
	cr_expect_eq(d.naddrs, 2);
	cr_expect_str_eq(d.addrs[1], "a.l@example.org");
	/* Cut short, or one octet more: refused. */
	cr_expect_eq(store_cache_record_decode(rec, (size_t)len - 1, &d, e2,
	    sizeof(e2)), -1);
	cr_expect_eq(d.naddrs, 0);
	rec[len] = 'x';
	cr_expect_eq(store_cache_record_decode(rec, (size_t)len + 1, &d, e2,
	    sizeof(e2)), -1);
	/* Only password entries, only normalised addresses. */
	d.kind = STORE_CACHE_TOKEN;
	cr_expect_eq(store_cache_record_decode(rec, (size_t)len, &d, e2,
	    sizeof(e2)), -1);
	(void)strlcpy(e.addrs[1], "A.L@EXAMPLE.ORG", sizeof(e.addrs[1]));
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
	(void)strlcpy(e.addrs[1], "no-at-sign", sizeof(e.addrs[1]));
	cr_expect_eq(store_cache_record_encode(&e, rec, sizeof(rec), e2,
	    sizeof(e2)), -1);
}

/* Version 3: the user's own sending limits, round trip and damage. */
Test(store, record_version_3_limits)
{
	struct store_user	 u, v;
	unsigned char		 rec[STORE_RECORD_MAX], bad[STORE_RECORD_MAX];
	char			 e[256];
	int			 len, len2, i;

	memset(&u, 0, sizeof(u));
	(void)strlcpy(u.hash, "$6$salt$hash", sizeof(u.hash));
	u.limits[STORE_LIMIT_MESSAGES].mode = STORE_LIMIT_VALUE;
	u.limits[STORE_LIMIT_MESSAGES].max = 5;
	u.limits[STORE_LIMIT_MESSAGES].window = 3600;
	u.limits[STORE_LIMIT_RECIPIENTS].mode = STORE_LIMIT_NONE;
	len = store_record_encode(&u, rec, sizeof(rec), e, sizeof(e));
	cr_assert_gt(len, 0, "%s", e);
	cr_expect_eq(rec[0], 3);
	/* header, no hash octets counted twice: ..., 0 apps, 2+8, 1 */
	cr_expect_eq(rec[len - 10], STORE_LIMIT_VALUE);
	cr_expect_eq(rec[len - 1], STORE_LIMIT_NONE);
	memset(&v, 0, sizeof(v));
	cr_assert_eq(store_record_decode(rec, (size_t)len, &v, e, sizeof(e)),
	    0, "%s", e);
	cr_expect_eq(v.version, 3);
	cr_expect_eq(memcmp(v.limits, u.limits, sizeof(u.limits)), 0);

	/* Defaults: one octet each. */
	memset(u.limits, 0, sizeof(u.limits));
	len2 = store_record_encode(&u, bad, sizeof(bad), e, sizeof(e));
	cr_expect_eq(len2, len - 8);

	/* Older versions cannot hold a limit; a bad one is refused. */
	u.limits[STORE_LIMIT_RECIPIENTS].mode = STORE_LIMIT_NONE;
	u.version = 2;
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	cr_expect_str_eq(e, "a layout 2 store holds no sending limits: run "
	    "authctl upgrade");
	u.version = 0;
	u.limits[STORE_LIMIT_RECIPIENTS].mode = STORE_LIMIT_VALUE;
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	cr_expect_str_eq(e, "the recipient limit is out of range");
	u.limits[STORE_LIMIT_RECIPIENTS].max = 1;
	u.limits[STORE_LIMIT_RECIPIENTS].window = STORE_LIMIT_WINDOW_MAX + 1;
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	cr_expect_str_eq(e, "the recipient limit has a window out of range");
	u.limits[STORE_LIMIT_RECIPIENTS].mode = 7;
	cr_expect_eq(store_record_encode(&u, bad, sizeof(bad), e, sizeof(e)),
	    -1);
	cr_expect_str_eq(e, "the recipient limit has an unknown mode");

	/* Damage: a bad mode, a zero, a cut, garbage after. */
	memcpy(bad, rec, (size_t)len);
	bad[len - 1] = 3;
	expect_decode_fails(bad, (size_t)len,
	    "the recipient limit has an unknown mode");
	memcpy(bad, rec, (size_t)len);
	memset(bad + len - 9, 0, 4);
	expect_decode_fails(bad, (size_t)len,
	    "the message limit is out of range");
	memcpy(bad, rec, (size_t)len);
	memset(bad + len - 5, 0xff, 4);
	expect_decode_fails(bad, (size_t)len,
	    "the message limit has a window out of range");
	expect_decode_fails(rec, (size_t)len - 1,
	    "the recipient limit is missing");
	expect_decode_fails(rec, (size_t)len - 2,
	    "the message limit is cut short");
	memcpy(bad, rec, (size_t)len);
	bad[len] = 0;
	expect_decode_fails(bad, (size_t)len + 1,
	    "1 octets of garbage after the record");
	/* Every truncation fails, none crashes, nothing half kept. */
	for (i = 0; i < len; i++) {
		memset(&v, 0, sizeof(v));
		cr_expect_eq(store_record_decode(rec, (size_t)i, &v, e,
		    sizeof(e)), -1);
		cr_expect_eq(v.limits[0].mode, 0);
	}
}

/* authctl upgrade: layout 2 to 3 keeps the secret and every user. */
Test(store, upgrade_layout_2_to_3)
{
	struct store		*st;
	struct store_user	 u;
	uint8_t			 key[STORE_SECRET_LEN], key2[STORE_SECRET_LEN];
	size_t			 n;

	st = open_ok(STORE_CREATE);
	cr_expect_eq(store_layout(st), 3);
	cr_assert_eq(store_secret(st, key, err, sizeof(err)), 0, "%s", err);
	store_close(st);
	raw_put("meta", "layout", 6, "2", 1);

	st = open_ok(0);
	cr_expect_eq(store_layout(st), 2);
	add_ok(st, "one", "$y$a$b");
	cr_expect_eq(store_user_get(st, "one", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.version, 2);
	/* A layout 2 store cannot hold a limit: an old authd reads it. */
	u.limits[STORE_LIMIT_MESSAGES].mode = STORE_LIMIT_NONE;
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), -1);
	expect_err("a layout 2 store holds no sending limits: run authctl "
	    "upgrade");
	cr_expect_eq(store_upgrade(st, &n, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(n, 1);
	cr_expect_eq(store_layout(st), 3);
	cr_assert_eq(store_secret(st, key2, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(memcmp(key, key2, sizeof(key)), 0);
	cr_expect_eq(store_user_put(st, &u, 0, err, sizeof(err)), 0, "%s",
	    err);
	cr_expect_eq(store_user_get(st, "one", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.version, 3);
	cr_expect_eq(u.limits[STORE_LIMIT_MESSAGES].mode, STORE_LIMIT_NONE);
	/* A deleted user's limits go with it. */
	cr_expect_eq(store_user_del(st, "one", err, sizeof(err)), 0);
	add_ok(st, "one", "$y$a$b");
	cr_expect_eq(store_user_get(st, "one", &u, err, sizeof(err)), 1);
	cr_expect_eq(u.limits[STORE_LIMIT_MESSAGES].mode,
	    STORE_LIMIT_DEFAULT);
	store_close(st);

	/* The layout 2 portcullis would refuse it as a whole now. */
	raw_put("meta", "layout", 6, "4", 1);
	cr_expect_null(store_open(dir, STORE_RDONLY, err, sizeof(err)));
	expect_err("store %s has layout 4, this portcullis understands up "
	    "to 3: upgrade portcullis", dir);
}
