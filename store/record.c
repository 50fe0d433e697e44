/*
 * record.c -- the user record codec: a struct store_user to and from
 * the octets of the users database (the format is in store.h).
 *
 * Guarantees:
 * - a record read from the file is trusted in nothing: every length
 *   and every octet is checked before it is copied, and a bad record
 *   is an error saying what is wrong, never a crash;
 * - a record of a newer version than STORE_RECORD_VERSION is refused,
 *   so that an old portcullis never misreads a newer store; versions
 *   1, 2 and 3 are all read, and written as u->version says;
 * - encode refuses a user that would not decode;
 * - no state, no LMDB: every call is thread-safe.
 */

#include <sys/types.h>

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

static int
hash_ok(const unsigned char *s, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
store_app_label_check(const char *label, char *err, size_t errlen)
{
	size_t	 i, len = strlen(label);

	if (len == 0 || len > STORE_APP_LABEL_MAX) {
		errbuf_set(err, errlen, "a label is 1 to %d characters",
		    STORE_APP_LABEL_MAX);
		return -1;
	}
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)label[i]) &&
		    strchr("._-", label[i]) == NULL) {
			errbuf_set(err, errlen, "a label holds letters, digits, "
			    "'.', '_' and '-' only");
			return -1;
		}
	return 0;
}

static int
encode_scram(const struct store_scram *k, unsigned char *buf, size_t *o,
    char *err, size_t errlen)
{
	if (k->saltlen == 0) {
		buf[(*o)++] = 0;
		return 0;
	}
	if (k->saltlen < STORE_SCRAM_SALT_MIN ||
	    k->saltlen > STORE_SCRAM_SALT_MAX) {
		errbuf_set(err, errlen, "the SCRAM salt is not %d..%d octets",
		    STORE_SCRAM_SALT_MIN, STORE_SCRAM_SALT_MAX);
		return -1;
	}
	if (k->iter == 0 || k->iter > STORE_SCRAM_ITER_MAX) {
		errbuf_set(err, errlen, "the SCRAM iteration count is not "
		    "1..%d", STORE_SCRAM_ITER_MAX);
		return -1;
	}
	buf[(*o)++] = (unsigned char)k->saltlen;
	memcpy(buf + *o, k->salt, k->saltlen);
	*o += k->saltlen;
	put_u32(buf + *o, k->iter);
	*o += 4;
	memcpy(buf + *o, k->stored_key, STORE_SCRAM_KEY_LEN);
	*o += STORE_SCRAM_KEY_LEN;
	memcpy(buf + *o, k->server_key, STORE_SCRAM_KEY_LEN);
	*o += STORE_SCRAM_KEY_LEN;
	return 0;
}

/* Does u hold a limit other than the default? */
static int
limits_set(const struct store_user *u)
{
	for (int k = 0; k < STORE_LIMIT_KINDS; k++)
		if (u->limits[k].mode != STORE_LIMIT_DEFAULT)
			return 1;
	return 0;
}

static const char *const limit_names[STORE_LIMIT_KINDS] = {
	[STORE_LIMIT_MESSAGES] = "message",
	[STORE_LIMIT_RECIPIENTS] = "recipient",
};

/* A limit's fields: NULL, or what is wrong with them. */
static const char *
limit_problem(int mode, uint32_t max, uint32_t window)
{
	if (mode == STORE_LIMIT_DEFAULT || mode == STORE_LIMIT_NONE)
		return NULL;
	if (mode != STORE_LIMIT_VALUE)
		return "has an unknown mode";
	if (max == 0 || max > STORE_LIMIT_MAX)
		return "is out of range";
	if (window == 0 || window > STORE_LIMIT_WINDOW_MAX)
		return "has a window out of range";
	return NULL;
}

static int
encode_limits(const struct store_user *u, unsigned char *buf, size_t *o,
    char *err, size_t errlen)
{
	const struct store_limit *l;
	const char		*why;

	for (int k = 0; k < STORE_LIMIT_KINDS; k++) {
		l = &u->limits[k];
		if ((why = limit_problem(l->mode, l->max, l->window)) != NULL) {
			errbuf_set(err, errlen, "the %s limit %s",
			    limit_names[k], why);
			return -1;
		}
		buf[(*o)++] = (unsigned char)l->mode;
		if (l->mode != STORE_LIMIT_VALUE)
			continue;
		put_u32(buf + *o, l->max);
		put_u32(buf + *o + 4, l->window);
		*o += 8;
	}
	return 0;
}

