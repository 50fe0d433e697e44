/*
 * fuzz_store.c -- the record codecs of the credential store and the
 * login cache (store/record.c, store/cache_record.c), which read what
 * is in an LMDB file: whoever can write that file must not get further
 * than a refusal.
 *
 * Input: one octet that says what the rest is (its value modulo 6):
 *   0  a user record;
 *   1  a cache key;
 *   2, 3, 4  a cache record of a password, negative or token entry;
 *   5  a user name, for store_name_normalize().
 * Properties: what decodes encodes back to the same octets (the
 * formats are canonical, so two records never mean one thing), and a
 * refused record leaves nothing half-decoded; a normalised name is
 * normalised already, and as long as the original.
 */

#include <string.h>

#include "config.h"
#include "fuzz.h"
#include "store.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static void
user_record(const uint8_t *data, size_t size)
{
	struct store_user	 u;
	unsigned char		 buf[STORE_RECORD_MAX];
	char			 err[256];
	int			 n;

	memset(&u, 0, sizeof(u));
	if (store_record_decode(data, size, &u, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(u.naddrs == 0);
		return;
	}
	FUZZ_ASSERT(u.naddrs <= STORE_ADDRS_MAX);
	n = store_record_encode(&u, buf, sizeof(buf), err, sizeof(err));
	FUZZ_ASSERT(n >= 0);
	FUZZ_ASSERT((size_t)n == size && memcmp(buf, data, size) == 0);
}

static void
cache_key(const uint8_t *data, size_t size)
{
	struct store_cache_entry e;
	unsigned char		 buf[STORE_CACHE_KEY_MAX];
	char			 err[256];
	int			 n;

	memset(&e, 0, sizeof(e));
	if (store_cache_key_decode(data, size, &e, err, sizeof(err)) == -1) {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(e.kind == 0 && e.checker[0] == '\0' &&
		    e.user[0] == '\0');
		return;
	}
	n = store_cache_key_encode(&e, buf, sizeof(buf), err, sizeof(err));
	FUZZ_ASSERT(n >= 0);
	FUZZ_ASSERT((size_t)n == size && memcmp(buf, data, size) == 0);
}

static void
cache_record(int kind, const uint8_t *data, size_t size)
{
	struct store_cache_entry e;
	unsigned char		 buf[STORE_CACHE_RECORD_MAX];
	char			 err[256];
	int			 n;

	memset(&e, 0, sizeof(e));
	e.kind = kind;
	if (store_cache_record_decode(data, size, &e, err, sizeof(err)) ==
	    -1) {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(e.created == 0 && e.expires == 0 &&
		    e.canonical[0] == '\0' && e.scope[0] == '\0');
		return;
	}
	n = store_cache_record_encode(&e, buf, sizeof(buf), err, sizeof(err));
	FUZZ_ASSERT(n >= 0);
	FUZZ_ASSERT((size_t)n == size && memcmp(buf, data, size) == 0);
}

static void
name(const uint8_t *data, size_t size)
{
	char	 in[CONF_AUTH_NAME_MAX + 8], out[CONF_AUTH_NAME_MAX];
	char	 again[CONF_AUTH_NAME_MAX];
	size_t	 n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	if (store_name_normalize(in, out, sizeof(out)) == -1)
		return;
	FUZZ_ASSERT(strlen(out) == strlen(in));
	FUZZ_ASSERT(strlen(out) > 0 && strlen(out) < CONF_AUTH_NAME_MAX);
	FUZZ_ASSERT(store_name_normalize(out, again, sizeof(again)) == 0);
	FUZZ_ASSERT(strcmp(out, again) == 0);
	/* In place, as authd does it. */
	FUZZ_ASSERT(store_name_normalize(in, in, sizeof(in)) == 0);
	FUZZ_ASSERT(strcmp(in, out) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 6) {
	case 0:
		user_record(data + 1, size - 1);
		break;
	case 1:
		cache_key(data + 1, size - 1);
		break;
	case 2:
		cache_record(STORE_CACHE_PASSWORD, data + 1, size - 1);
		break;
	case 3:
		cache_record(STORE_CACHE_NEGATIVE, data + 1, size - 1);
		break;
	case 4:
		cache_record(STORE_CACHE_TOKEN, data + 1, size - 1);
		break;
	case 5:
		name(data + 1, size - 1);
		break;
	}
	return 0;
}
