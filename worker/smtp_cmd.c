/*
 * smtp_cmd.c -- the SMTP commands (RFC 5321 4.1) and their replies.
 *
 * One function per command; each checks the sequence first, then the
 * syntax, then the policy, and answers with the reply code and the
 * enhanced status code (RFC 2034, RFC 3463) that case calls for.  Every
 * error counts against the session; after max-errors the session is
 * closed with 421.  No open relay: without AUTH only recipients in a
 * local domain are accepted.
 */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "worker.h"

struct mail_params {
	uint64_t	 size;
	int		 body_8bit;
	int		 smtputf8;
};

/* An error reply; it counts towards max-errors. */
void
smtp_reply_error(struct session *s, const char *fmt, ...)
{
	char	 line[SMTP_LINE_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	session_reply(s, "%s", line);
	if (++s->errors >= (unsigned int)worker->conf->max_errors) {
		log_info("session %016llx: too many errors, closing",
		    (unsigned long long)s->id);
		session_close_after(s, "421 4.7.0 %s Too many errors, closing "
		    "transmission channel", worker->conf->hostname);
	}
}

void
smtp_transaction_reset(struct session *s)
{
	for (size_t i = 0; i < s->env.nrcpts; i++)
		free(s->env.rcpts[i]);
	free(s->env.rcpts);
	s->env.rcpts = NULL;
	s->env.nrcpts = 0;
	s->rcpt_cap = 0;
	s->env.sender[0] = '\0';
	s->env.body_8bit = 0;
	s->env.smtputf8 = 0;
	if (s->state == STATE_MAIL || s->state == STATE_RCPT)
		s->state = STATE_HELO;
}

static const char *
addr_domain(const char *addr)
{
	const char	*at = strrchr(addr, '@');

	return at == NULL ? NULL : at + 1;
}

/* RFC 5321 4.5.1: "postmaster" without a domain is always local. */
int
smtp_is_local_domain(const char *addr)
{
	struct local_domain	*d;
	const char		*domain = addr_domain(addr);

	if (domain == NULL)
		return strcasecmp(addr, "postmaster") == 0;
	if (TAILQ_EMPTY(&worker->conf->local_domains))
		return strcasecmp(domain, worker->conf->hostname) == 0;
	TAILQ_FOREACH(d, &worker->conf->local_domains, entry)
		if (strcasecmp(domain, d->name) == 0)
			return 1;
	return 0;
}

/*
 * Parse "FROM:<path> params" or "TO:<path> params" (RFC 5321 4.1.2).
 * The address goes to addr without the brackets or a source route;
 * *params points at what follows.  Returns 0, or -1 on bad syntax.
 * *utf8 is set when the address has octets above 127.
 */
static int
parse_path(char *arg, const char *prefix, char *addr, size_t addrlen,
    char **params, int *utf8)
{
	size_t	 plen = strlen(prefix), n = 0;
	char	*p, *q;
	int	 quoted = 0, ats = 0;

	*utf8 = 0;
	if (strncasecmp(arg, prefix, plen) != 0)
		return -1;
	p = arg + plen;
	while (*p == ' ')	/* tolerated: "MAIL FROM: <a@b>" */
		p++;
	if (*p++ != '<')
		return -1;
	/* An obsolete source route, "@a,@b:", is accepted and dropped. */
	if (*p == '@') {
		if ((q = strchr(p, ':')) == NULL)
			return -1;
		p = q + 1;
	}
	for (; *p != '\0' && (quoted || *p != '>'); p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f)
			return -1;
		if (c == '"' && (n == 0 || p[-1] != '\\'))
			quoted = !quoted;
		else if (!quoted && (c == ' ' || c == '<'))
			return -1;
		else if (!quoted && c == '@')
			ats++;
		if (c > 0x7f)
			*utf8 = 1;
		if (n + 1 >= addrlen)
			return -1;
		addr[n++] = *p;
	}
	if (*p != '>' || quoted)
		return -1;
	addr[n] = '\0';
	p++;
	if (*p != '\0' && *p != ' ')
		return -1;
	while (*p == ' ')
		p++;
	*params = p;
	if (n == 0)
		return 0;
	if (ats != 1 || addr[0] == '@' || addr[n - 1] == '@')
		return strcasecmp(addr, "postmaster") == 0 ? 0 : -1;
	return 0;
}

