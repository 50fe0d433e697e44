/*
 * fuzz_pgarray.c -- a text[] value as a database sends it
 * (authd/pgarray.c), the sql checker's sending addresses.
 *
 * Properties: every element given fits the buffer and holds no NUL;
 * a value that reads whole has balanced braces; reading the same value
 * into a smaller buffer never gives more elements.
 */

#include <string.h>

#include "fuzz.h"
#include "pgarray.h"

struct seen {
	size_t	 n;
	size_t	 len;
};

static int
each(const char *e, void *arg)
{
	struct seen	*s = arg;

	FUZZ_ASSERT(strlen(e) < s->len);
	s->n++;
	return 0;
}

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
	char		*s, buf[256], small[8];
	struct seen	 big = { 0, sizeof(buf) }, little = { 0, sizeof(small) };
	int		 r, rs;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	r = pgarray_each(s, buf, sizeof(buf), each, &big);
	if (r == 0)
		FUZZ_ASSERT(s[0] == '{' && s[strlen(s) - 1] == '}');
	rs = pgarray_each(s, small, sizeof(small), each, &little);
	FUZZ_ASSERT(little.n <= big.n || r == -1);
	if (rs == 0)
		FUZZ_ASSERT(r == 0 && little.n == big.n);
	free(s);
	return 0;
}
