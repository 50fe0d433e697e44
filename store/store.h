/*
 * store.h -- the LMDB user store: who may log in, with what password
 * hash, and which addresses each user may send as.
 *
 * The store is an LMDB environment in a directory (data.mdb and
 * lock.mdb, mode 0600, the directory 0700).  authd reads it, authctl
 * writes it, both at once: LMDB is multi-process safe, and a reader
 * sees a writer's user as soon as the writer has committed (every call
 * here uses its own short transaction).
 *
 * Named databases:
 *   meta	"layout" -> the layout number as ASCII decimal, no NUL
 *		(STORE_LAYOUT).  A store of a newer layout is refused.
 *		"secret" -> 32 random octets (layout 2): the key of the
 *		app passwords' verifiers and of SCRAM's fake salts.
 *   users	normalised user name (store_name_normalize, no NUL)
 *		-> a user record, format below.
 *   cache	an entry key (format below) -> a cache record: what an
 *		oauth checker said, so that the next login needs no
 *		HTTP request (authd's checker "cache").
 *
 * A user record, version 1; integers little-endian:
 *   offset  size
 *   0       1    record version (1)
 *   1       1    flags: 0x01 locked; the other bits must be 0
 *   2       8    created, int64, seconds since the Epoch
 *   10      8    changed, int64, seconds since the Epoch
 *   18      1    H, the hash length, 0..255 (0: no password login)
 *   19      H    the hash, printable ASCII without space
 *   19+H    1    N, the number of addresses, 0..STORE_ADDRS_MAX
 *   then N times:
 *           1    L, the address length, 1..STORE_ADDR_MAX
 *           L    the address, as store_name_normalize() leaves it
 *   and nothing after.  A record that breaks any of this is corrupt:
 *   an error naming the user, never a crash.
 *
 * A user record, version 2 (layout 2 stores): version 1 with the
 * version octet 2, and after the addresses:
 *           1    S, the SCRAM salt's length: 0 (no SCRAM keys) or
 *                STORE_SCRAM_SALT_MIN..STORE_SCRAM_SALT_MAX
 *   if S > 0:
 *           S    the salt
 *           4    the iteration count, uint32, 1..STORE_SCRAM_ITER_MAX
 *           32   StoredKey (RFC 5802 3: H(HMAC(SaltedPassword,
 *                "Client Key")))
 *           32   ServerKey (HMAC(SaltedPassword, "Server Key"))
 *           1    A, the number of app passwords, 0..STORE_APPS_MAX
 *   then A times, in the order they were added:
 *           1    L, the label's length, 1..STORE_APP_LABEL_MAX
 *           L    the label: letters, digits, '.', '_', '-'; no two alike
 *           32   the verifier, HMAC-SHA-256(secret, user NUL password)
 *           8    created, int64
 *           8    last used, int64, 0 never
 *           8    expires, int64, 0 never
 *           1    flags: 0x01 send-only; the other bits must be 0
 *   and nothing after.
 *
 * A user record, version 3 (layout 3 stores): version 2 with the
 * version octet 3, and after the app passwords the user's own sending
 * limits, messages first, then recipients, each:
 *           1    mode: 0 the configuration's default, 1 no limit,
 *                2 a value; nothing else
 *   if the mode is 2:
 *           4    max, uint32, 1..STORE_LIMIT_MAX
 *           4    the window in seconds, uint32, 1..STORE_LIMIT_WINDOW_MAX
 *   and nothing after.  The limits live in the record rather than in
 *   a database of their own so that they go with the user (deleted,
 *   renamed, imported) in the same transaction, with nothing to keep
 *   in step.
 *
 * A layout N store holds version N records only, so that the
 * portcullis that made it can still read it; authctl upgrade makes a
 * layout 1 or 2 store layout 3 (every record rewritten as version 3,
 * the secret made if missing), in one transaction.  This code reads
 * every version from any layout, and writes the version its store's
 * layout holds.  An older portcullis refuses a newer layout as a whole
 * when it opens it ("has layout 3, this portcullis understands up to
 * 2"), and a newer record version as corrupt, so nothing it reads can
 * be misread.
 *
 * A cache key is described with the cache calls below.  A cache
 * record, version 1; integers little-endian:
 *   offset  size
 *   0       1    record version (1)
 *   1       1    flags: none yet, must be 0
 *   2       8    created, int64, seconds since the Epoch
 *   10      8    expires, int64, seconds since the Epoch
 *   18      32   the verifier of a password or negative entry; all
 *                zero in a token entry
 *   50      1    C, the canonical name's length, 0..255: 0 in a
 *                negative entry, 1..255 in the others
 *   51      C    the canonical name, as store_name_normalize() leaves it
 *   51+C    1    S, the scope's length, 0..255: 0 in a negative entry
 *   52+C    S    the scope, printable ASCII (0x20..0x7e)
 *   and nothing after.  The kind comes from the key: a record is
 *   checked against it.  A bad key or record is corrupt: an error that
 *   names the entry as far as it can be read, never a crash.
 *
 * The cache database is not in every layout 1 store: it came later,
 * and store_open() makes it when it opens a store for writing.  A
 * store opened read-only without it has an empty cache.
 *
 * Threads: after store_open() returns, every other call may be made
 * from any thread at once (MDB_NOTLS: a read transaction is not tied
 * to its thread; writers queue on LMDB's lock).  store_open() and
 * store_close() must not race with anything on the same store.
 *
 * Processes: do not open one store directory twice in one process
 * (POSIX locks are per process), and a child of fork(2) must neither
 * use nor close its parent's store: it opens its own.
 *
 * Errors come back as strings in err (errlen octets), fit for an
 * administrator: they name the directory, and the file and uid when
 * permission is denied.  Nothing is logged.
 *
 * The code: name.c (the name rules), record.c (the user record codec),
 * env.c (opening, layout, transactions), user.c (the users database),
 * cache_record.c (the cache codec), cache.c (the cache database), all
 * sharing store_int.h.  Only authd and authctl link it (libstore.a).
 */
