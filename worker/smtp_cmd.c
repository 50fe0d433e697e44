/*
 * smtp_cmd.c -- the SMTP commands (RFC 5321 4.1) and their replies.
 *
 * smtp_cmds[] below holds every verb we know: the states it is
 * allowed in and the reply in the others, its argument, and its
 * handler; smtp_command() looks the verb up and refuses what the entry
 * says to refuse (the order is in smtp_cmd.h), so that a handler runs
 * only in its states and with its argument, and deals with the rest:
 * the argument's own syntax and the policy.  Replies carry the
 * enhanced status code (RFC 2034, RFC 3463) that case calls for.
 * Every error counts against the session; after max-errors the
 * session is closed with 421.  No open relay: without AUTH only
 * recipients in a local domain are accepted.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "smtp_cmd.h"
#include "tls.h"
#include "worker.h"

struct mail_params {
	uint64_t	 size;
	int		 body_8bit;
	int		 smtputf8;
};

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

/* One of the addresses the checker said the user may send as? */
static int
sender_listed(const struct session *s, const char *sender)
{
	const char	*a;

	for (a = s->auth_addrs; a != NULL &&
	    a < s->auth_addrs + s->auth_addrs_len; a += strlen(a) + 1)
		if (strcasecmp(a, sender) == 0)
			return 1;
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
	if (sender_listed(s, sender))
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

#define REPLY_UNKNOWN		"500 5.5.1 Command unrecognized"
#define REPLY_TOO_LONG		"500 5.5.2 Line too long"
#define REPLY_NOT_IMPLEMENTED	"502 5.5.1 Command not implemented"
#define REPLY_BAD_SEQUENCE	"503 5.5.1 Bad sequence of commands"
#define REPLY_BAD_SENDER	"501 5.1.7 Bad sender address syntax"
#define REPLY_BAD_RCPT		"501 5.1.3 Bad recipient address syntax"

static void
smtp_greet_back(struct session *s, char *arg, int esmtp)
{
	struct listener	*l = s->listener;
	const char	*host = worker->conf->hostname, *mechs;

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

static void
cmd_ehlo(struct session *s, char *arg)
{
	smtp_greet_back(s, arg, 1);
}

static void
cmd_helo(struct session *s, char *arg)
{
	smtp_greet_back(s, arg, 0);
}

/* RFC 3207 4 and RFC 4954 4: what the listener demands before MAIL. */
static const char *
mail_policy(struct session *s)
{
	struct listener	*l = s->listener;

	if ((l->flags & LISTEN_TLS_REQUIRE) && !s->tls)
		return "530 5.7.0 Must issue a STARTTLS command first";
	if ((l->flags & LISTEN_AUTH_REQUIRE) && s->auth_user[0] == '\0')
		return "530 5.7.0 Authentication required";
	return NULL;
}

static void
cmd_mail(struct session *s, char *arg)
{
	struct mail_params	 mp;
	char			 addr[SMTP_PATH_MAX], *params, *param;
	int			 utf8;

	if (parse_path(arg, "FROM:", addr, sizeof(addr), &params,
	    &utf8) == -1) {
		smtp_reply_error(s, REPLY_BAD_SENDER);
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
	if (smtp_mail_room(s, mp.size) == -1)
		return;
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
rcpt_add(struct session *s, const char *addr)
{
	char	**n;

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
}

static void	rcpt_limited(struct session *, int);

static void
cmd_rcpt(struct session *s, char *arg)
{
	char	 addr[SMTP_PATH_MAX], *params;
	int	 utf8;

	if (parse_path(arg, "TO:", addr, sizeof(addr), &params, &utf8) == -1 ||
	    addr[0] == '\0') {
		smtp_reply_error(s, REPLY_BAD_RCPT);
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
	if ((s->limit_rcpt = strdup(addr)) == NULL)
		fatal("strdup");
	s->limit_prev = s->state;
	if (smtp_limit_ask(s, LIMIT_RECIPIENTS, 1, rcpt_limited) == -1) {
		s->limit_which[0] = '\0';
		rcpt_limited(s, 0);
		return;
	}
	/* Nothing more is read until authd has counted it. */
	if (s->limit_req_id != 0)
		s->state = STATE_LIMIT_WAIT;
}

/* The recipient's sending limit is known (smtp_limit.c): 250 or 451. */
static void
rcpt_limited(struct session *s, int ok)
{
	int	 waited = s->state == STATE_LIMIT_WAIT;

	if (waited)
		s->state = s->limit_prev;
	if (ok) {
		rcpt_add(s, s->limit_rcpt);
		s->state = STATE_RCPT;
		session_reply(s, "250 2.1.5 Ok");
	} else
		smtp_limit_refused(s, LIMIT_RECIPIENTS, s->limit_which);
	free(s->limit_rcpt);
	s->limit_rcpt = NULL;
	if (waited)
		session_resume(s);
}

static void
cmd_data(struct session *s, char *arg)
{
	(void)arg;
	smtp_data_start(s);
}

static void
cmd_rset(struct session *s, char *arg)
{
	(void)arg;
	smtp_transaction_reset(s);
	session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_noop(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "250 2.0.0 Ok");
}

static void
cmd_quit(struct session *s, char *arg)
{
	(void)arg;
	s->state = STATE_QUIT;
	session_close_after(s, "221 2.0.0 Bye");
}

static const char *
starttls_gate(struct session *s)
{
	if (!(s->listener->flags & LISTEN_STARTTLS))
		return "502 5.5.1 STARTTLS not available";
	if (s->tls)
		return "503 5.5.1 TLS already active";
	/* RFC 3207 4: the key process is being restarted; try later. */
	if (!keyproxy_available())
		return "454 4.7.0 TLS not available due to temporary reason";
	return NULL;
}

static void
cmd_starttls(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "220 2.0.0 Ready to start TLS");
	session_starttls(s);
}

/* RFC 4954 4: once authenticated, AUTH is refused whatever the state. */
static const char *
auth_gate(struct session *s)
{
	if (s->auth_user[0] != '\0')
		return "503 5.5.1 Already authenticated";
	return NULL;
}

static void
cmd_vrfy(struct session *s, char *arg)
{
	(void)arg;
	/* RFC 5321 3.5.3: neither confirm nor deny. */
	session_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
	    "message and attempt delivery");
}

static void
cmd_help(struct session *s, char *arg)
{
	(void)arg;
	session_reply(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
	    "NOOP QUIT VRFY HELP STARTTLS");
	session_reply(s, "214 2.0.0 See RFC 5321");
}

/* The states a command line is read in. */
#define ANY_STATE	(CMD_STATE(STATE_INIT) | CMD_STATE(STATE_HELO) | \
			 CMD_STATE(STATE_MAIL) | CMD_STATE(STATE_RCPT))
#define NOT_IMPLEMENTED(v) \
	{ .verb = (v), .flags = CMD_NOT_IMPLEMENTED }
#define NOT_IMPLEMENTED_END(v) \
	{ .verb = (v), .flags = CMD_NOT_IMPLEMENTED | CMD_GROUP_END }

/*
 * Sorted by verb, for bsearch.  CMD_GROUP_END marks the verbs RFC
 * 2920 3.1 puts last in a pipelined group, for the client's sake: the
 * server reads on after any of them and answers each group in one
 * write.  Only STARTTLS throws away what follows it (RFC 3207 4.2,
 * session_starttls()); after QUIT, DATA and AUTH what follows is read
 * in the state they leave the session in.
 */
const struct smtp_cmd smtp_cmds[] = {
	{ .verb = "AUTH", .states = CMD_STATE(STATE_HELO),
	  .refuse = {
		[STATE_INIT] = "503 5.5.1 Send EHLO first",
		[STATE_MAIL] = "503 5.5.1 AUTH not permitted in a mail "
		    "transaction",
		[STATE_RCPT] = "503 5.5.1 AUTH not permitted in a mail "
		    "transaction" },
	  .arg = ARG_REQUIRED,
	  .bad_arg = "504 5.5.4 Unrecognized authentication type",
	  .flags = CMD_GROUP_END | CMD_LONG_LINE,
	  .gate = auth_gate, .policy = smtp_auth_policy,
	  .handler = smtp_auth_command },
	NOT_IMPLEMENTED("BDAT"),	/* RFC 3030: no CHUNKING */
	{ .verb = "DATA", .states = CMD_STATE(STATE_RCPT),
	  .refuse = {
		[STATE_INIT] = "503 5.5.1 Need RCPT before DATA",
		[STATE_HELO] = "503 5.5.1 Need RCPT before DATA",
		/* RFC 5321 3.3: no recipient was accepted. */
		[STATE_MAIL] = "554 5.5.1 No valid recipients" },
	  .arg = ARG_NONE, .bad_arg = "501 5.5.4 Syntax: DATA",
	  .flags = CMD_GROUP_END | CMD_SYNTAX_FIRST,
	  .handler = cmd_data },
	{ .verb = "EHLO", .states = ANY_STATE,
	  .arg = ARG_WORD, .bad_arg = "501 5.5.4 Syntax: EHLO hostname",
	  .flags = CMD_GROUP_END, .handler = cmd_ehlo },
	NOT_IMPLEMENTED("ETRN"),	/* RFC 1985: not a relay */
	NOT_IMPLEMENTED_END("EXPN"),	/* RFC 5321 3.5.2: no lists shown */
	{ .verb = "HELO", .states = ANY_STATE,
	  .arg = ARG_WORD, .bad_arg = "501 5.5.4 Syntax: HELO hostname",
	  .flags = CMD_GROUP_END, .handler = cmd_helo },
	{ .verb = "HELP", .states = ANY_STATE, .arg = ARG_OPTIONAL,
	  .handler = cmd_help },
	{ .verb = "MAIL", .states = CMD_STATE(STATE_HELO),
	  .refuse = {
		[STATE_INIT] = "503 5.5.1 Send HELO or EHLO first",
		[STATE_MAIL] = "503 5.5.1 Nested MAIL command",
		[STATE_RCPT] = "503 5.5.1 Nested MAIL command" },
	  .arg = ARG_REQUIRED, .bad_arg = REPLY_BAD_SENDER,
	  .policy = mail_policy, .handler = cmd_mail },
	{ .verb = "NOOP", .states = ANY_STATE, .arg = ARG_OPTIONAL,
	  .flags = CMD_GROUP_END, .handler = cmd_noop },
	{ .verb = "QUIT", .states = ANY_STATE, .arg = ARG_OPTIONAL,
	  .flags = CMD_GROUP_END, .handler = cmd_quit },
	{ .verb = "RCPT",
	  .states = CMD_STATE(STATE_MAIL) | CMD_STATE(STATE_RCPT),
	  .refuse = {
		[STATE_INIT] = "503 5.5.1 Need MAIL before RCPT",
		[STATE_HELO] = "503 5.5.1 Need MAIL before RCPT" },
	  .arg = ARG_REQUIRED, .bad_arg = REPLY_BAD_RCPT,
	  .handler = cmd_rcpt },
	{ .verb = "RSET", .states = ANY_STATE, .arg = ARG_OPTIONAL,
	  .handler = cmd_rset },
	{ .verb = "STARTTLS",
	  .states = CMD_STATE(STATE_INIT) | CMD_STATE(STATE_HELO),
	  .refuse = {
		[STATE_MAIL] = "503 5.5.1 STARTTLS inside a mail transaction",
		[STATE_RCPT] = "503 5.5.1 STARTTLS inside a mail transaction" },
	  .arg = ARG_NONE, .bad_arg = "501 5.5.4 Syntax: STARTTLS",
	  .flags = CMD_GROUP_END | CMD_SYNTAX_FIRST,
	  .gate = starttls_gate, .handler = cmd_starttls },
	NOT_IMPLEMENTED_END("TURN"),	/* RFC 5321 4.1.1: obsolete */
	{ .verb = "VRFY", .states = ANY_STATE,
	  .arg = ARG_REQUIRED, .bad_arg = "501 5.5.4 Syntax: VRFY address",
	  .flags = CMD_GROUP_END, .handler = cmd_vrfy },
};
const size_t	smtp_ncmds = sizeof(smtp_cmds) / sizeof(smtp_cmds[0]);

static int
smtp_cmd_cmp(const void *key, const void *elem)
{
	return strcasecmp(key, ((const struct smtp_cmd *)elem)->verb);
}

const struct smtp_cmd *
smtp_cmd_lookup(const char *verb)
{
	return bsearch(verb, smtp_cmds, smtp_ncmds, sizeof(smtp_cmds[0]),
	    smtp_cmd_cmp);
}

static int
arg_fits(const struct smtp_cmd *c, const char *arg)
{
	switch (c->arg) {
	case ARG_NONE:
		return *arg == '\0';
	case ARG_REQUIRED:
		return *arg != '\0';
	case ARG_WORD:
		return *arg != '\0' && strchr(arg, ' ') == NULL;
	default:
		return 1;
	}
}

/* The reply that refuses the command now, in smtp_cmd.h's order; or NULL. */
const char *
smtp_cmd_refusal(struct session *s, const struct smtp_cmd *c,
    const char *arg)
{
	const char	*why;

	if (c->flags & CMD_NOT_IMPLEMENTED)
		return REPLY_NOT_IMPLEMENTED;
	if (c->gate != NULL && (why = c->gate(s)) != NULL)
		return why;
	if ((c->flags & CMD_SYNTAX_FIRST) && !arg_fits(c, arg))
		return c->bad_arg;
	if (!(c->states & CMD_STATE(s->state)))
		return (unsigned int)s->state < CMD_STATES &&
		    c->refuse[s->state] != NULL ? c->refuse[s->state] :
		    REPLY_BAD_SEQUENCE;
	if (c->policy != NULL && (why = c->policy(s)) != NULL)
		return why;
	if (!arg_fits(c, arg))
		return c->bad_arg;
	return NULL;
}

/* One command line, without its CR LF. */
void
smtp_command(struct session *s, char *line)
{
	const struct smtp_cmd	*c;
	const char		*why;
	size_t			 len = strlen(line);
	char			*arg;

	if ((arg = strchr(line, ' ')) != NULL)
		*arg++ = '\0';
	else
		arg = line + len;
	c = smtp_cmd_lookup(line);
	if (len + 2 > SMTP_LINE_MAX &&
	    (c == NULL || !(c->flags & CMD_LONG_LINE))) {
		smtp_reply_error(s, REPLY_TOO_LONG);
		return;
	}
	if (c == NULL) {
		smtp_reply_error(s, REPLY_UNKNOWN);
		return;
	}
	if ((why = smtp_cmd_refusal(s, c, arg)) != NULL) {
		smtp_reply_error(s, "%s", why);
		return;
	}
	c->handler(s, arg);
}
