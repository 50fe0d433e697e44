/*
 * scope.c -- OAuth 2.0 scopes (RFC 6749 3.3).
 *
 * One rule for what a scope is (the configuration's, the SASL error
 * challenge's), and one for what a granted scope holds (introspection
 * and JWT access tokens): scope tokens are compared whole and exactly,
 * case and all.
 */

#include <string.h>

#include "scope.h"

/* NQCHAR but the space: %x21 / %x23-5B / %x5D-7E */
static int
scope_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\';
}

int
scope_token_valid(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!scope_char((unsigned char)*s))
			return 0;
	return 1;
}

int
scope_valid(const char *s)
{
	const char	*p;

	/* single spaces between tokens: none first, last or doubled */
	if (*s == '\0' || *s == ' ')
		return 0;
	for (p = s; *p != '\0'; p++) {
		if (*p == ' ' && (p[1] == ' ' || p[1] == '\0'))
			return 0;
		if (*p != ' ' && !scope_char((unsigned char)*p))
			return 0;
	}
	return 1;
}

const char *
scope_next(const char **p, size_t *len)
{
	const char	*w = *p;

	while (*w == ' ')
		w++;
	if (*w == '\0')
		return NULL;
	*len = strcspn(w, " ");
	*p = w + *len;
	return w;
}

int
scope_has_token(const char *granted, const char *tok, size_t len)
{
	const char	*w;
	size_t		 n;

	while ((w = scope_next(&granted, &n)) != NULL)
		if (n == len && memcmp(w, tok, n) == 0)
			return 1;
	return 0;
}

int
scope_contains(const char *granted, const char *required)
{
	const char	*w;
	size_t		 n;

	while ((w = scope_next(&required, &n)) != NULL)
		if (!scope_has_token(granted, w, n))
			return 0;
	return 1;
}