#ifndef PORTCULLIS_STORE_H
#define PORTCULLIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"
#include "config.h"	/* CONF_AUTH_NAME_MAX, CONF_HASH_MAX */

#define STORE_LAYOUT		3	/* the newest layout this code knows */
#define STORE_RECORD_VERSION	3
#define STORE_SECRET_LEN	32
#define STORE_SCRAM_SALT_MIN	16	/* RFC 7677 4 asks for 128 bits */
#define STORE_SCRAM_SALT_MAX	32
#define STORE_SCRAM_ITER_MAX	SCRAM_ITER_MAX
#define STORE_SCRAM_KEY_LEN	32	/* SHA-256 */
#define STORE_APPS_MAX		16	/* app passwords of a user */
#define STORE_APP_LABEL_MAX	32
#define STORE_APP_VERIFIER_LEN	32
#define STORE_APP_SEND_ONLY	0x01	/* app password flag */
#define STORE_APP_RECORD	(1 + STORE_APP_LABEL_MAX + \
				    STORE_APP_VERIFIER_LEN + 8 * 3 + 1)
#define STORE_RECORD_MAX	(19 + 255 + 1 + \
				    STORE_ADDRS_MAX * (1 + STORE_ADDR_MAX) + \
				    1 + STORE_SCRAM_SALT_MAX + 4 + \
				    2 * STORE_SCRAM_KEY_LEN + \
				    1 + STORE_APPS_MAX * STORE_APP_RECORD + \
				    STORE_LIMIT_KINDS * 9)
#define STORE_MAPSIZE		(256UL * 1024 * 1024)	/* sparse */
#define STORE_MAXDBS		8

/* store_open() flags */
#define STORE_RDONLY		0x01
#define STORE_CREATE		0x02	/* mkdir 0700 and databases */

/* store_user_put() flags */
#define STORE_CREATE_ONLY	0x10	/* fail if the user exists */
#define STORE_REPLACE_ONLY	0x20	/* fail if the user does not */

#define STORE_LOCKED		0x01	/* record flag */

/*
 * A user's own sending limits (record version 3), one per kind: the
 * configuration's ("limit" in portcullis.conf), none at all, or max
 * per window seconds.  The bounds are the configuration's.
 */
#define STORE_LIMIT_MESSAGES	0
#define STORE_LIMIT_RECIPIENTS	1
#define STORE_LIMIT_KINDS	2
#define STORE_LIMIT_DEFAULT	0
#define STORE_LIMIT_NONE	1
#define STORE_LIMIT_VALUE	2
#define STORE_LIMIT_MAX		100000000
#define STORE_LIMIT_WINDOW_MAX	(30 * 86400)

