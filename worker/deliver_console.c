/*
 * deliver_console.c -- "delivery" to the log, for demos and tests.
 *
 * The message is kept in memory up to CONSOLE_LOG_MAX octets (the rest
 * is only counted, so memory stays bounded whatever the message size)
 * and at the end of DATA it goes to the log with log_info(): one line
 * for the envelope, then one line per message line, prefixed with
 * "session ID: | ", non-printable octets escaped as \xHH.  The client
 * gets 250 from inside deliver_end(); nothing is stored, so this
 * method must not be used where mail matters.
 */

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "deliver_int.h"

#define CONSOLE_CHUNK		1000		/* escaped characters a line */

struct console_delivery {
	struct delivery	 d;
	char		 sender[SMTP_PATH_MAX];
	char		 rcpts[CONSOLE_RCPTS_MAX];
	uint64_t	 octets;
	size_t		 len;
	char		 buf[CONSOLE_LOG_MAX];
};

static struct delivery *
console_begin(const struct envelope *env, deliver_done_cb done, void *arg)
{
	struct console_delivery	*c;
	char			 addr[SMTP_PATH_MAX];
	size_t			 i, n = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		log_warn("session %016llx: console",
		    (unsigned long long)env->session_id);
		return NULL;
	}
	deliver_head_init(&c->d, &deliver_console_ops, env, done, arg);
	deliver_sanitise(c->sender, sizeof(c->sender), env->sender);
	for (i = 0; i < env->nrcpts; i++) {
		deliver_sanitise(addr, sizeof(addr), env->rcpts[i]);
		n += snprintf(c->rcpts + n, sizeof(c->rcpts) - n, "%s<%s>",
		    i > 0 ? ", " : "", addr);
		if (n >= sizeof(c->rcpts) - 1) {
			/* too many to show: mark the cut */
			memcpy(c->rcpts + sizeof(c->rcpts) - 4, "...", 4);
			break;
		}
	}
	return &c->d;
}

static int
console_write(struct delivery *d, const void *buf, size_t len)
{
	struct console_delivery	*c = (struct console_delivery *)d;
	size_t			 n;

	n = sizeof(c->buf) - c->len;
	if (n > len)
		n = len;
	memcpy(c->buf + c->len, buf, n);
	c->len += n;
	c->octets += len;
	return 0;
}

static void
console_log_line(struct console_delivery *c, const char *p, size_t len)
{
	char	 out[CONSOLE_CHUNK + 8];
	size_t	 i, n = 0;

	for (i = 0; i < len; i++) {
		unsigned char	 ch = p[i];

		if (ch == '\\') {
			out[n++] = '\\';
			out[n++] = '\\';
		} else if (ch >= 0x20 && ch < 0x7f)
			out[n++] = ch;
		else
			n += snprintf(out + n, sizeof(out) - n, "\\x%02x", ch);
		if (n >= CONSOLE_CHUNK) {
			out[n] = '\0';
			log_info("session %016llx: | %s\\",
			    (unsigned long long)c->d.session_id, out);
			n = 0;
		}
	}
	out[n] = '\0';
	log_info("session %016llx: | %s",
	    (unsigned long long)c->d.session_id, out);
}

static void
console_end(struct delivery *d)
{
	struct console_delivery	*c = (struct console_delivery *)d;
	const char		*p, *end, *nl;
	size_t			 len;

	log_info("session %016llx: console delivery from <%s> to %s, "
	    "%llu octets", (unsigned long long)d->session_id, c->sender,
	    c->rcpts, (unsigned long long)c->octets);
	p = c->buf;
	end = c->buf + c->len;
	while (p < end) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		len = nl - p;
		if (len > 0 && nl < end && p[len - 1] == '\r')
			len--;
		console_log_line(c, p, len);
		p = nl < end ? nl + 1 : end;
	}
	if (c->octets > c->len)
		log_info("session %016llx: [... %llu more octets]",
		    (unsigned long long)d->session_id,
		    (unsigned long long)(c->octets - c->len));
	deliver_finish(d, c, 250, "2.0.0", "Ok: printed to the log");
}

static void
console_abort(struct delivery *d)
{
	free(d);
}

const struct deliver_ops deliver_console_ops = {
	.name = "console",
	.init = NULL,
	.cleanup = NULL,
	.begin = console_begin,
	.write = console_write,
	.end = console_end,
	.abort = console_abort,
	.pending = NULL,
};
