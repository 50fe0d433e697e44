/*
 * log.c -- logging for every portcullis process.
 *
 * A line goes to syslog (facility mail by default) or, when the
 * process runs in the foreground, to stderr.  Each process declares
 * its role once with log_procinit(); the role starts every line, so
 * an administrator reading one log can tell master, authd and worker
 * apart.  syslog is opened with LOG_NDELAY so that the socket survives
 * a later chroot.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_debug_mode;
static int	 log_verbose;
static const char *log_role;

void
log_init(int debug, int facility)
{
	log_debug_mode = debug;
	if (!debug)
		openlog("portcullis", LOG_PID | LOG_NDELAY, facility);
	tzset();
}

void
log_procinit(const char *role)
{
	log_role = role;
}

const char *
log_procname(void)
{
	return log_role != NULL ? log_role : "portcullis";
}

void
log_setverbose(int verbose)
{
	log_verbose = verbose;
}

int
log_getverbose(void)
{
	return log_verbose;
}

void
vlog(int pri, const char *fmt, va_list ap)
{
	char	 msg[2048];
	int	 saved_errno = errno;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_debug_mode) {
		if (log_role != NULL)
			fprintf(stderr, "%s[%d]: %s\n", log_role,
			    (int)getpid(), msg);
		else
			fprintf(stderr, "%s\n", msg);
		fflush(stderr);
	} else if (log_role != NULL)
		syslog(pri, "%s: %s", log_role, msg);
	else
		syslog(pri, "%s", msg);
	errno = saved_errno;
}

void
logit(int pri, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(pri, fmt, ap);
	va_end(ap);
}

static void	vlog_errno(int, const char *, va_list)
		    __attribute__((__format__ (printf, 2, 0)));

/* Like vlog, with ": strerror(errno)" appended. */
static void
vlog_errno(int pri, const char *fmt, va_list ap)
{
	char	 msg[2048];
	int	 saved_errno = errno;

	if (fmt == NULL) {
		logit(pri, "%s", strerror(saved_errno));
		errno = saved_errno;
		return;
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	logit(pri, "%s: %s", msg, strerror(saved_errno));
	errno = saved_errno;
}

void
log_warn(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog_errno(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_ERR, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	 ap;

	if (log_verbose < 1)
		return;
	va_start(ap, fmt);
	vlog(LOG_DEBUG, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog_errno(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap);
	va_end(ap);
	exit(1);
}
