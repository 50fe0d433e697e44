/*
 * log.h -- logging shared by every portcullis process.
 *
 * Each process names its role once (log_procinit) and every line it
 * writes carries that role, so a log shows which privilege level said
 * what.  Lines go to syslog (facility mail) or, in the foreground, to
 * stderr.
 */
#ifndef PORTCULLIS_LOG_H
#define PORTCULLIS_LOG_H

#include <stdarg.h>

void	log_init(int debug, int facility);
void	log_procinit(const char *role);
void	log_setverbose(int verbose);
int	log_getverbose(void);
const char *log_procname(void);
void	log_warn(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_warnx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_info(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	log_debug(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2)));
void	logit(int, const char *, ...)
	    __attribute__((__format__ (printf, 2, 3)));
void	vlog(int, const char *, va_list)
	    __attribute__((__format__ (printf, 2, 0)));
void	fatal(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));
void	fatalx(const char *, ...)
	    __attribute__((__format__ (printf, 1, 2), __noreturn__));

#endif /* PORTCULLIS_LOG_H */
