/*
 * sign.c -- the key process's private operations, on a request that
 * keys_request_check() (request.c) has already accepted.
 *
 * PKCS #1 v1.5 and ECDSA go through EVP_PKEY_sign with no digest: the
 * input is the DigestInfo or the digest, as TLS made it.  PSS is the
 * raw private operation on the block the worker's OpenSSL encoded,
 * which OpenSSL spells as RSA decryption without padding; request.c
 * let only an EMSA-PSS block through.
 */

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "sign.h"

/* What request.c needs to know of a key; -1 for a type we do not use. */
int
keys_key_shape_of(EVP_PKEY *k, struct keys_key_shape *shape)
{
	switch (EVP_PKEY_base_id(k)) {
	case EVP_PKEY_RSA:
		shape->type = KEYS_KEY_RSA;
		shape->size = (size_t)(EVP_PKEY_bits(k) + 7) / 8;
		return 0;
	case EVP_PKEY_EC:
		shape->type = KEYS_KEY_EC;
		shape->size = (size_t)(EVP_PKEY_bits(k) + 7) / 8;
		return 0;
	}
	return -1;
}

int
keys_sign_op(EVP_PKEY *k, const struct keys_sign *req, const uint8_t *in,
    uint8_t *out, size_t *outlen)
{
	EVP_PKEY_CTX	*ctx;
	int		 ok;

	if ((ctx = EVP_PKEY_CTX_new(k, NULL)) == NULL)
		return -1;
	if (req->padding == KEYS_PAD_RAW)
		ok = EVP_PKEY_decrypt_init(ctx) == 1 &&
		    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_NO_PADDING) == 1 &&
		    EVP_PKEY_decrypt(ctx, out, outlen, in, req->len) == 1;
	else
		ok = EVP_PKEY_sign_init(ctx) == 1 &&
		    (req->op != KEYS_OP_RSA_SIGN ||
		    EVP_PKEY_CTX_set_rsa_padding(ctx,
		    RSA_PKCS1_PADDING) == 1) &&
		    EVP_PKEY_sign(ctx, out, outlen, in, req->len) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : -1;
}
