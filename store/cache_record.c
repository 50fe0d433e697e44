/*
 * cache_record.c -- the login cache codec: a struct store_cache_entry
 * to and from the key and the record of the cache database (the
 * formats are in store.h).
 *
 * Guarantees:
 * - a key or record read from the file is trusted in nothing: every
 *   length and octet is checked, names must already be normalised, and
 *   a record must fit the kind its key gives;
 * - a token entry never holds a verifier, a negative entry never a
 *   canonical name or a scope: encode refuses them, decode too;
 * - on error, nothing half-decoded is left in the entry;
 * - no state, no LMDB: every call is thread-safe.
 */

#include <sys/types.h>

#include <string.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/*
 * The login cache.  Keys and records are described in store.h; as for
 * users, nothing read from the file is trusted before it is checked.
 */

int
store_cache_kind_ok(int kind)
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

static int	 addr_ok(const char *, char *, size_t);

/* A checker name: 1..CONF_NAME_MAX - 1 octets of text (spaces too). */
static int
checker_ok(const unsigned char *s, size_t len, char *err, size_t errlen)
{
	if (len == 0) {
		errbuf_set(err, errlen, "is empty");
		return 0;
	}
	if (len >= CONF_NAME_MAX) {
		errbuf_set(err, errlen, "is too long");
		return 0;
	}
	return store_text_ok(s, len, 1, err, errlen);
}

/*
 * The record's own rule for the scope field: printable ASCII, so that
 * authctl can show it.  Whether it is a well-formed scope (RFC 6749
 * 3.3) is for the oauth checker to judge before it is remembered
 * (common/scope.c); the store only keeps what it was given.
 */