struct store_limit {
	int	 mode;		/* STORE_LIMIT_DEFAULT, _NONE, _VALUE */
	uint32_t max;		/* _VALUE: 1..STORE_LIMIT_MAX */
	uint32_t window;	/* _VALUE: 1..STORE_LIMIT_WINDOW_MAX s */
};

struct store;

/* SCRAM-SHA-256's keys (RFC 5802 3); saltlen 0: none. */
struct store_scram {
	size_t	 saltlen;
	uint8_t	 salt[STORE_SCRAM_SALT_MAX];
	uint32_t iter;
	uint8_t	 stored_key[STORE_SCRAM_KEY_LEN];
	uint8_t	 server_key[STORE_SCRAM_KEY_LEN];
};

/* One app password: a named, independently revocable credential. */
struct store_app {
	char	 label[STORE_APP_LABEL_MAX + 1];
	uint8_t	 verifier[STORE_APP_VERIFIER_LEN];
	int64_t	 created, last_used, expires;	/* 0: never */
	int	 flags;				/* STORE_APP_* */
};

struct store_user {
	char	 name[CONF_AUTH_NAME_MAX];
	char	 hash[CONF_HASH_MAX];		/* "": no password login */
	int	 locked;
	int64_t	 created, changed;
	size_t	 naddrs;
	char	 addrs[STORE_ADDRS_MAX][STORE_ADDR_MAX + 2];
	int	 version;	/* the record's: set by decode; encode
				   writes it (0: STORE_RECORD_VERSION) */
	struct store_scram scram;		/* version 2 */
	size_t	 napps;
	struct store_app apps[STORE_APPS_MAX];
	struct store_limit limits[STORE_LIMIT_KINDS];	/* version 3 */
};

/*
 * Open the store in dir.  STORE_CREATE makes the directory (not its
 * parents) and the databases when missing; without it a missing store
 * is an error.  STORE_RDONLY opens for reading only (lock.mdb must
 * still be writable: readers register there).  NULL on error.
 */
struct store	*store_open(const char *dir, int flags, char *err,
		    size_t errlen);
void		 store_close(struct store *);

/*
 * 1 found (u filled), 0 no such user, -1 error (a corrupt record,
 * LMDB).  A name that store_name_normalize() refuses cannot be in the
 * store: 0, and err says why.
 */
int		 store_user_get(struct store *, const char *name,
		    struct store_user *u, char *err, size_t errlen);

/*
 * Write u, its name normalised first, its addresses checked and
 * normalised the same way (each must hold an '@').  created 0 means
 * now for a new user and "keep" for an existing one; changed 0 means
 * now.  flags: 0 (create or replace), STORE_CREATE_ONLY ("user
 * exists") or STORE_REPLACE_ONLY ("no such user").  0 ok, -1 error.
 */
int		 store_user_put(struct store *, const struct store_user *u,
		    int flags, char *err, size_t errlen);

/* The store's layout: 1, 2 or 3 (STORE_LAYOUT). */
int		 store_layout(const struct store *);

/*
 * Make a layout 1 or 2 store layout 3, in one write transaction: every
 * record rewritten as version 3, the secret made if there is none, the
 * layout written.  *n says how many users were rewritten.  A corrupt
 * record stops it, with nothing changed.  0 ok, -1 error ("already
 * layout 3" among them).
 */
int		 store_upgrade(struct store *, size_t *n, char *err,
		    size_t errlen);

/*
 * The store's secret (STORE_SECRET_LEN octets) into key: 0, or -1
 * (a layout 1 store has none; err says so).
 */
int		 store_secret(struct store *, uint8_t *key, char *err,
		    size_t errlen);

/*
 * Set the last-used time of app passwords, many in one write
 * transaction: n (user, label, when) triples; a user or label that is
 * gone by then is skipped, a time is only ever moved forward.  0 ok,
 * -1 error.
 */
struct store_touch {
	char	 user[CONF_AUTH_NAME_MAX];
	char	 label[STORE_APP_LABEL_MAX + 1];
	int64_t	 when;
};
int		 store_app_touch(struct store *, const struct store_touch *,
		    size_t n, char *err, size_t errlen);

