/*
 * passwd.c -- password hashes: crypt(3) strings through libcrypt,
 * argon2 PHC strings through libargon2.
 *
 * Guarantees:
 * - thread-safe: crypt_rn() with a struct crypt_data per call (on the
 *   heap: it is over 32 KiB), argon2 keeps no state, and the dummy
 *   hash is made under pthread_once();
 * - every buffer that held a password or a crypt output is wiped
 *   (explicit_bzero, freezero) before it is freed or goes out of scope;
 * - crypt output is compared with the stored hash in constant time
 *   (OpenSSL's CRYPTO_memcmp: libbsd 0.11 has no timingsafe_bcmp);
 *   libargon2 compares its own in constant time;
 * - a hash this code cannot verify is -1, never a match, and a hostile
 *   argon2 string cannot ask for more than PASSWD_ARGON2_*_MAX.
 */

#include <sys/types.h>

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "config.h"
#include "passwd.h"
#include "store.h"
#include "util.h"

#define ARGON2_SALT_LEN		16
#define ARGON2_HASH_LEN		32
#define CRYPT_RBYTES		16	/* random octets for a salt */

struct scheme {
	const char	*name;
	const char	*prefix;	/* crypt_gensalt prefix; NULL: argon2 */
	unsigned long	 count;		/* 0: libcrypt's default cost */
};

static const struct scheme schemes[] = {
	{ "yescrypt",	"$y$",	0 },
	{ "bcrypt",	"$2b$",	PASSWD_BCRYPT_COST },
	{ "sha512",	"$6$",	0 },
	{ "argon2id",	NULL,	0 },
};

/*
 * Used only if the dummy hash cannot be made (no memory at the first
 * AUTH): yescrypt at the default cost of a random password that was
 * thrown away.
 */
static const char dummy_fallback[] =
    "$y$j9T$CrGWk.ioaT6QlcojhCDzS1$"
    "eJmzsblSq8pZn/dD5yrptYAbhemmDo6uTWERSDrvhf/";

static char		 dummy_hash[CONF_HASH_MAX];
static pthread_once_t	 dummy_once = PTHREAD_ONCE_INIT;

static const struct scheme *
scheme_find(const char *name)
{
	size_t	 i;

	if (name == NULL)
		name = PASSWD_DEFAULT_SCHEME;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strcmp(schemes[i].name, name) == 0)
			return &schemes[i];
	return NULL;
}

/* A decimal number of at most 10 digits, then *end; 0 on success. */
static int
parse_u32(const char **p, char end, uint32_t *v)
{
	const char	*s = *p;
	uint64_t	 n = 0;
	int		 digits = 0;

	while (*s >= '0' && *s <= '9') {
		if (++digits > 10)
			return -1;
		n = n * 10 + (uint64_t)(*s - '0');
		s++;
	}
	if (digits == 0 || n > UINT32_MAX || *s != end)
		return -1;
	*v = (uint32_t)n;
	*p = s + 1;
	return 0;
}

/*
 * Check the parameters of "$argon2id$v=19$m=M,t=T,p=P$salt$hash"
 * ("v=19$" may be missing: version 0x10) before libargon2 allocates
 * m KiB for them.  Returns the type, or -1.
 */
static int
argon2_params_ok(const char *hash, argon2_type *type)
{
	const char	*p;
	uint32_t	 v, m, t, par;

	if (strncmp(hash, "$argon2id$", 10) == 0) {
		*type = Argon2_id;
		p = hash + 10;
	} else if (strncmp(hash, "$argon2i$", 9) == 0) {
		*type = Argon2_i;
		p = hash + 9;
	} else
		return -1;
	if (strncmp(p, "v=", 2) == 0) {
		p += 2;
		if (parse_u32(&p, '$', &v) == -1 ||
		    (v != ARGON2_VERSION_10 && v != ARGON2_VERSION_13))
			return -1;
	}
	if (strncmp(p, "m=", 2) != 0)
		return -1;
	p += 2;
	if (parse_u32(&p, ',', &m) == -1 || strncmp(p, "t=", 2) != 0)
		return -1;
	p += 2;
	if (parse_u32(&p, ',', &t) == -1 || strncmp(p, "p=", 2) != 0)
		return -1;
	p += 2;
	if (parse_u32(&p, '$', &par) == -1)
		return -1;
	if (m == 0 || m > PASSWD_ARGON2_M_MAX || t == 0 ||
	    t > PASSWD_ARGON2_T_MAX || par == 0 || par > PASSWD_ARGON2_P_MAX)
		return -1;
	return 0;
}

