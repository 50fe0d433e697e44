/*
 * util.c -- small helpers every process uses.
 */

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "util.h"

void
errbuf_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	 ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *
escape_text(const char *in, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	int	 n;

	if (outlen == 0)
		return out;
	for (i = 0; i < len && o + 5 < outlen; i++) {
		unsigned char	 c = (unsigned char)in[i];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
			out[o++] = (char)c;
		else {
			n = snprintf(out + o, outlen - o, "\\x%02x", c);
			if (n < 0 || (size_t)n >= outlen - o)
				break;
			o += (size_t)n;
		}
	}
	out[o] = '\0';
	return out;
}

long
elapsed_ms(const struct timespec *since)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 +
	    (now.tv_nsec - since->tv_nsec) / 1000000;
}