/* An app password's label: 0 ok, -1 with err saying why not. */
int		 store_app_label_check(const char *label, char *err,
		    size_t errlen);

/* 0 deleted, -1 error ("no such user" among them). */
int		 store_user_del(struct store *, const char *name, char *err,
		    size_t errlen);

/*
 * Call cb for every user, in the order of their names, inside one
 * read transaction: cb must not call back into the store.  cb returns
 * 0 to go on, anything else to stop.  A corrupt record is skipped and
 * the walk goes on; the result is then -1 and err names the first one.
 * 0 the walk ended (or cb stopped it), -1 error.
 */
int		 store_user_list(struct store *,
		    int (*cb)(const struct store_user *, void *), void *arg,
		    char *err, size_t errlen);

/*
 * Copy in to out (outlen octets) with the domain, the part after the
 * last '@', folded to lower case (ASCII only; the local part is kept
 * as it is, RFC 5321 2.4).  Trims nothing.  Refuses (-1) an empty
 * name, one longer than CONF_AUTH_NAME_MAX - 1 octets or than outlen
 * allows, control characters, spaces, invalid UTF-8, and an empty
 * local part or domain around an '@'.  0 ok.
 */
int		 store_name_normalize(const char *in, char *out,
		    size_t outlen);
/* The same, and err says why a name is refused ("is empty", ...). */
int		 store_name_check(const char *in, char *out, size_t outlen,
		    char *err, size_t errlen);
/* A sending address: a name with an '@', at most STORE_ADDR_MAX. */
int		 store_addr_normalize(const char *in, char *out,
		    size_t outlen, char *err, size_t errlen);

/*
 * The record codec, exposed for tests and fuzzing.  encode: the
 * record's length, or -1 (err filled) when u breaks the format (a
 * version 1 record holds no SCRAM keys and no app passwords, a
 * version 1 or 2 record no limits).
 * decode: 0, or -1 (err says what is wrong); u->name is left alone,
 * u->version says which version it read.
 */
int		 store_record_encode(const struct store_user *u,
		    unsigned char *buf, size_t buflen, char *err,
		    size_t errlen);
int		 store_record_decode(const unsigned char *buf, size_t len,
		    struct store_user *u, char *err, size_t errlen);

/*
 * The login cache.  An entry records what one remote checker (oauth,
 * ldap) said about one user's password or one bearer token.  Its key always holds the
 * checker and the user, so no two users can share an entry:
 *   password:	'p' checker NUL user NUL
 *   negative:	'n' checker NUL user NUL	(the last refused password)
 *   token:	't' checker NUL user NUL sha256(token)	(user as the
 *		client named it; "" when it named none)
 * The secret is never stored: a password entry holds
 * HMAC-SHA-256(key, checker, user, password), a token entry only the
 * token's hash (in its key).
 */
#define STORE_CACHE_PASSWORD	'p'
#define STORE_CACHE_NEGATIVE	'n'
#define STORE_CACHE_TOKEN	't'
#define STORE_CACHE_HASH_LEN	32
/*
 * Version 1: header, canonical name, scope.  Version 2, written only
 * for an entry with sending addresses (so that a portcullis that knows
 * only 1 still reads every other entry): then N, and N times a length
 * octet and an address (store_addr_normalize()'s form).
 */
#define STORE_CACHE_RECORD_VERSION	2
/* kind, checker NUL, user NUL, token hash: 353 < LMDB's 511 */
#define STORE_CACHE_KEY_MAX	(1 + CONF_NAME_MAX + CONF_AUTH_NAME_MAX + \
				    STORE_CACHE_HASH_LEN)
#define STORE_CACHE_RECORD_MAX	(50 + 1 + 255 + 1 + 255 + 1 + \
				    STORE_ADDRS_MAX * (1 + STORE_ADDR_MAX))

/*
 * checker: 1..CONF_NAME_MAX - 1 octets of UTF-8 without control
 * characters (spaces are allowed).  user: a name store_name_normalize()
 * takes, normalised on the way in; "" only in a token entry.  A
 * negative entry has no canonical name and no scope; the others have
 * a canonical name (normalised on the way in too).  verifier is not
 * stored for a token entry (zeros), token_hash only for one.
 */
