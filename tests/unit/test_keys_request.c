/*
 * test_keys_request.c -- the key process's check of a worker's
 * KEYS_SIGN (keys/request.c): what a TLS signature is made of passes,
 * anything else (a ciphertext to decrypt, a wrong length, a padding or
 * an operation the key does not allow, a length that lies) is refused
 * with a reason.  The key process logs the reason and answers
 * KEYS_REFUSED; it stays up (keys/keys.c).
 */

#include <string.h>

#include <criterion/criterion.h>

#include "request.h"

static const struct keys_key_shape rsa2048 = { KEYS_KEY_RSA, 256 };
static const struct keys_key_shape p256 = { KEYS_KEY_EC, 32 };

/* SHA-256's DigestInfo prefix, RFC 8017 9.2 note 1. */
static const uint8_t sha256_prefix[19] = {
	0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65,
	0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20
};

static int
check(uint32_t op, uint32_t padding, const uint8_t *data, size_t len,
    const struct keys_key_shape *key, char *err, size_t errlen)
{
	struct keys_sign	 req;

	memset(&req, 0, sizeof(req));
	req.op = op;
	req.padding = padding;
	req.len = (uint32_t)len;
	return keys_request_check(&req, data, len, key, err, errlen);
}

Test(keys_request, pkcs1_digest_info_passes)
{
	uint8_t	 di[51];
	char	 err[128] = "";

	memcpy(di, sha256_prefix, sizeof(sha256_prefix));
	memset(di + 19, 0xab, 32);
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_PKCS1, di, sizeof(di),
	    &rsa2048, err, sizeof(err)), 0, "%s", err);
}

Test(keys_request, pkcs1_without_digest_info_refused)
{
	uint8_t	 di[51];
	char	 err[128] = "";

	memset(di, 0x41, sizeof(di));
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_PKCS1, di, sizeof(di),
	    &rsa2048, err, sizeof(err)), -1);
	cr_assert(strstr(err, "DigestInfo") != NULL, "%s", err);
	/* The right prefix, the wrong length. */
	memcpy(di, sha256_prefix, sizeof(sha256_prefix));
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_PKCS1, di, 50,
	    &rsa2048, err, sizeof(err)), -1);
}

Test(keys_request, pss_block_passes_ciphertext_refused)
{
	uint8_t	 block[256];
	char	 err[128] = "";

	memset(block, 0x5a, sizeof(block));
	block[255] = 0xbc;
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_RAW, block,
	    sizeof(block), &rsa2048, err, sizeof(err)), 0, "%s", err);
	/* A ciphertext to decrypt: not an EMSA-PSS encoding. */
	block[255] = 0x17;
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_RAW, block,
	    sizeof(block), &rsa2048, err, sizeof(err)), -1);
	block[255] = 0xbc;
	block[0] = 0x80;
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_RAW, block,
	    sizeof(block), &rsa2048, err, sizeof(err)), -1);
	/* Not modulus-sized. */
	block[0] = 0;
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_RAW, block + 1,
	    sizeof(block) - 1, &rsa2048, err, sizeof(err)), -1);
}

Test(keys_request, ecdsa_digest_lengths)
{
	uint8_t	 d[65];
	char	 err[128] = "";
	size_t	 good[] = { 20, 28, 32, 48, 64 }, bad[] = { 1, 31, 33, 65 };

	memset(d, 7, sizeof(d));
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(check(KEYS_OP_ECDSA_SIGN, KEYS_PAD_NONE, d,
		    good[i], &p256, err, sizeof(err)), 0, "%zu: %s", good[i],
		    err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(check(KEYS_OP_ECDSA_SIGN, KEYS_PAD_NONE, d,
		    bad[i], &p256, err, sizeof(err)), -1, "%zu", bad[i]);
	cr_assert_eq(check(KEYS_OP_ECDSA_SIGN, KEYS_PAD_PKCS1, d, 32, &p256,
	    err, sizeof(err)), -1);
}

Test(keys_request, operation_must_fit_the_key)
{
	uint8_t	 d[51];
	char	 err[128] = "";

	memcpy(d, sha256_prefix, sizeof(sha256_prefix));
	cr_assert_eq(check(KEYS_OP_ECDSA_SIGN, KEYS_PAD_NONE, d, 32,
	    &rsa2048, err, sizeof(err)), -1);
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, KEYS_PAD_PKCS1, d, sizeof(d),
	    &p256, err, sizeof(err)), -1);
	cr_assert_eq(check(99, KEYS_PAD_NONE, d, 32, &p256, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, "operation 99") != NULL, "%s", err);
	cr_assert_eq(check(KEYS_OP_RSA_SIGN, 7, d, sizeof(d), &rsa2048, err,
	    sizeof(err)), -1);
}

Test(keys_request, lengths_that_lie_or_overflow)
{
	static uint8_t		 big[KEYS_INPUT_MAX + 1];
	struct keys_sign	 req;
	char			 err[128] = "";

	memset(&req, 0, sizeof(req));
	req.op = KEYS_OP_ECDSA_SIGN;
	req.len = 32;
	cr_assert_eq(keys_request_check(&req, big, 31, &p256, err,
	    sizeof(err)), -1);
	cr_assert(strstr(err, "carries") != NULL, "%s", err);
	req.len = sizeof(big);
	cr_assert_eq(keys_request_check(&req, big, sizeof(big), &p256, err,
	    sizeof(err)), -1);
	req.len = 0;
	cr_assert_eq(keys_request_check(&req, big, 0, &p256, err,
	    sizeof(err)), -1);
}
