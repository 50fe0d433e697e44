/*
 * request.h -- the key process's check of a worker's KEYS_SIGN.
 */
#ifndef PORTCULLIS_KEYS_REQUEST_H
#define PORTCULLIS_KEYS_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum keys_key_type {
	KEYS_KEY_RSA = 1,
	KEYS_KEY_EC,
};

/* What the key process knows of the key a request names. */
struct keys_key_shape {
	enum keys_key_type	 type;
	size_t			 size;	/* RSA: modulus octets; EC: order's */
};

int	keys_request_check(const struct keys_sign *, const uint8_t *data,
	    size_t len, const struct keys_key_shape *, char *err,
	    size_t errlen);

#endif /* PORTCULLIS_KEYS_REQUEST_H */
