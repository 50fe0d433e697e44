/*
 * fuzz_keys_request.c -- keys/request.c on whatever a worker could
 * send: the input is a struct keys_sign then the octets to sign,
 * checked against an RSA-2048 and a P-256 key shape.  Properties: no
 * crash, and whatever passes is one of the shapes a TLS signature has.
 */

#include <string.h>

#include "fuzz.h"
#include "request.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct keys_key_shape shapes[] = {
		{ KEYS_KEY_RSA, 256 }, { KEYS_KEY_EC, 32 },
	};
	struct keys_sign	 req;
	char			 err[160];
	size_t			 len;

	if (size < sizeof(req))
		return 0;
	memcpy(&req, data, sizeof(req));
	data += sizeof(req);
	len = size - sizeof(req);
	for (size_t i = 0; i < 2; i++) {
		if (keys_request_check(&req, data, len, &shapes[i], err,
		    sizeof(err)) == -1)
			continue;
		FUZZ_ASSERT(len == req.len && len > 0 &&
		    len <= KEYS_INPUT_MAX);
		if (req.op == KEYS_OP_RSA_SIGN) {
			FUZZ_ASSERT(shapes[i].type == KEYS_KEY_RSA);
			FUZZ_ASSERT(req.padding != KEYS_PAD_RAW ||
			    (len == 256 && data[len - 1] == 0xbc));
		} else
			FUZZ_ASSERT(req.op == KEYS_OP_ECDSA_SIGN &&
			    shapes[i].type == KEYS_KEY_EC && len <= 64);
	}
	return 0;
}
