/*
 * util.h -- small helpers every process uses.
 */
#ifndef PORTCULLIS_UTIL_H
#define PORTCULLIS_UTIL_H

#include <stddef.h>
#include <time.h>

/* Format an error message into a caller's buffer, if it gave one. */
void		 errbuf_set(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((__format__ (printf, 3, 4)));

/*
 * Printable ASCII stays, everything else (and \ and ") becomes \xNN:
 * names from a client or a file go into logs and messages this way.
 * Returns out.
 */
const char	*escape_text(const char *in, size_t len, char *out,
		    size_t outlen);

/* Milliseconds on CLOCK_MONOTONIC since a clock_gettime() of it. */
long		 elapsed_ms(const struct timespec *since);

#endif /* PORTCULLIS_UTIL_H */
