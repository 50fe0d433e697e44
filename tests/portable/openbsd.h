/*
 * openbsd.h -- forced into every file by `make check-portable`
 * (clang -include) together with -D__OpenBSD__ and -U__linux__, so
 * that the OpenBSD branches of the tree are compiled on Linux: what
 * OpenBSD's libc declares and glibc does not.  Each declaration follows
 * the OpenBSD 7.7 manual page named next to it.  Nothing here is ever
 * linked: the check stops after the syntax and types.
 */
#ifndef PORTCULLIS_PORTABLE_OPENBSD_H
#define PORTCULLIS_PORTABLE_OPENBSD_H

/* pledge(2), unveil(2): <unistd.h> on OpenBSD. */
int	pledge(const char *promises, const char *execpromises);
int	unveil(const char *path, const char *permissions);

/* setproctitle(3): <stdlib.h> on OpenBSD, which has no _init. */
void	setproctitle(const char *fmt, ...)
	    __attribute__((__format__ (__printf__, 1, 2)));

/* getdtablecount(2): <unistd.h> on OpenBSD. */
int	getdtablecount(void);

#endif /* PORTCULLIS_PORTABLE_OPENBSD_H */
