/*
 * scheme.c -- a password hash as a directory or a database holds it:
 * "{SCHEME}hash", as RFC 3112's userPassword syntax and Dovecot's
 * password schemes write it, or a bare crypt(3) or argon2 string.
 *
 * The ldap and sql checkers verify what they read with this, on the
 * hash pool; the crypt and argon2 schemes go to passwd_verify(), the
 * salted SHA family (OpenLDAP's slappasswd, Dovecot's SSHA*) is
 * computed here.  Schemes that keep a password readable or that cost
 * nothing to brute-force unsalted are refused (-1), never matched:
 * {PLAIN}, {CLEARTEXT}, {MD5}, and any scheme not in the table.
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "base64.h"
#include "passwd.h"

#define SCHEME_NAME_MAX		32
#define SCHEME_SALT_MAX		64	/* octets after the digest */

struct scheme_kind {
	const char	*name;		/* between the braces, any case */
	const char	*digest;	/* SHA family: EVP name; NULL: crypt */
	int		 salted;
	const char	*prefix[3];	/* crypt: what the hash must begin
					   with; none: any crypt string */
};

static const struct scheme_kind kinds[] = {
	{ "CRYPT",		NULL,		0, { NULL } },
	{ "SHA512-CRYPT",	NULL,		0, { "$6$" } },
	{ "SHA256-CRYPT",	NULL,		0, { "$5$" } },
	{ "BLF-CRYPT",		NULL,		0, { "$2a$", "$2b$", "$2y$" } },
	{ "ARGON2",		NULL,		0, { "$argon2" } },
	{ "ARGON2I",		NULL,		0, { "$argon2i$" } },
	{ "ARGON2ID",		NULL,		0, { "$argon2id$" } },
	{ "SHA",		"SHA1",		0, { NULL } },
	{ "SSHA",		"SHA1",		1, { NULL } },
	{ "SHA256",		"SHA256",	0, { NULL } },
	{ "SSHA256",		"SHA256",	1, { NULL } },
	{ "SHA512",		"SHA512",	0, { NULL } },
	{ "SSHA512",		"SHA512",	1, { NULL } },
};

static const struct scheme_kind *
kind_find(const char *name, size_t len)
{
	size_t	 i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == len &&
		    strncasecmp(kinds[i].name, name, len) == 0)
			return &kinds[i];
	return NULL;
}

static int
crypt_prefix_ok(const struct scheme_kind *k, const char *hash)
{
	size_t	 i;

	if (k->prefix[0] == NULL)
		return 1;
	for (i = 0; i < 3 && k->prefix[i] != NULL; i++)
		if (strncmp(hash, k->prefix[i], strlen(k->prefix[i])) == 0)
			return 1;
	return 0;
}

/*
 * {SHA} and {SSHA}: base64 of digest(password || salt) || salt
 * (RFC 2307's userPassword as OpenLDAP writes it).
 */
static int
verify_sha(const struct scheme_kind *k, const char *b64, const char *pw,
    size_t pwlen)
{
	const EVP_MD	*md;
	uint8_t		 stored[EVP_MAX_MD_SIZE + SCHEME_SALT_MAX];
	uint8_t		 mine[EVP_MAX_MD_SIZE];
	unsigned int	 mdlen;
	size_t		 len, dlen;
	int		 rv = -1;

	if ((md = EVP_get_digestbyname(k->digest)) == NULL)
		return -1;
	dlen = (size_t)EVP_MD_size(md);
	if (base64_decode(b64, strlen(b64), 0, stored, sizeof(stored),
	    &len) == -1 || len < dlen || (!k->salted && len != dlen) ||
	    (k->salted && len == dlen))
		goto out;
	if (pwlen == 0 || pwlen > PASSWD_MAX || memchr(pw, '\0', pwlen)) {
		rv = 0;
		goto out;
	}
	{
		EVP_MD_CTX	*ctx;

		if ((ctx = EVP_MD_CTX_new()) == NULL)
			goto out;
		if (EVP_DigestInit_ex(ctx, md, NULL) != 1 ||
		    EVP_DigestUpdate(ctx, pw, pwlen) != 1 ||
		    EVP_DigestUpdate(ctx, stored + dlen, len - dlen) != 1 ||
		    EVP_DigestFinal_ex(ctx, mine, &mdlen) != 1) {
			EVP_MD_CTX_free(ctx);
			goto out;
		}
		EVP_MD_CTX_free(ctx);
	}
	rv = CRYPTO_memcmp(mine, stored, dlen) == 0;
 out:
	explicit_bzero(stored, sizeof(stored));
	explicit_bzero(mine, sizeof(mine));
	return rv;
}

int
passwd_verify_scheme(const char *stored, const char *password, size_t pwlen)
{
	const struct scheme_kind	*k;
	const char			*end;

	if (stored == NULL || stored[0] == '\0')
		return -1;
	if (stored[0] != '{')
		return passwd_verify(stored, password, pwlen);
	if ((end = strchr(stored + 1, '}')) == NULL ||
	    end - stored - 1 > SCHEME_NAME_MAX ||
	    (k = kind_find(stored + 1, (size_t)(end - stored - 1))) == NULL)
		return -1;
	if (k->digest != NULL)
		return verify_sha(k, end + 1, password, pwlen);
	if (!crypt_prefix_ok(k, end + 1))
		return -1;
	return passwd_verify(end + 1, password, pwlen);
}
