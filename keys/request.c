/*
 * request.c -- is a worker's KEYS_SIGN one the key process may answer?
 *
 * Pure: no I/O, no logging, no OpenSSL (fuzzed by
 * tests/fuzz/fuzz_keys_request.c, unit-tested by
 * tests/unit/test_keys_request.c).  A worker may be compromised; what
 * it asks is hostile.  The key process signs, and nothing else: it is
 * not a general RSA oracle.  So the octets a worker hands over must be
 * what a TLS 1.2 or 1.3 signature is made of:
 *
 * - RSA, PKCS #1 v1.5 (TLS 1.2): a DigestInfo (RFC 8017 9.2, note 1)
 *   of SHA-1, SHA-224, SHA-256, SHA-384 or SHA-512, whole, and short
 *   enough for the modulus (RFC 8017 9.2 step 3: emLen >= tLen + 11).
 * - RSA-PSS (TLS 1.3 and 1.2's rsa_pss_rsae): the worker's OpenSSL
 *   encodes EMSA-PSS itself and asks for the raw private operation on
 *   exactly one modulus-sized block, which must end in 0xbc and have
 *   its top bit clear (RFC 8017 9.1.1 steps 11-12).  Anything else,
 *   a ciphertext to decrypt above all, is refused: no RSA key
 *   exchange is offered (worker/tls.c removes kRSA).
 * - ECDSA: a bare digest of 20, 28, 32, 48 or 64 octets.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "request.h"
#include "util.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* RFC 8017 9.2 note 1: the DER of DigestInfo before the hash. */
static const struct digest_info {
	size_t		 hash_len;
	size_t		 prefix_len;
	uint8_t		 prefix[19];
} digest_infos[] = {
	{ 20, 15, { 0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03,
	    0x02, 0x1a, 0x05, 0x00, 0x04, 0x14 } },
	{ 28, 19, { 0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	    0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c } },
	{ 32, 19, { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	    0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 } },
	{ 48, 19, { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	    0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 } },
	{ 64, 19, { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	    0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 } },
};

static const size_t ecdsa_digest_lens[] = { 20, 28, 32, 48, 64 };

/* errbuf_set(), and the -1 that goes with it. */
static int
refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((__format__ (printf, 3, 4)));

static int
refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[256];

	va_start(ap, fmt);
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errbuf_set(err, errlen, "%s", msg);
	return -1;
}

static int
is_digest_info(const uint8_t *data, size_t len)
{
	const struct digest_info	*d;

	for (size_t i = 0; i < NELEM(digest_infos); i++) {
		d = &digest_infos[i];
		if (len == d->prefix_len + d->hash_len &&
		    memcmp(data, d->prefix, d->prefix_len) == 0)
			return 1;
	}
	return 0;
}

static int
check_rsa(const struct keys_sign *req, const uint8_t *data, size_t len,
    const struct keys_key_shape *key, char *err, size_t errlen)
{
	if (key->type != KEYS_KEY_RSA)
		return refuse(err, errlen, "an RSA operation on a "
		    "key that is not RSA");
	switch (req->padding) {
	case KEYS_PAD_PKCS1:
		if (!is_digest_info(data, len))
			return refuse(err, errlen, "PKCS #1 v1.5: not "
			    "a DigestInfo of a hash we sign (%zu octets)",
			    len);
		if (len + 11 > key->size)
			return refuse(err, errlen, "PKCS #1 v1.5: %zu "
			    "octets for a %zu-octet modulus", len, key->size);
		return 0;
	case KEYS_PAD_RAW:
		if (len != key->size)
			return refuse(err, errlen, "PSS: %zu octets for "
			    "a %zu-octet modulus", len, key->size);
		if ((data[0] & 0x80) != 0 || data[len - 1] != 0xbc)
			return refuse(err, errlen, "PSS: not an "
			    "EMSA-PSS encoding");
		return 0;
	}
	return refuse(err, errlen, "RSA padding %u", req->padding);
}

static int
check_ecdsa(const struct keys_sign *req, size_t len,
    const struct keys_key_shape *key, char *err, size_t errlen)
{
	if (key->type != KEYS_KEY_EC)
		return refuse(err, errlen, "an ECDSA signature with a "
		    "key that is not EC");
	if (req->padding != KEYS_PAD_NONE)
		return refuse(err, errlen, "ECDSA with padding %u",
		    req->padding);
	for (size_t i = 0; i < NELEM(ecdsa_digest_lens); i++)
		if (len == ecdsa_digest_lens[i])
			return 0;
	return refuse(err, errlen, "ECDSA: a %zu-octet digest", len);
}

/*
 * 0 if the request may be answered with key; -1 and why in err if
 * not.  len is what followed the header in the message.
 */
int
keys_request_check(const struct keys_sign *req, const uint8_t *data,
    size_t len, const struct keys_key_shape *key, char *err, size_t errlen)
{
	if (req->len != len)
		return refuse(err, errlen, "says %u octets, carries %zu",
		    req->len, len);
	if (len == 0 || len > KEYS_INPUT_MAX)
		return refuse(err, errlen, "%zu octets to sign", len);
	switch (req->op) {
	case KEYS_OP_RSA_SIGN:
		return check_rsa(req, data, len, key, err, errlen);
	case KEYS_OP_ECDSA_SIGN:
		return check_ecdsa(req, len, key, err, errlen);
	}
	return refuse(err, errlen, "operation %u", req->op);
}
