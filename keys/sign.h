/*
 * sign.h -- the key process's private operations, apart from its
 * loop, so that the unit tests can sign as it does.
 */
#ifndef PORTCULLIS_KEYS_SIGN_H
#define PORTCULLIS_KEYS_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "request.h"

int	keys_key_shape_of(EVP_PKEY *, struct keys_key_shape *);
int	keys_sign_op(EVP_PKEY *, const struct keys_sign *, const uint8_t *in,
	    uint8_t *out, size_t *outlen);

#endif /* PORTCULLIS_KEYS_SIGN_H */
