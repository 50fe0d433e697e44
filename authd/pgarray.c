/*
 * pgarray.c -- the elements of a one-dimensional PostgreSQL array in
 * its text output form, as libpq hands it over: {a,b,"c d",NULL}.
 *
 * Pure: no I/O, no allocation, no logging; fuzzed (fuzz_pgarray).  The
 * bytes come from a database, which we trust less than ourselves: a
 * malformed value is refused whole (-1), never half read.  The form is
 * the one array_out() writes (PostgreSQL documentation, 8.15.6 "Array
 * Input and Output Syntax"): braces, elements separated by commas,
 * double quotes around an element with special characters, backslash
 * escaping a quote or a backslash inside them, the bare word NULL for
 * a null element.  Nested arrays and explicit bounds ("[1:2]={...}")
 * are not sending addresses and are refused.
 */

#include <string.h>
#include <strings.h>

#include "pgarray.h"

/* One element into buf (NUL-ended); the position after it, or NULL. */
static const char *
element(const char *p, char *buf, size_t len, int *isnull)
{
	size_t		 n = 0;
	const char	*start = p;

	*isnull = 0;
	if (*p == '"') {
		for (p++; *p != '"'; p++) {
			if (*p == '\0')
				return NULL;
			if (*p == '\\' && *++p == '\0')
				return NULL;
			if (n + 1 >= len)
				return NULL;
			buf[n++] = *p;
		}
		buf[n] = '\0';
		return p + 1;
	}
	for (; *p != ',' && *p != '}'; p++) {
		/* Unquoted: no quotes, braces, backslashes or blanks. */
		if (*p == '\0' || *p == '"' || *p == '{' || *p == '\\' ||
		    *p == ' ' || n + 1 >= len)
			return NULL;
		buf[n++] = *p;
	}
	if (n == 0)
		return NULL;
	buf[n] = '\0';
	*isnull = p - start == 4 && strncasecmp(start, "NULL", 4) == 0;
	return p;
}

int
pgarray_each(const char *s, char *buf, size_t len,
    int (*each)(const char *, void *), void *arg)
{
	const char	*p = s;
	int		 isnull;

	if (len == 0 || *p++ != '{')
		return -1;
	if (*p == '}')
		return p[1] == '\0' ? 0 : -1;
	for (;;) {
		if ((p = element(p, buf, len, &isnull)) == NULL)
			return -1;
		if (!isnull && each(buf, arg) == -1)
			return -1;
		if (*p == '}')
			return p[1] == '\0' ? 0 : -1;
		if (*p++ != ',')
			return -1;
	}
}