static int
encode_apps(const struct store_user *u, unsigned char *buf, size_t *o,
    char *err, size_t errlen)
{
	const struct store_app	*a;
	char			 why[96];
	size_t			 i, j, len;

	if (u->napps > STORE_APPS_MAX) {
		errbuf_set(err, errlen, "more than %d app passwords",
		    STORE_APPS_MAX);
		return -1;
	}
	buf[(*o)++] = (unsigned char)u->napps;
	for (i = 0; i < u->napps; i++) {
		a = &u->apps[i];
		len = strnlen(a->label, sizeof(a->label));
		if (len >= sizeof(a->label) ||
		    store_app_label_check(a->label, why, sizeof(why)) == -1) {
			errbuf_set(err, errlen, "app password %zu: %s", i + 1,
			    len >= sizeof(a->label) ? "label too long" : why);
			return -1;
		}
		for (j = 0; j < i; j++)
			if (strcmp(u->apps[j].label, a->label) == 0) {
				errbuf_set(err, errlen, "app password label "
				    "\"%s\" is used twice", a->label);
				return -1;
			}
		if ((a->flags & ~STORE_APP_SEND_ONLY) != 0) {
			errbuf_set(err, errlen, "app password %zu: unknown "
			    "flags", i + 1);
			return -1;
		}
		buf[(*o)++] = (unsigned char)len;
		memcpy(buf + *o, a->label, len);
		*o += len;
		memcpy(buf + *o, a->verifier, STORE_APP_VERIFIER_LEN);
		*o += STORE_APP_VERIFIER_LEN;
		put_i64(buf + *o, a->created);
		put_i64(buf + *o + 8, a->last_used);
		put_i64(buf + *o + 16, a->expires);
		*o += 24;
		buf[(*o)++] = (unsigned char)a->flags;
	}
	return 0;
}

int
store_record_encode(const struct store_user *u, unsigned char *buf,
    size_t buflen, char *err, size_t errlen)
{
	char		 why[64];
	size_t		 hlen, alen, i, o;
	int		 version;

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
	version = u->version == 0 ? STORE_RECORD_VERSION : u->version;
	if (version < 1 || version > STORE_RECORD_VERSION) {
		errbuf_set(err, errlen, "unknown record version %d", version);
		return -1;
	}
	if (version < 3 && limits_set(u)) {
		errbuf_set(err, errlen, "a layout %d store holds no sending "
		    "limits: run authctl upgrade", version);
		return -1;
	}
	if (version == 1 && (u->scram.saltlen != 0 || u->napps != 0)) {
		errbuf_set(err, errlen, "a layout 1 store holds no SCRAM keys "
		    "and no app passwords: run authctl upgrade");
		return -1;
	}

	buf[0] = (unsigned char)version;
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
		if (!store_text_ok((const unsigned char *)u->addrs[i], alen, 0,
		    why, sizeof(why))) {
			errbuf_set(err, errlen, "address %zu %s", i + 1, why);
			return -1;
		}
		buf[o++] = (unsigned char)alen;
		memcpy(buf + o, u->addrs[i], alen);
		o += alen;
	}
	if (version == 1)
		return (int)o;
	if (encode_scram(&u->scram, buf, &o, err, errlen) == -1 ||
	    encode_apps(u, buf, &o, err, errlen) == -1)
		return -1;
	if (version == 3 && encode_limits(u, buf, &o, err, errlen) == -1)
		return -1;
	return (int)o;
}

/* The fixed part and the hash: the offset after the hash, or -1. */
static int
record_decode_head(const unsigned char *buf, size_t len,
    struct store_user *u, char *err, size_t errlen)
{
	size_t		 hlen;

