/*
 * test_pgarray.c -- unit tests of authd/pgarray.c: text[] values as
 * PostgreSQL 15's array_out() writes them (seen with psql -At), read
 * element by element, and anything else refused whole.
 */

#include <string.h>

#include <criterion/criterion.h>

#include "pgarray.h"

struct got {
	char	 v[8][64];
	int	 n;
};

static int
keep(const char *e, void *arg)
{
	struct got	*g = arg;

	cr_assert_lt(g->n, 8);
	strlcpy(g->v[g->n++], e, sizeof(g->v[0]));
	return 0;
}

static int
read_array(const char *s, struct got *g)
{
	char	 buf[64];

	memset(g, 0, sizeof(*g));
	return pgarray_each(s, buf, sizeof(buf), keep, g);
}

Test(pgarray, as_postgresql_writes_them)
{
	struct got	 g;

	cr_assert_eq(read_array("{}", &g), 0);
	cr_assert_eq(g.n, 0);
	cr_assert_eq(read_array("{sales@example.org,info@other.example}",
	    &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.v[0], "sales@example.org");
	cr_assert_str_eq(g.v[1], "info@other.example");
	/* Quoted when blank, comma, quote, backslash or braces inside. */
	cr_assert_eq(read_array("{\"a b@x\",\"c,d@x\",\"e\\\"f@x\","
	    "\"g\\\\h@x\",\"{i}@x\"}", &g), 0);
	cr_assert_eq(g.n, 5);
	cr_assert_str_eq(g.v[0], "a b@x");
	cr_assert_str_eq(g.v[1], "c,d@x");
	cr_assert_str_eq(g.v[2], "e\"f@x");
	cr_assert_str_eq(g.v[3], "g\\h@x");
	cr_assert_str_eq(g.v[4], "{i}@x");
}

Test(pgarray, null_elements_are_skipped_but_the_word_in_quotes_is_not)
{
	struct got	 g;

	cr_assert_eq(read_array("{NULL,a@x,null,\"NULL\"}", &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_str_eq(g.v[0], "a@x");
	cr_assert_str_eq(g.v[1], "NULL");
}

Test(pgarray, malformed_is_refused)
{
	static const char *const bad[] = {
		"", "a", "{", "}", "{a", "{a,}", "{,a}", "{a,,b}", "{a}x",
		"{\"a}", "{\"a\\", "{a b}", "{{a,b},{c,d}}", "[1:2]={a,b}",
		"{a\"b}", "{a\\,b}", "{\"a\"b}",
	};
	struct got	 g;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(read_array(bad[i], &g), -1, "%s", bad[i]);
}

Test(pgarray, an_element_too_long_for_the_buffer_is_refused)
{
	struct got	 g;
	char		 small[4];

	memset(&g, 0, sizeof(g));
	cr_assert_eq(pgarray_each("{abc,abcd}", small, sizeof(small), keep,
	    &g), -1);
	cr_assert_eq(g.n, 1);
	cr_assert_eq(pgarray_each("{\"abcd\"}", small, sizeof(small), keep,
	    &g), -1);
}
