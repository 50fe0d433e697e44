/*
 * fuzz_scram.c -- the SCRAM client message parsers (common/scram.c),
 * which the worker runs on what a client sends and authd runs again on
 * what a worker relays.
 *
 * Input: one client message.  It goes through both parsers.
 * Properties:
 *   - what is accepted points inside the message: the nonce, the bare
 *     part, c= and the proof's end all within its length;
 *   - client-first: gs2_len + bare_len is the whole message, the names
 *     are NUL-terminated and hold no NUL, the nonce has no ',';
 *   - client-final: the part without the proof is a prefix that ends
 *     before ",p=";
 *   - a refused message leaves the struct zeroed.
 */

#include <string.h>

#include "fuzz.h"
#include "scram.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static int
inside(const uint8_t *m, size_t len, const char *p, size_t plen)
{
	return (const uint8_t *)p >= m && (const uint8_t *)p + plen <= m + len;
}

static void
check_first(const uint8_t *m, size_t len)
{
	struct scram_client_first	 f, zero;

	memset(&zero, 0, sizeof(zero));
	if (scram_client_first_parse(m, len, &f) == -1) {
		FUZZ_ASSERT(memcmp(&f, &zero, sizeof(f)) == 0);
		return;
	}
	FUZZ_ASSERT(f.gs2_len + f.bare_len == len);
	FUZZ_ASSERT(inside(m, len, f.bare, f.bare_len));
	FUZZ_ASSERT(inside(m, len, f.nonce, f.nonce_len));
	FUZZ_ASSERT(f.nonce_len > 0 && memchr(f.nonce, ',', f.nonce_len) ==
	    NULL);
	FUZZ_ASSERT(f.user[0] != '\0' && strlen(f.user) < sizeof(f.user));
	FUZZ_ASSERT(strlen(f.authzid) < sizeof(f.authzid));
	FUZZ_ASSERT(f.cbflag == 'n' || f.cbflag == 'y' || f.cbflag == 'p');
	FUZZ_ASSERT((f.cbflag == 'p') == (f.cbname[0] != '\0'));
}

static void
check_final(const uint8_t *m, size_t len)
{
	struct scram_client_final	 f, zero;

	memset(&zero, 0, sizeof(zero));
	if (scram_client_final_parse(m, len, &f) == -1) {
		FUZZ_ASSERT(memcmp(&f, &zero, sizeof(f)) == 0);
		return;
	}
	FUZZ_ASSERT(inside(m, len, f.cbind, f.cbind_len));
	FUZZ_ASSERT(inside(m, len, f.nonce, f.nonce_len));
	FUZZ_ASSERT(f.without_proof_len + 3 < len);
	FUZZ_ASSERT(memcmp(m + f.without_proof_len, ",p=", 3) == 0);
	FUZZ_ASSERT(f.nonce + f.nonce_len <= (const char *)m +
	    f.without_proof_len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_first(data, size);
	check_final(data, size);
	return 0;
}