	if (len < 1) {
		errbuf_set(err, errlen, "the record is empty");
		return -1;
	}
	if (buf[0] < 1 || buf[0] > STORE_RECORD_VERSION) {
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
	u->version = buf[0];
	u->locked = (buf[1] & STORE_LOCKED) != 0;
	u->created = get_i64(buf + 2);
	u->changed = get_i64(buf + 10);
	memcpy(u->hash, buf + RECORD_HEADER, hlen);
	u->hash[hlen] = '\0';
	return (int)(RECORD_HEADER + hlen);
}

/*
 * Address i + 1 at buf[*o], len octets in all, into u->addrs[i]; *o
 * moves past it.  0, or -1 with err.
 */
static int
record_decode_addr(const unsigned char *buf, size_t len, size_t *o,
    size_t i, struct store_user *u, char *err, size_t errlen)
{
	char		 addr[STORE_ADDR_MAX + 2];
	char		 why[64];
	size_t		 alen;

	if (*o >= len) {
		errbuf_set(err, errlen, "address %zu is missing", i + 1);
		return -1;
	}
	alen = buf[(*o)++];
	if (alen == 0 || alen > STORE_ADDR_MAX || alen > len - *o) {
		errbuf_set(err, errlen, "address %zu has a bad length "
		    "(%zu octets)", i + 1, alen);
		return -1;
	}
	memcpy(addr, buf + *o, alen);
	addr[alen] = '\0';
	*o += alen;
	/* store_addr_normalize() would stop at a NUL, and pass the rest. */
	if (memchr(addr, '\0', alen) != NULL) {
		errbuf_set(err, errlen, "address %zu contains a "
		    "control character", i + 1);
		return -1;
	}
	if (store_addr_normalize(addr, u->addrs[i], sizeof(u->addrs[i]),
	    why, sizeof(why)) == -1) {
		errbuf_set(err, errlen, "address %zu %s", i + 1, why);
		return -1;
	}
	if (strcmp(addr, u->addrs[i]) != 0) {
		errbuf_set(err, errlen, "address %zu is not normalised",
		    i + 1);
		return -1;
	}
	return 0;
}

static int
decode_scram(const unsigned char *buf, size_t len, size_t *o,
    struct store_scram *k, char *err, size_t errlen)
{
	size_t	 s;

	if (*o >= len) {
		errbuf_set(err, errlen, "the SCRAM keys are missing");
		return -1;
	}
	if ((s = buf[(*o)++]) == 0)
		return 0;
	if (s < STORE_SCRAM_SALT_MIN || s > STORE_SCRAM_SALT_MAX ||
	    len - *o < s + 4 + 2 * STORE_SCRAM_KEY_LEN) {
		errbuf_set(err, errlen, "the SCRAM keys have a bad length");
		return -1;
	}
	k->saltlen = s;
	memcpy(k->salt, buf + *o, s);
	*o += s;
	k->iter = get_u32(buf + *o);
	*o += 4;
	if (k->iter == 0 || k->iter > STORE_SCRAM_ITER_MAX) {
		errbuf_set(err, errlen, "the SCRAM iteration count %u is out "
		    "of range", k->iter);
		return -1;
	}
	memcpy(k->stored_key, buf + *o, STORE_SCRAM_KEY_LEN);
	*o += STORE_SCRAM_KEY_LEN;
	memcpy(k->server_key, buf + *o, STORE_SCRAM_KEY_LEN);
	*o += STORE_SCRAM_KEY_LEN;
	return 0;
}

static int
decode_app(const unsigned char *buf, size_t len, size_t *o, size_t i,
    struct store_user *u, char *err, size_t errlen)
{
	struct store_app	*a = &u->apps[i];
	char			 why[96];
	size_t			 l, j;

	if (*o >= len || (l = buf[*o]) == 0 || l > STORE_APP_LABEL_MAX ||
	    len - *o - 1 < l + STORE_APP_VERIFIER_LEN + 25) {
		errbuf_set(err, errlen, "app password %zu is cut short or has "
		    "a bad label length", i + 1);
		return -1;
	}
	(*o)++;
	memcpy(a->label, buf + *o, l);
	a->label[l] = '\0';
	*o += l;
	if (strlen(a->label) != l ||
	    store_app_label_check(a->label, why, sizeof(why)) == -1) {
		errbuf_set(err, errlen, "app password %zu: bad label", i + 1);
		return -1;
	}
	for (j = 0; j < i; j++)
		if (strcmp(u->apps[j].label, a->label) == 0) {
			errbuf_set(err, errlen, "app password %zu: its label "
			    "is used twice", i + 1);
			return -1;
		}
	memcpy(a->verifier, buf + *o, STORE_APP_VERIFIER_LEN);
	*o += STORE_APP_VERIFIER_LEN;
	a->created = get_i64(buf + *o);
	a->last_used = get_i64(buf + *o + 8);
	a->expires = get_i64(buf + *o + 16);
	*o += 24;
	a->flags = buf[(*o)++];
	if ((a->flags & ~STORE_APP_SEND_ONLY) != 0) {
		errbuf_set(err, errlen, "app password %zu: unknown flags "
		    "0x%02x", i + 1, a->flags);
		return -1;
	}
	return 0;
}

static int
decode_limits(const unsigned char *buf, size_t len, size_t *o,
    struct store_user *u, char *err, size_t errlen)
{
	struct store_limit	*l;
	const char		*why;