/* Next space-separated parameter, or NULL. */
static char *
next_param(char **p)
{
	char	*param;

	while (**p == ' ')
		(*p)++;
	if (**p == '\0')
		return NULL;
	param = *p;
	while (**p != '\0' && **p != ' ')
		(*p)++;
	if (**p == ' ')
		*(*p)++ = '\0';
	return param;
}

/*
 * RFC 5321 4.2: reply text is printable ASCII.  What the client sent
 * is shown with anything else as '?', a CR above all: the line reader
 * takes a bare CR as part of a line.
 */
static void
reply_safe(char *dst, size_t len, const char *src)
{
	size_t	 i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static int
mail_param(struct session *s, char *param, struct mail_params *mp)
{
	char		*value = strchr(param, '='), shown[65];
	const char	*errstr;

	if (value != NULL)
		*value++ = '\0';
	if (strcasecmp(param, "SIZE") == 0 && value != NULL) {
		mp->size = strtonum(value, 0, INT64_MAX, &errstr);
		if (errstr != NULL) {
			smtp_reply_error(s, "501 5.5.4 Bad SIZE parameter");
			return -1;
		}
	} else if (strcasecmp(param, "BODY") == 0 && value != NULL) {
		if (strcasecmp(value, "8BITMIME") == 0)
			mp->body_8bit = 1;
		else if (strcasecmp(value, "7BIT") != 0) {
			smtp_reply_error(s, "501 5.5.4 Bad BODY parameter");
			return -1;
		}
	} else if (strcasecmp(param, "SMTPUTF8") == 0 && value == NULL)
		mp->smtputf8 = 1;
	else if (strcasecmp(param, "AUTH") == 0 && value != NULL) {
		/* RFC 4954 5: accepted, and not trusted. */
	} else {
		reply_safe(shown, sizeof(shown), param);
		smtp_reply_error(s, "555 5.5.4 Unsupported MAIL parameter %s",
		    shown);
		return -1;
	}
	return 0;
}

/* May an authenticated user send as this address? */
static int
sender_allowed(struct session *s, const char *sender)
{
	const char	*user = s->auth_user, *d1, *d2;
	size_t		 ulen;

	if (s->auth_user[0] == '\0' || sender[0] == '\0' ||
	    worker->conf->sender_check == SENDER_CHECK_OFF)
		return 1;
	d1 = addr_domain(sender);
	if ((d2 = addr_domain(user)) == NULL) {
		/* A bare user name: its addresses are in local domains. */
		if (!smtp_is_local_domain(sender))
			return 0;
		if (worker->conf->sender_check == SENDER_CHECK_DOMAIN)
			return 1;
		ulen = strlen(user);
		return d1 != NULL && (size_t)(d1 - 1 - sender) == ulen &&
		    strncasecmp(sender, user, ulen) == 0;
	}
	if (worker->conf->sender_check == SENDER_CHECK_DOMAIN)
		return d1 != NULL && strcasecmp(d1, d2) == 0;
	return strcasecmp(sender, user) == 0;
}

static void
cmd_helo(struct session *s, char *arg, int esmtp)
{
	struct listener	*l = s->listener;
	const char	*host = worker->conf->hostname, *mechs;

	if (*arg == '\0' || strchr(arg, ' ') != NULL) {
		smtp_reply_error(s, "501 5.5.4 Syntax: %s hostname",
		    esmtp ? "EHLO" : "HELO");
		return;
	}
	strlcpy(s->helo, arg, sizeof(s->helo));
	/* RFC 5321 4.1.4: HELO/EHLO also resets the transaction. */
	smtp_transaction_reset(s);
	s->state = STATE_HELO;
	s->esmtp = esmtp;
	if (!esmtp) {
		session_reply(s, "250 %s Hello", host);
		return;
	}
	session_reply(s, "250-%s Hello %s", host, s->client_addr);
	session_reply(s, "250-PIPELINING");
	session_reply(s, "250-SIZE %llu",
	    (unsigned long long)worker->conf->max_message_size);
	session_reply(s, "250-8BITMIME");
	session_reply(s, "250-ENHANCEDSTATUSCODES");
	if ((l->flags & LISTEN_STARTTLS) && !s->tls)
		session_reply(s, "250-STARTTLS");
	if ((mechs = smtp_auth_mechanisms(s)) != NULL)
		session_reply(s, "250-AUTH %s", mechs);
	session_reply(s, "250 SMTPUTF8");
}

static int
mail_allowed(struct session *s)
{
	struct listener	*l = s->listener;

	if (s->state == STATE_INIT) {
		smtp_reply_error(s, "503 5.5.1 Send HELO or EHLO first");
		return 0;
	}
	if (s->state != STATE_HELO) {
		smtp_reply_error(s, "503 5.5.1 Nested MAIL command");
		return 0;
	}
	if ((l->flags & LISTEN_TLS_REQUIRE) && !s->tls) {
		smtp_reply_error(s, "530 5.7.0 Must issue a STARTTLS command first");
		return 0;
	}
	if ((l->flags & LISTEN_AUTH_REQUIRE) && s->auth_user[0] == '\0') {
		smtp_reply_error(s, "530 5.7.0 Authentication required");
		return 0;
	}
	return 1;
}

static void
cmd_mail(struct session *s, char *arg)
{
	struct mail_params	 mp;
	char			 addr[SMTP_PATH_MAX], *params, *param;
	int			 utf8;

	if (!mail_allowed(s))
		return;
	if (parse_path(arg, "FROM:", addr, sizeof(addr), &params,
	    &utf8) == -1) {
		smtp_reply_error(s, "501 5.1.7 Bad sender address syntax");
		return;
	}
	memset(&mp, 0, sizeof(mp));
	while ((param = next_param(&params)) != NULL)
		if (mail_param(s, param, &mp) == -1)
			return;
	if (utf8 && !mp.smtputf8) {
		smtp_reply_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (mp.size > worker->conf->max_message_size) {
		smtp_reply_error(s, "552 5.3.4 Message size exceeds fixed maximum "
		    "message size");
		return;
	}
	if (!sender_allowed(s, addr)) {
		log_info("session %016llx: sender <%s> refused for %s",
		    (unsigned long long)s->id, addr, s->auth_user);
		smtp_reply_error(s, "553 5.7.1 Sender address not owned by user %s",
		    s->auth_user);
		return;
	}
	strlcpy(s->env.sender, addr, sizeof(s->env.sender));
	s->env.body_8bit = mp.body_8bit;
	s->env.smtputf8 = mp.smtputf8;
	s->state = STATE_MAIL;
	session_reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	char	 addr[SMTP_PATH_MAX], *params, **n;
	int	 utf8;

	if (s->state != STATE_MAIL && s->state != STATE_RCPT) {
		smtp_reply_error(s, "503 5.5.1 Need MAIL before RCPT");
		return;
	}
	if (parse_path(arg, "TO:", addr, sizeof(addr), &params, &utf8) == -1 ||
	    addr[0] == '\0') {
		smtp_reply_error(s, "501 5.1.3 Bad recipient address syntax");
		return;
	}
	if (*params != '\0') {
		smtp_reply_error(s, "555 5.5.4 Unsupported RCPT parameter");
		return;
	}
	if (utf8 && !s->env.smtputf8) {
		smtp_reply_error(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (s->env.nrcpts >= (size_t)worker->conf->max_recipients) {
		/* RFC 5321 4.5.3.1.10: the client sends the rest later;
		 * not an error of the client's. */
		session_reply(s, "452 4.5.3 Too many recipients");
		return;
	}
	if (s->auth_user[0] == '\0' && !smtp_is_local_domain(addr)) {
		log_info("session %016llx: relay to <%s> denied",
		    (unsigned long long)s->id, addr);
		smtp_reply_error(s, "554 5.7.1 <%s>: Relay access denied", addr);
		return;
	}
	if (s->env.nrcpts == s->rcpt_cap) {
		s->rcpt_cap = s->rcpt_cap ? s->rcpt_cap * 2 : 4;
		n = reallocarray(s->env.rcpts, s->rcpt_cap, sizeof(*n));
		if (n == NULL)
			fatal("reallocarray");
		s->env.rcpts = n;
	}
	if ((s->env.rcpts[s->env.nrcpts] = strdup(addr)) == NULL)
		fatal("strdup");
	s->env.nrcpts++;
	s->state = STATE_RCPT;
	session_reply(s, "250 2.1.5 Ok");
}

static void
cmd_data(struct session *s, char *arg)
{
	if (*arg != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == STATE_MAIL) {
		smtp_reply_error(s, "554 5.5.1 No valid recipients");
		return;
	}
	if (s->state != STATE_RCPT) {
		smtp_reply_error(s, "503 5.5.1 Need RCPT before DATA");
		return;
	}
	smtp_data_start(s);
}

static void
cmd_starttls(struct session *s, char *arg)
{
	if (!(s->listener->flags & LISTEN_STARTTLS)) {
		smtp_reply_error(s, "502 5.5.1 STARTTLS not available");
		return;
	}
	if (s->tls) {
		smtp_reply_error(s, "503 5.5.1 TLS already active");
		return;
	}
	if (*arg != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (s->state == STATE_MAIL || s->state == STATE_RCPT) {
		smtp_reply_error(s, "503 5.5.1 STARTTLS inside a mail transaction");
		return;
	}
	session_reply(s, "220 2.0.0 Ready to start TLS");
	session_starttls(s);
}

static void
cmd_vrfy(struct session *s, char *arg)
{
	if (*arg == '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	/* RFC 5321 3.5.3: neither confirm nor deny. */
	session_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
cmd_help(struct session *s)
{
	session_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP STARTTLS");
	session_reply(s, "214 2.0.0 See RFC 5321");
}

/* One command line, without its CR LF. */
void
smtp_command(struct session *s, char *line)
{
	char	*arg;

	/* Only AUTH may carry a long initial response (RFC 4954 4). */
	if (strlen(line) + 2 > SMTP_LINE_MAX &&
	    strncasecmp(line, "AUTH ", 5) != 0) {
		smtp_reply_error(s, "500 5.5.2 Line too long");
		return;
	}

	if ((arg = strchr(line, ' ')) != NULL)
		*arg++ = '\0';
	else
		arg = line + strlen(line);

	if (strcasecmp(line, "EHLO") == 0)
		cmd_helo(s, arg, 1);
	else if (strcasecmp(line, "HELO") == 0)
		cmd_helo(s, arg, 0);
	else if (strcasecmp(line, "MAIL") == 0)
		cmd_mail(s, arg);
	else if (strcasecmp(line, "RCPT") == 0)
		cmd_rcpt(s, arg);
	else if (strcasecmp(line, "DATA") == 0)
		cmd_data(s, arg);
	else if (strcasecmp(line, "RSET") == 0) {
		smtp_transaction_reset(s);
		session_reply(s, "250 2.0.0 Ok");
	} else if (strcasecmp(line, "NOOP") == 0)
		session_reply(s, "250 2.0.0 Ok");
	else if (strcasecmp(line, "QUIT") == 0) {
		s->state = STATE_QUIT;
		session_close_after(s, "221 2.0.0 Bye");
	} else if (strcasecmp(line, "VRFY") == 0)
		cmd_vrfy(s, arg);
	else if (strcasecmp(line, "HELP") == 0)
		cmd_help(s);
	else if (strcasecmp(line, "STARTTLS") == 0)
		cmd_starttls(s, arg);
	else if (strcasecmp(line, "AUTH") == 0)
		smtp_auth_command(s, arg);
	else if (strcasecmp(line, "EXPN") == 0 ||
	    strcasecmp(line, "BDAT") == 0 ||
	    strcasecmp(line, "ETRN") == 0 || strcasecmp(line, "TURN") == 0)
		smtp_reply_error(s, "502 5.5.1 Command not implemented");
	else
		smtp_reply_error(s, "500 5.5.1 Command unrecognized");
}