struct store_cache_entry {
	/* the key */
	int	 kind;				/* STORE_CACHE_* */
	char	 checker[CONF_NAME_MAX];
	char	 user[CONF_AUTH_NAME_MAX];	/* normalised */
	uint8_t	 token_hash[STORE_CACHE_HASH_LEN];	/* token entries */
	/* the record */
	int64_t	 created;			/* seconds since the Epoch */
	int64_t	 expires;			/* not valid from then on */
	uint8_t	 verifier[STORE_CACHE_HASH_LEN];	/* password, negative */
	char	 canonical[CONF_AUTH_NAME_MAX];	/* who it authenticates */
	char	 scope[CONF_HOST_MAX];		/* tokens: granted scope */
	/* password entries: the addresses the user may send as */
	char	 addrs[STORE_ADDRS_MAX][STORE_ADDR_MAX + 1];
	int	 naddrs;
};

/* "password", "negative", "token"; "?" for anything else. */
const char	*store_cache_kind_name(int kind);

/*
 * Look up the entry with e's key: 1 found (e's record filled; e->user
 * normalised), 0 none (e's record zeroed; err says why), -1 error (a
 * corrupt record, LMDB, a bad kind or checker).  A user name that
 * cannot be stored, and a store opened read-only that has no cache
 * database, have no entry: 0.  An expired entry is returned as any
 * other: expires is for the caller to judge (stale-if-error).
 */
int		 store_cache_get(struct store *, struct store_cache_entry *e,
		    char *err, size_t errlen);
/*
 * Create or replace the entry with e's key, in one short write
 * transaction.  0 ok, -1 error (e breaks the rules above, read-only).
 */
int		 store_cache_put(struct store *,
		    const struct store_cache_entry *e, char *err,
		    size_t errlen);
/*
 * Delete the entries of user (its key's user or its canonical name,
 * after store_name_normalize()), or all when user is NULL, in one
 * write transaction; *n says how many (n may be NULL).  An entry that
 * cannot be decoded is kept, unless its key names user or user is
 * NULL: it cannot serve a login.  0 ok, -1 error (a name that cannot
 * be stored among them).
 */
int		 store_cache_flush(struct store *, const char *user,
		    size_t *n, char *err, size_t errlen);
/*
 * Delete the entries that are expired at "before" (expires <= before)
 * in one write transaction; *n how many (n may be NULL).  An entry
 * that cannot be decoded is kept (store_cache_list reports it, flush
 * removes it).  0 ok, -1 error.
 */
int		 store_cache_expire(struct store *, int64_t before, size_t *n,
		    char *err, size_t errlen);
/*
 * Call cb for the entries of user (as for flush), or all, inside one
 * read transaction, in key order (kind, checker, user, hash); cb must
 * not call back into the store, and returns non-zero to stop.  A
 * corrupt entry, the user's or not, is skipped and makes the result
 * -1, err naming the first.  A store opened read-only without a cache
 * database: 0, no call.
 */
int		 store_cache_list(struct store *, const char *user,
		    int (*cb)(const struct store_cache_entry *, void *),
		    void *arg, char *err, size_t errlen);

/*
 * The cache codec, exposed for tests and fuzzing.  key encode: checks
 * e's key and writes it with the user normalised, into buf of at least
 * STORE_CACHE_KEY_MAX octets: its length, or -1.  key decode: fills
 * kind, checker, user and token_hash, refusing a user that is not
 * normalised: 0 or -1.  record encode: into buf of at least
 * STORE_CACHE_RECORD_MAX octets, e->kind saying which rules apply: its
 * length, or -1.  record decode: e->kind must be set (from the key);
 * fills the record's fields, zeroed on error: 0 or -1.  err says what
 * is wrong.
 */
int		 store_cache_key_encode(const struct store_cache_entry *e,
		    unsigned char *buf, size_t buflen, char *err,
		    size_t errlen);
int		 store_cache_key_decode(const unsigned char *buf, size_t len,
		    struct store_cache_entry *e, char *err, size_t errlen);
int		 store_cache_record_encode(const struct store_cache_entry *e,
		    unsigned char *buf, size_t buflen, char *err,
		    size_t errlen);
int		 store_cache_record_decode(const unsigned char *buf,
		    size_t len, struct store_cache_entry *e, char *err,
		    size_t errlen);

#endif /* PORTCULLIS_STORE_H */