static int
verify_argon2(const char *hash, const char *password, size_t pwlen)
{
	argon2_type	 type;

	if (argon2_params_ok(hash, &type) == -1)
		return -1;
	switch (argon2_verify(hash, password, pwlen, type)) {
	case ARGON2_OK:
		return 1;
	case ARGON2_VERIFY_MISMATCH:
		return 0;
	default:
		return -1;
	}
}

/*
 * One struct crypt_data (32 KiB) per thread, kept: allocating and
 * zeroing it at every verification showed in the auth path's profile.
 * It is still wiped after every use, and freed when the thread ends.
 */
static pthread_key_t	 cd_key;
static pthread_once_t	 cd_once = PTHREAD_ONCE_INIT;

static void
cd_free(void *p)
{
	freezero(p, sizeof(struct crypt_data));
}

static void
cd_key_init(void)
{
	if (pthread_key_create(&cd_key, cd_free) != 0)
		cd_key = (pthread_key_t)-1;
}

static struct crypt_data *
cd_get(int *owned)
{
	struct crypt_data	*cd;

	*owned = 0;
	pthread_once(&cd_once, cd_key_init);
	if (cd_key != (pthread_key_t)-1 &&
	    (cd = pthread_getspecific(cd_key)) != NULL)
		return cd;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return NULL;
	if (cd_key == (pthread_key_t)-1 ||
	    pthread_setspecific(cd_key, cd) != 0)
		*owned = 1;	/* no slot: the caller frees it */
	return cd;
}

static int
verify_crypt(const char *hash, const char *password, size_t pwlen)
{
	struct crypt_data	*cd;
	char			*pw, *out;
	size_t			 hlen;
	int			 rv = -1, owned;

	if ((pw = malloc(pwlen + 1)) == NULL)
		return -1;
	memcpy(pw, password, pwlen);
	pw[pwlen] = '\0';
	if ((cd = cd_get(&owned)) == NULL) {
		freezero(pw, pwlen + 1);
		return -1;
	}
	/* NULL for a malformed setting or an unknown or disabled method. */
	out = crypt_rn(pw, hash, cd, (int)sizeof(*cd));
	if (out != NULL && out[0] != '*') {
		hlen = strlen(hash);
		if (strlen(out) != hlen)
			rv = -1;	/* libcrypt did not take all of it */
		else
			rv = CRYPTO_memcmp(out, hash, hlen) == 0;
	}
	/* libcrypt needs it zeroed before a first use only; we wipe it. */
	if (owned)
		freezero(cd, sizeof(*cd));
	else
		explicit_bzero(cd, sizeof(*cd));
	freezero(pw, pwlen + 1);
	return rv;
}

int
passwd_verify(const char *hash, const char *password, size_t pwlen)
{
	if (hash == NULL || hash[0] == '\0' ||
	    strnlen(hash, CONF_HASH_MAX) >= CONF_HASH_MAX)
		return -1;
	if (password == NULL || pwlen == 0 || pwlen > PASSWD_MAX ||
	    memchr(password, '\0', pwlen) != NULL)
		return 0;
	if (strncmp(hash, "$argon2", 7) == 0)
		return verify_argon2(hash, password, pwlen);
	return verify_crypt(hash, password, pwlen);
}

static char *
hash_argon2(const char *password, size_t pwlen, char *err, size_t errlen)
{
	unsigned char	 salt[ARGON2_SALT_LEN];
	char		*out;
	size_t		 len;
	int		 rc;

	len = argon2_encodedlen(PASSWD_ARGON2_T, PASSWD_ARGON2_M_KIB,
	    PASSWD_ARGON2_P, ARGON2_SALT_LEN, ARGON2_HASH_LEN, Argon2_id);
	if ((out = calloc(1, len)) == NULL) {
		errbuf_set(err, errlen, "argon2id: %s", strerror(errno));
		return NULL;
	}
	arc4random_buf(salt, sizeof(salt));
	rc = argon2id_hash_encoded(PASSWD_ARGON2_T, PASSWD_ARGON2_M_KIB,
	    PASSWD_ARGON2_P, password, pwlen, salt, sizeof(salt),
	    ARGON2_HASH_LEN, out, len);
	explicit_bzero(salt, sizeof(salt));
	if (rc != ARGON2_OK) {
		errbuf_set(err, errlen, "argon2id: %s", argon2_error_message(rc));
		free(out);
		return NULL;
	}
	return out;
}