static int
printable_ok(const unsigned char *s, size_t len)
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
int
store_cache_key(const struct store_cache_entry *e, unsigned char *buf,
    size_t buflen, char *user, char *err, size_t errlen)
{
	char		 safe[CONF_NAME_MAX * 4];
	char		 why[64];
	size_t		 clen, ulen, o;

	if (!store_cache_kind_ok(e->kind)) {
		errbuf_set(err, errlen, "unknown cache entry kind %d", e->kind);
		return -1;
	}
	clen = strnlen(e->checker, sizeof(e->checker));
	if (!checker_ok((const unsigned char *)e->checker, clen, why, sizeof(why))) {
		errbuf_set(err, errlen, "checker name \"%s\" %s",
		    escape_text(e->checker, clen, safe, sizeof(safe)), why);
		return -1;
	}
	user[0] = '\0';
	/* A token may come with no user name; a password never does. */
	if ((e->kind != STORE_CACHE_TOKEN || e->user[0] != '\0') &&
	    store_name_check(e->user, user, CONF_AUTH_NAME_MAX, why,
	    sizeof(why)) == -1) {
		store_name_error(e->user, why, err, errlen);
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

	len = store_cache_key(e, buf, buflen, user, err, errlen);
	return len < 0 ? -1 : len;
}

/* The checker name at p, rest octets to go: into e, *next past its NUL. */
static int
key_decode_checker(const unsigned char *p, size_t rest,
    struct store_cache_entry *e, const unsigned char **next, char *err,
    size_t errlen)
{
	const unsigned char	*nul;
	char			 why[64];
	size_t			 clen;

	if ((nul = memchr(p, '\0', rest)) == NULL) {
		errbuf_set(err, errlen, "the checker name has no end");
		return -1;
	}
	clen = (size_t)(nul - p);
	if (!checker_ok(p, clen, why, sizeof(why))) {
		errbuf_set(err, errlen, "the checker name %s", why);
		return -1;
	}
	memcpy(e->checker, p, clen);
	e->checker[clen] = '\0';
	*next = nul + 1;
	return 0;
}

/*
 * The user name at p, rest octets to go, in a key of kind: into e,
 * *next past its NUL.  It must be normalised already; only a token's
 * may be empty.
 */
static int
key_decode_user(int kind, const unsigned char *p, size_t rest,
    struct store_cache_entry *e, const unsigned char **next, char *err,
    size_t errlen)
{
	const unsigned char	*nul;
	char			 why[64];
	char			 name[CONF_AUTH_NAME_MAX];
	size_t			 ulen;

	if ((nul = memchr(p, '\0', rest)) == NULL) {
		errbuf_set(err, errlen, "the user name has no end");
		return -1;
	}
	ulen = (size_t)(nul - p);
	if (ulen >= sizeof(name)) {
		errbuf_set(err, errlen, "the user name is too long");
		return -1;
	}
	memcpy(name, p, ulen);
	name[ulen] = '\0';
	if (ulen == 0 && kind != STORE_CACHE_TOKEN) {
		errbuf_set(err, errlen, "the user name is empty");
		return -1;
	}
	if (ulen > 0) {
		if (store_name_check(name, e->user, sizeof(e->user),
		    why, sizeof(why)) == -1) {
			errbuf_set(err, errlen, "the user name %s", why);
			return -1;
		}
		if (strcmp(name, e->user) != 0) {
			errbuf_set(err, errlen, "the user name is not "
			    "normalised");
			return -1;
		}
	}
	*next = nul + 1;
	return 0;
}

int
store_cache_key_decode(const unsigned char *buf, size_t len,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	const unsigned char	*p;
	size_t			 rest;

	e->kind = 0;
	memset(e->checker, 0, sizeof(e->checker));
	memset(e->user, 0, sizeof(e->user));
	memset(e->token_hash, 0, sizeof(e->token_hash));
	if (len < 1) {
		errbuf_set(err, errlen, "the key is empty");
		return -1;
	}
	if (!store_cache_kind_ok(buf[0])) {
		errbuf_set(err, errlen, "unknown entry kind 0x%02x", buf[0]);
		return -1;
	}
	if (key_decode_checker(buf + 1, len - 1, e, &p, err, errlen) == -1)
		goto bad;
	if (key_decode_user(buf[0], p, len - (size_t)(p - buf), e, &p, err,
	    errlen) == -1)
		goto bad;

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
void
store_cache_record_clear(struct store_cache_entry *e)
{
	e->created = 0;
	e->expires = 0;
	memset(e->verifier, 0, sizeof(e->verifier));
	memset(e->canonical, 0, sizeof(e->canonical));
	memset(e->scope, 0, sizeof(e->scope));
	memset(e->addrs, 0, sizeof(e->addrs));
	e->naddrs = 0;
}

int
store_cache_record_encode(const struct store_cache_entry *e,
    unsigned char *buf, size_t buflen, char *err, size_t errlen)
{
	char		 canon[CONF_AUTH_NAME_MAX];
	char		 safe[CONF_AUTH_NAME_MAX];
	char		 why[64];
	size_t		 clen = 0, slen, o;

	if (!store_cache_kind_ok(e->kind)) {
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
	} else if (store_name_check(e->canonical, canon, sizeof(canon),
	    why, sizeof(why)) == -1) {
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
	if (!printable_ok((const unsigned char *)e->scope, slen)) {
		errbuf_set(err, errlen, "the scope has an octet that is not "
		    "printable ASCII");
		return -1;
	}
	if (e->naddrs < 0 || e->naddrs > STORE_ADDRS_MAX ||
	    (e->naddrs > 0 && e->kind != STORE_CACHE_PASSWORD)) {
		errbuf_set(err, errlen, "only a password entry has sending "
		    "addresses, at most %d", STORE_ADDRS_MAX);
		return -1;
	}
	for (int i = 0; i < e->naddrs; i++)
		if (!addr_ok(e->addrs[i], err, errlen))
			return -1;
	if (buflen < STORE_CACHE_RECORD_MAX) {
		errbuf_set(err, errlen, "cache record buffer too small");
		return -1;
	}

	buf[0] = e->naddrs > 0 ? 2 : 1;
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
	if (e->naddrs == 0)
		return (int)o;
	buf[o++] = (unsigned char)e->naddrs;
	for (int i = 0; i < e->naddrs; i++) {
		size_t	 al = strlen(e->addrs[i]);

		buf[o++] = (unsigned char)al;
		memcpy(buf + o, e->addrs[i], al);
		o += al;
	}
	return (int)o;
}

/* A sending address as store_addr_normalize() leaves it. */
static int
addr_ok(const char *a, char *err, size_t errlen)
{
	char	 norm[STORE_ADDR_MAX + 1], why[64];

	if (store_addr_normalize(a, norm, sizeof(norm), why,
	    sizeof(why)) == -1) {
		errbuf_set(err, errlen, "a sending address %s", why);
		return 0;
	}
	if (strcmp(a, norm) != 0) {
		errbuf_set(err, errlen, "a sending address is not "
		    "normalised");
		return 0;
	}
	return 1;
}

/* Version 2's addresses at buf[*o] into e: 0, or -1 with err. */
static int
record_decode_addrs(const unsigned char *buf, size_t len, size_t *o,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	size_t	 n, al, i;

	if (*o >= len) {
		errbuf_set(err, errlen, "a version 2 record without "
		    "addresses");
		return -1;
	}
	n = buf[(*o)++];
	if (n == 0 || n > STORE_ADDRS_MAX || e->kind != STORE_CACHE_PASSWORD) {
		errbuf_set(err, errlen, "%zu sending addresses in a %s entry",
		    n, store_cache_kind_name(e->kind));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (*o >= len || (al = buf[*o]) == 0 || al > STORE_ADDR_MAX ||
		    al > len - *o - 1) {
			errbuf_set(err, errlen, "sending address %zu overruns "
			    "the record", i);
			return -1;
		}
		(*o)++;
		if (memchr(buf + *o, '\0', al) != NULL) {
			errbuf_set(err, errlen, "a sending address holds a "
			    "NUL");
			return -1;
		}
		memcpy(e->addrs[i], buf + *o, al);
		e->addrs[i][al] = '\0';
		*o += al;
		if (!addr_ok(e->addrs[i], err, errlen))
			return -1;
	}
	e->naddrs = (int)n;
	return 0;
}

/* The fixed part of a record of e->kind: 0, or -1 with err. */
static int
record_decode_head(const unsigned char *buf, size_t len,
    const struct store_cache_entry *e, char *err, size_t errlen)
{
	size_t	 i;

	if (len < 1) {
		errbuf_set(err, errlen, "the record is empty");
		return -1;
	}
	if (buf[0] != 1 && buf[0] != STORE_CACHE_RECORD_VERSION) {
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
	return 0;
}

/*
 * The canonical name at buf[*o] into e, *o moving past it; there is
 * room for the scope's length after it.  0, or -1 with err.
 */
static int
record_decode_canonical(const unsigned char *buf, size_t len, size_t *o,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	char		 name[CONF_AUTH_NAME_MAX];
	char		 why[64];
	size_t		 clen;

	clen = buf[(*o)++];
	if (clen + 1 > len - *o) {
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
	memcpy(name, buf + *o, clen);
	name[clen] = '\0';
	*o += clen;
	/* store_name_check() would stop at a NUL, and pass the rest. */
	if (memchr(name, '\0', clen) != NULL) {
		errbuf_set(err, errlen, "the canonical name contains a control "
		    "character");
		return -1;
	}
	if (clen == 0)
		return 0;
	if (store_name_check(name, e->canonical, sizeof(e->canonical),
	    why, sizeof(why)) == -1) {
		errbuf_set(err, errlen, "the canonical name %s", why);
		return -1;
	}
	if (strcmp(name, e->canonical) != 0) {
		errbuf_set(err, errlen, "the canonical name is not "
		    "normalised");
		return -1;
	}
	return 0;
}

/* The scope at buf[*o] into e, *o moving past it: 0, or -1 with err. */
static int
record_decode_scope(const unsigned char *buf, size_t len, size_t *o,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	size_t	 slen;

	slen = buf[(*o)++];
	if (slen > len - *o) {
		errbuf_set(err, errlen, "the scope (%zu octets) overruns the "
		    "record (%zu octets)", slen, len);
		return -1;
	}
	if (e->kind == STORE_CACHE_NEGATIVE && slen != 0) {
		errbuf_set(err, errlen, "a negative entry has a scope");
		return -1;
	}
	if (!printable_ok(buf + *o, slen)) {
		errbuf_set(err, errlen, "the scope has an octet that is not "
		    "printable ASCII");
		return -1;
	}
	memcpy(e->scope, buf + *o, slen);
	e->scope[slen] = '\0';
	*o += slen;
	return 0;
}

int
store_cache_record_decode(const unsigned char *buf, size_t len,
    struct store_cache_entry *e, char *err, size_t errlen)
{
	size_t	 o = CACHE_HEADER;

	store_cache_record_clear(e);
	if (!store_cache_kind_ok(e->kind)) {
		errbuf_set(err, errlen, "unknown cache entry kind %d", e->kind);
		return -1;
	}
	if (record_decode_head(buf, len, e, err, errlen) == -1 ||
	    record_decode_canonical(buf, len, &o, e, err, errlen) == -1 ||
	    record_decode_scope(buf, len, &o, e, err, errlen) == -1 ||
	    (buf[0] == 2 && record_decode_addrs(buf, len, &o, e, err,
	    errlen) == -1))
		goto bad;
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
	store_cache_record_clear(e);
	return -1;
}
