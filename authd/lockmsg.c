/*
 * lockmsg.c -- the news of locked accounts that authd's nodes publish
 * to each other through Redis (fleet_redis.c): "L UNTIL USER" (USER is
 * locked until UNTIL, seconds since the epoch) and "U USER" (USER's
 * penalties were cleared).  Whoever can publish on the Redis channel
 * can send anything: this parser is pure, strict and fuzzed
 * (tests/fuzz/fuzz_lockmsg.c).
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "fleet.h"

/* A user as a node sends it: printable, no space, not empty. */
static int
user_ok(const char *p, size_t len)
{
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * 'L' with until and user set, 'U' with user set, or -1 for anything
 * else (a user that does not fit userlen included).
 */
int
lockmsg_parse(const char *msg, size_t len, char *user, size_t userlen,
    int64_t *until)
{
	const char	*p, *end = msg + len;
	int64_t		 t = 0;

	if (len < 3 || (msg[0] != 'L' && msg[0] != 'U') || msg[1] != ' ')
		return -1;
	p = msg + 2;
	if (msg[0] == 'L') {
		if (p == end || *p < '0' || *p > '9')
			return -1;
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			if (t > (INT64_MAX - 9) / 10)
				return -1;
			t = t * 10 + (*p - '0');
		}
		if (p == end || *p++ != ' ')
			return -1;
	}
	if (!user_ok(p, (size_t)(end - p)) || (size_t)(end - p) >= userlen)
		return -1;
	memcpy(user, p, (size_t)(end - p));
	user[end - p] = '\0';
	*until = t;
	return msg[0];
}