static char *
hash_crypt(const struct scheme *sc, const char *password, size_t pwlen,
    char *err, size_t errlen)
{
	struct crypt_data	*cd;
	char			 rbytes[CRYPT_RBYTES];
	char			 setting[CRYPT_GENSALT_OUTPUT_SIZE];
	char			*pw, *out = NULL;

	arc4random_buf(rbytes, sizeof(rbytes));
	if (crypt_gensalt_rn(sc->prefix, sc->count, rbytes, sizeof(rbytes),
	    setting, sizeof(setting)) == NULL) {
		explicit_bzero(rbytes, sizeof(rbytes));
		errbuf_set(err, errlen, "%s: this libcrypt cannot make a salt: %s",
		    sc->name, strerror(errno));
		return NULL;
	}
	explicit_bzero(rbytes, sizeof(rbytes));

	if ((pw = malloc(pwlen + 1)) == NULL ||
	    (cd = calloc(1, sizeof(*cd))) == NULL) {
		errbuf_set(err, errlen, "%s: %s", sc->name, strerror(errno));
		free(pw);
		return NULL;
	}
	memcpy(pw, password, pwlen);
	pw[pwlen] = '\0';
	if (crypt_rn(pw, setting, cd, (int)sizeof(*cd)) == NULL ||
	    cd->output[0] == '*')
		errbuf_set(err, errlen, "%s: crypt failed: %s", sc->name,
		    strerror(errno));
	else if (strlen(cd->output) >= CONF_HASH_MAX)
		errbuf_set(err, errlen, "%s: the hash is longer than %d octets",
		    sc->name, CONF_HASH_MAX - 1);
	else if ((out = strdup(cd->output)) == NULL)
		errbuf_set(err, errlen, "%s: %s", sc->name, strerror(errno));
	freezero(cd, sizeof(*cd));
	freezero(pw, pwlen + 1);
	return out;
}

char *
passwd_hash(const char *scheme, const char *password, size_t pwlen,
    char *err, size_t errlen)
{
	const struct scheme	*sc;

	if ((sc = scheme_find(scheme)) == NULL) {
		errbuf_set(err, errlen, "unknown password scheme \"%s\" "
		    "(yescrypt, bcrypt, sha512, argon2id)", scheme);
		return NULL;
	}
	if (password == NULL || pwlen == 0) {
		errbuf_set(err, errlen, "empty password");
		return NULL;
	}
	if (pwlen > PASSWD_MAX) {
		errbuf_set(err, errlen, "password longer than %d octets",
		    PASSWD_MAX);
		return NULL;
	}
	if (memchr(password, '\0', pwlen) != NULL) {
		errbuf_set(err, errlen, "password contains a NUL octet");
		return NULL;
	}
	if (sc->prefix == NULL)
		return hash_argon2(password, pwlen, err, errlen);
	return hash_crypt(sc, password, pwlen, err, errlen);
}

static void
dummy_init(void)
{
	unsigned char	 rnd[24];
	char		 pw[2 * sizeof(rnd) + 1], *h;
	size_t		 i;

	arc4random_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		(void)snprintf(pw + 2 * i, 3, "%02x", rnd[i]);
	h = passwd_hash(NULL, pw, strlen(pw), NULL, 0);
	if (h != NULL && strlen(h) < sizeof(dummy_hash))
		(void)strlcpy(dummy_hash, h, sizeof(dummy_hash));
	else
		(void)strlcpy(dummy_hash, dummy_fallback, sizeof(dummy_hash));
	free(h);
	explicit_bzero(rnd, sizeof(rnd));
	explicit_bzero(pw, sizeof(pw));
}

const char *
passwd_dummy_hash(void)
{
	if (pthread_once(&dummy_once, dummy_init) != 0)
		return dummy_fallback;
	return dummy_hash;
}

const char *
passwd_default_scheme(void)
{
	return PASSWD_DEFAULT_SCHEME;
}

int
passwd_scheme_known(const char *scheme)
{
	const struct scheme	*sc;
	char			 rbytes[CRYPT_RBYTES] = { 0 };
	char			 setting[CRYPT_GENSALT_OUTPUT_SIZE];

	if (scheme == NULL || (sc = scheme_find(scheme)) == NULL)
		return 0;
	if (sc->prefix == NULL)
		return 1;
	/* Known to us, but is it compiled into this libcrypt? */
	return crypt_gensalt_rn(sc->prefix, sc->count, rbytes,
	    sizeof(rbytes), setting, sizeof(setting)) != NULL;
}

