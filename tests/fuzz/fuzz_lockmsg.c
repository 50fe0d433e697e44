/*
 * fuzz_lockmsg.c -- the news of locked accounts that nodes publish to
 * each other through Redis (authd/lockmsg.c).
 *
 * Input: one message as it comes off the channel.  Properties: 'L' or
 * 'U' only for a message of that shape; the user is a NUL-terminated
 * copy of the message's tail, within its buffer, without spaces or
 * control characters; printing the news back gives the message.
 */

#include <stdio.h>
#include <string.h>

#include "fleet.h"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	 user[64], again[128];
	int64_t	 until = -1;
	int	 kind, n;

	memset(user, 0x55, sizeof(user));
	kind = lockmsg_parse((const char *)data, size, user, sizeof(user),
	    &until);
	if (kind == -1)
		return 0;
	FUZZ_ASSERT(kind == 'L' || kind == 'U');
	FUZZ_ASSERT(memchr(user, '\0', sizeof(user)) != NULL);
	for (size_t i = 0; user[i] != '\0'; i++)
		FUZZ_ASSERT((unsigned char)user[i] > 0x20 &&
		    (unsigned char)user[i] != 0x7f);
	FUZZ_ASSERT(user[0] != '\0' && until >= 0);
	if (kind == 'L')
		n = snprintf(again, sizeof(again), "L %lld %s",
		    (long long)until, user);
	else
		n = snprintf(again, sizeof(again), "U %s", user);
	/* Leading zeros of UNTIL are the only other spelling. */
	if (kind == 'U' || data[2] != '0' || size < 4 || data[3] == ' ')
		FUZZ_ASSERT(n > 0 && (size_t)n == size &&
		    memcmp(again, data, size) == 0);
	return 0;
}