	for (int k = 0; k < STORE_LIMIT_KINDS; k++) {
		l = &u->limits[k];
		if (*o >= len) {
			errbuf_set(err, errlen, "the %s limit is missing",
			    limit_names[k]);
			return -1;
		}
		l->mode = buf[(*o)++];
		if (l->mode == STORE_LIMIT_VALUE) {
			if (len - *o < 8) {
				errbuf_set(err, errlen, "the %s limit is cut "
				    "short", limit_names[k]);
				return -1;
			}
			l->max = get_u32(buf + *o);
			l->window = get_u32(buf + *o + 4);
			*o += 8;
		}
		if ((why = limit_problem(l->mode, l->max, l->window)) != NULL) {
			errbuf_set(err, errlen, "the %s limit %s",
			    limit_names[k], why);
			return -1;
		}
	}
	return 0;
}

static int
decode_apps(const unsigned char *buf, size_t len, size_t *o,
    struct store_user *u, char *err, size_t errlen)
{
	size_t	 i, n;

	if (*o >= len) {
		errbuf_set(err, errlen, "the app passwords are missing");
		return -1;
	}
	if ((n = buf[(*o)++]) > STORE_APPS_MAX) {
		errbuf_set(err, errlen, "%zu app passwords, more than %d", n,
		    STORE_APPS_MAX);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (decode_app(buf, len, o, i, u, err, errlen) == -1)
			return -1;
	u->napps = n;
	return 0;
}

int
store_record_decode(const unsigned char *buf, size_t len,
    struct store_user *u, char *err, size_t errlen)
{
	size_t		 i, o;
	int		 head;

	u->napps = 0;
	explicit_bzero(&u->scram, sizeof(u->scram));
	memset(u->limits, 0, sizeof(u->limits));
	if ((head = record_decode_head(buf, len, u, err, errlen)) == -1)
		return -1;
	o = (size_t)head;
	u->naddrs = buf[o++];
	if (u->naddrs > STORE_ADDRS_MAX) {
		errbuf_set(err, errlen, "%zu addresses, more than %d", u->naddrs,
		    STORE_ADDRS_MAX);
		u->naddrs = 0;
		return -1;
	}
	for (i = 0; i < u->naddrs; i++)
		if (record_decode_addr(buf, len, &o, i, u, err, errlen) == -1)
			goto bad;
	if (u->version >= 2 &&
	    (decode_scram(buf, len, &o, &u->scram, err, errlen) == -1 ||
	    decode_apps(buf, len, &o, u, err, errlen) == -1))
		goto bad;
	if (u->version >= 3 && decode_limits(buf, len, &o, u, err,
	    errlen) == -1)
		goto bad;
	if (o != len) {
		errbuf_set(err, errlen, "%zu octets of garbage after the record",
		    len - o);
		goto bad;
	}
	return 0;
 bad:
	u->naddrs = 0;
	u->napps = 0;
	explicit_bzero(&u->scram, sizeof(u->scram));
	explicit_bzero(u->apps, sizeof(u->apps));
	memset(u->limits, 0, sizeof(u->limits));
	return -1;
}

/* The creation time a record holds, or -1 if it holds none. */
int
store_record_created(const MDB_val *v, int64_t *created)
{
	const unsigned char	*p = v->mv_data;

	if (v->mv_size < RECORD_HEADER || p[0] < 1 ||
	    p[0] > STORE_RECORD_VERSION)
		return -1;
	*created = get_i64(p + 2);
	return 0;
}