int
passwd_scram_keys_salt(const char *password, size_t pwlen,
    const uint8_t *salt, size_t saltlen, uint32_t iter,
    struct store_scram *k, char *err, size_t errlen)
{
	uint8_t		 salted[STORE_SCRAM_KEY_LEN], ckey[STORE_SCRAM_KEY_LEN];
	unsigned int	 n = sizeof(ckey);
	int		 ok;

	if (pwlen == 0 || pwlen > PASSWD_MAX || saltlen > sizeof(k->salt) ||
	    iter == 0 || iter > STORE_SCRAM_ITER_MAX) {
		errbuf_set(err, errlen, "SCRAM keys: bad password, salt or "
		    "iteration count");
		return -1;
	}
	memset(k, 0, sizeof(*k));
	ok = PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)saltlen,
	    (int)iter, EVP_sha256(), sizeof(salted), salted) == 1 &&
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)"Client Key", 10, ckey, &n) != NULL &&
	    SHA256(ckey, sizeof(ckey), k->stored_key) != NULL &&
	    HMAC(EVP_sha256(), salted, sizeof(salted),
	    (const unsigned char *)"Server Key", 10, k->server_key,
	    &n) != NULL;
	explicit_bzero(salted, sizeof(salted));
	explicit_bzero(ckey, sizeof(ckey));
	if (!ok) {
		explicit_bzero(k, sizeof(*k));
		errbuf_set(err, errlen, "SCRAM keys: OpenSSL failed");
		return -1;
	}
	memcpy(k->salt, salt, saltlen);
	k->saltlen = saltlen;
	k->iter = iter;
	return 0;
}

int
passwd_scram_keys(const char *password, size_t pwlen, uint32_t iter,
    struct store_scram *k, char *err, size_t errlen)
{
	uint8_t		 salt[STORE_SCRAM_SALT_MIN];

	if (getentropy(salt, sizeof(salt)) == -1) {
		errbuf_set(err, errlen, "getentropy: %s", strerror(errno));
		return -1;
	}
	return passwd_scram_keys_salt(password, pwlen, salt, sizeof(salt),
	    iter, k, err, errlen);
}

void
passwd_app_verifier(const uint8_t *secret, size_t secretlen,
    const char *user, const char *password, size_t pwlen, uint8_t *out)
{
	unsigned char	 msg[CONF_AUTH_NAME_MAX + PASSWD_MAX + 1];
	unsigned int	 n = STORE_APP_VERIFIER_LEN;
	size_t		 ulen = strlen(user) + 1;

	/* Never a verifier anything matches by accident. */
	memset(out, 0xff, STORE_APP_VERIFIER_LEN);
	out[0] = 0;
	if (ulen > CONF_AUTH_NAME_MAX || pwlen > PASSWD_MAX)
		return;
	memcpy(msg, user, ulen);
	memcpy(msg + ulen, password, pwlen);
	(void)HMAC(EVP_sha256(), secret, (int)secretlen, msg, ulen + pwlen,
	    out, &n);
	explicit_bzero(msg, sizeof(msg));
}

/* No 0/o, 1/l/i: 31 letters and digits, 4.95 bits each. */
static const char app_alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";

int
passwd_app_generate(char *buf, size_t buflen)
{
	uint8_t		 r[PASSWD_APP_CHARS * 2];
	size_t		 i, o = 0, n = sizeof(app_alphabet) - 1;
	unsigned int	 v;

	if (buflen < PASSWD_APP_LEN + 1 || getentropy(r, sizeof(r)) == -1)
		return -1;
	for (i = 0; i < PASSWD_APP_CHARS; i++) {
		if (i > 0 && i % 4 == 0)
			buf[o++] = '-';
		/* 16 bits mod 31: a bias under 0.05%. */
		v = (unsigned int)r[2 * i] << 8 | r[2 * i + 1];
		buf[o++] = app_alphabet[v % n];
	}
	buf[o] = '\0';
	explicit_bzero(r, sizeof(r));
	return 0;
}

int
passwd_app_canon(const char *in, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	char	 c;

	if (outlen < PASSWD_APP_CHARS + 1)
		return -1;
	for (i = 0; i < len; i++) {
		c = in[i];
		if (c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c == '\0' || strchr(app_alphabet, c) == NULL ||
		    o == PASSWD_APP_CHARS)
			goto no;
		out[o++] = c;
	}
	if (o != PASSWD_APP_CHARS)
		goto no;
	out[o] = '\0';
	return 0;
 no:
	explicit_bzero(out, outlen);
	return -1;
}
