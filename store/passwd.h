/*
 * passwd.h -- password hashes: verify a password against a stored
 * hash, make a new hash.
 *
 * Hashes are crypt(3) strings, verified by libcrypt (libxcrypt on
 * Linux: $y$ yescrypt, $2b$ bcrypt, $6$ sha512-crypt and whatever
 * else the installed libcrypt verifies), or argon2 PHC strings
 * ($argon2id$v=19$m=...,t=...,p=...$salt$hash, and $argon2i$),
 * verified by libargon2.  They interoperate with shadow(5), Dovecot
 * and OpenSMTPD tables.
 *
 * Every function here is thread-safe (authd verifies on a thread
 * pool) and depends on no process's globals: authd verifies, authctl
 * hashes.  Nothing is logged; errors come back as strings.
 */
#ifndef PORTCULLIS_PASSWD_H
#define PORTCULLIS_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

struct store_scram;

/*
 * PASSWD_MAX (bounds.h) is the longest password, in octets, that can
 * match or be hashed: what libcrypt takes (CRYPT_MAX_PASSPHRASE_SIZE
 * less its NUL), for every scheme alike.
 */

/*
 * What passwd_hash() makes:
 * - yescrypt: libcrypt's default cost (5, "j9T", as Debian's shadow);
 * - bcrypt: $2b$, cost 10 (the OWASP minimum); only the first 72
 *   octets of a password count;
 * - sha512: sha512-crypt, 5000 rounds (glibc's default); for
 *   interoperation only, prefer yescrypt;
 * - argon2id: m=19456 KiB, t=2, p=1, the OWASP minimum
 *   (Password Storage Cheat Sheet), 16 octets of salt, 32 of hash.
 */
#define PASSWD_DEFAULT_SCHEME	"yescrypt"
#define PASSWD_BCRYPT_COST	10
#define PASSWD_ARGON2_M_KIB	19456
#define PASSWD_ARGON2_T		2
#define PASSWD_ARGON2_P		1

/*
 * The dearest argon2 parameters passwd_verify() accepts: a hash that
 * asks for more is refused as unsupported (-1), so that a hostile or
 * mistaken store cannot make one verification take a gigabyte per
 * thread or a minute.
 */
#define PASSWD_ARGON2_M_MAX	(1024 * 1024)	/* KiB: 1 GiB */
#define PASSWD_ARGON2_T_MAX	64
#define PASSWD_ARGON2_P_MAX	16

/*
 * 1 the password matches, 0 it does not, -1 the hash is empty,
 * malformed or of a scheme this machine cannot verify (or memory ran
 * out).  An empty password, a password with a NUL octet inside, and
 * a password longer than PASSWD_MAX never match (0).  The comparison
 * of crypt output is in constant time; libargon2 compares its own.
 */
int		 passwd_verify(const char *hash, const char *password,
		    size_t pwlen);

/*
 * As passwd_verify(), for a hash as a directory or a database stores
 * it (scheme.c): "{SCHEME}hash" with SCHEME one of CRYPT,
 * SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2, ARGON2I, ARGON2ID,
 * SHA, SSHA, SHA256, SSHA256, SHA512, SSHA512 (any case), or a bare
 * crypt or argon2 string.  Any other scheme, {PLAIN} and {MD5} among
 * them, is -1.
 */
int		 passwd_verify_scheme(const char *stored, const char *password,
		    size_t pwlen);

/*
 * A new hash of the password in a scheme of passwd_scheme_known()
 * (NULL: the default), with a fresh random salt: a string to free(),
 * or NULL with err filled.  Refuses an empty password, one with a NUL
 * octet and one longer than PASSWD_MAX.
 */
char		*passwd_hash(const char *scheme, const char *password,
		    size_t pwlen, char *err, size_t errlen);

/*
 * A hash, in the default scheme and at the default cost, of a random
 * password nobody knows; computed once per process.  Verify an
 * unknown user's password against it so that an unknown user costs
 * the same time as a known one.  Never NULL.  The first call makes it
 * (one hash, tens of milliseconds): call it once at startup.
 */
const char	*passwd_dummy_hash(void);

const char	*passwd_default_scheme(void);

/* 1 if passwd_hash() can make hashes of that scheme here, else 0. */
int		 passwd_scheme_known(const char *scheme);

/*
 * SCRAM-SHA-256's keys of a password (RFC 5802 3, RFC 7677): a fresh
 * random salt of STORE_SCRAM_SALT_MIN octets, SaltedPassword =
 * PBKDF2-HMAC-SHA-256(password, salt, iter), and from it StoredKey
 * and ServerKey into k (SaltedPassword itself is wiped).  The password
 * is used as it is: SASLprep (RFC 4013) is the identity on the ASCII
 * passwords this accepts without a complaint; a password with other
 * octets is taken as its UTF-8 octets, unnormalised.  0, or -1 with
 * err.
 */
int		 passwd_scram_keys(const char *password, size_t pwlen,
		    uint32_t iter, struct store_scram *k, char *err,
		    size_t errlen);
/* The same from a given salt (RFC 7677's test vector). */
int		 passwd_scram_keys_salt(const char *password, size_t pwlen,
		    const uint8_t *salt, size_t saltlen, uint32_t iter,
		    struct store_scram *k, char *err, size_t errlen);

/*
 * An app password's verifier: HMAC-SHA-256(secret, user NUL password)
 * into out (32 octets).  A keyed hash, not a slow one: app passwords
 * are generated with 128 bits or more, which no guessing reaches, so
 * what a slow hash buys a chosen password it need not buy them.
 */
void		 passwd_app_verifier(const uint8_t *secret, size_t secretlen,
		    const char *user, const char *password, size_t pwlen,
		    uint8_t *out);

/*
 * A new app password into buf (at least PASSWD_APP_LEN + 1 octets): 26
 * characters of an alphabet without look-alikes (128.8 bits), in groups
 * of four joined by '-'.  Its check ignores the dashes and the case.
 * 0, or -1 (no randomness).
 */
#define PASSWD_APP_CHARS	26
#define PASSWD_APP_LEN		(PASSWD_APP_CHARS + (PASSWD_APP_CHARS - 1) / 4)
int		 passwd_app_generate(char *buf, size_t buflen);
/*
 * The canonical form of what a client typed as an app password: the
 * dashes and spaces dropped, letters folded to lower case.  0, or -1
 * if it cannot be one (the wrong length or alphabet): then it is not
 * an app password and the account's password is what it may be.
 */
int		 passwd_app_canon(const char *in, size_t len, char *out,
		    size_t outlen);

#endif /* PORTCULLIS_PASSWD_H */
