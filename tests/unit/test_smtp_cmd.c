/*
 * test_smtp_cmd.c -- the command table of worker/smtp_cmd.c: it is
 * sorted and whole, and every verb in every state a command is read in
 * gets the reply it got before the table, driven through a real
 * session as tests/fuzz/fuzz_smtp_cmd.c drives one (a bufferevent
 * pair, no socket).
 */

#include <sys/socket.h>

#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <criterion/criterion.h>

#include "log.h"
#include "smtp_cmd.h"
#include "tls.h"
#include "worker.h"

struct worker		*worker;

static struct worker	 test_worker;
static struct listener	 listener;
static int		 session_gone;

/* worker.c's, which the tests do not link: the session was freed. */
void
worker_session_gone(void)
{
	session_gone = 1;
}

static void
timer_noop(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
}

static void
setup(void)
{
	struct portcullis_conf	*conf;
	struct local_domain	*d;
	struct checker_conf	*c;

	log_init(0, LOG_MAIL);
	setlogmask(LOG_UPTO(LOG_CRIT));
	worker = &test_worker;
	memset(worker, 0, sizeof(*worker));
	TAILQ_INIT(&worker->sessions);
	cr_assert_not_null(worker->base = event_base_new());
	cr_assert_not_null(conf = config_new_empty());
	worker->conf = conf;
	strlcpy(conf->hostname, "mx.example.org", sizeof(conf->hostname));
	cr_assert_not_null(d = calloc(1, sizeof(*d)));
	strlcpy(d->name, "example.org", sizeof(d->name));
	TAILQ_INSERT_TAIL(&conf->local_domains, d, entry);
	cr_assert_not_null(c = calloc(1, sizeof(*c)));
	strlcpy(c->name, "local", sizeof(c->name));
	c->type = CHECKER_STATIC;
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);
	conf->deliver = DELIVER_CONSOLE;
	conf->max_message_size = 64 * 1024;
	conf->max_recipients = 8;
	conf->max_errors = 1000;
	cr_assert_eq(deliver_init(worker->base, conf, -1), 0);
	strlcpy(listener.name, "submission", sizeof(listener.name));
	listener.fd = -1;
	listener.flags = 0;
}

TestSuite(smtp_cmd, .init = setup, .timeout = 20);

struct conn {
	struct session		*s;
	struct bufferevent	*client;
};

static struct conn
conn_open(void)
{
	struct bufferevent	*pair[2];
	struct conn		 c;

	cr_assert_not_null(c.s = calloc(1, sizeof(*c.s)));
	cr_assert_eq(bufferevent_pair_new(worker->base, 0, pair), 0);
	c.s->bev = pair[0];
	c.client = pair[1];
	bufferevent_enable(pair[0], EV_READ);
	bufferevent_enable(pair[1], EV_READ);
	cr_assert_not_null(c.s->timer = evtimer_new(worker->base, timer_noop,
	    c.s));
	c.s->listener = &listener;
	c.s->started = time(NULL);
	strlcpy(c.s->client_addr, "127.0.0.1", sizeof(c.s->client_addr));
	TAILQ_INSERT_TAIL(&worker->sessions, c.s, entry);
	worker->nsessions++;
	c.s->state = STATE_INIT;
	session_gone = 0;
	return c;
}

static void
conn_close(struct conn *c)
{
	if (!session_gone)
		session_free(c->s);
	bufferevent_free(c->client);
	event_base_loop(worker->base, EVLOOP_NONBLOCK);
}

/* Send one line; the first line of the reply, without CR LF. */
static void
cmd(struct conn *c, const char *line, char *reply, size_t len)
{
	struct evbuffer	*in = bufferevent_get_input(c->client);
	char		*first;
	size_t		 n;

	evbuffer_drain(in, evbuffer_get_length(in));
	evbuffer_add_printf(bufferevent_get_output(c->client), "%s\r\n", line);
	session_resume(c->s);
	first = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	cr_assert_not_null(first, "no reply to %s", line);
	strlcpy(reply, first, len);
	free(first);
}

static void
expect(struct conn *c, const char *line, const char *want)
{
	char	 reply[1024];

	cmd(c, line, reply, sizeof(reply));
	if (strlen(want) == 3)
		cr_assert_eq(strncmp(reply, want, 3), 0, "%s: got \"%s\", "
		    "want %s", line, reply, want);
	else
		cr_assert_str_eq(reply, want, "%s", line);
}

/* A session in state st, by the commands a client would send. */
static struct conn
conn_in(enum smtp_state st)
{
	struct conn	 c = conn_open();

	if (st == STATE_INIT)
		return c;
	expect(&c, "EHLO client.example", "250");
	if (st == STATE_HELO)
		return c;
	expect(&c, "MAIL FROM:<a@client.example>", "250 2.1.0 Ok");
	if (st == STATE_MAIL)
		return c;
	expect(&c, "RCPT TO:<b@example.org>", "250 2.1.5 Ok");
	return c;
}

static const enum smtp_state command_states[] = {
	STATE_INIT, STATE_HELO, STATE_MAIL, STATE_RCPT,
};

/*
 * Every verb in every state: a reply code, or the whole first line.
 * Written down from the replies before the table, not from it.
 */
static const struct {
	const char	*line;
	const char	*want[4];	/* INIT, HELO, MAIL, RCPT */
} matrix[] = {
	{ "EHLO x", { "250", "250", "250", "250" } },
	{ "HELO x", { "250 mx.example.org Hello", "250", "250", "250" } },
	{ "MAIL FROM:<c@client.example>", {
	    "503 5.5.1 Send HELO or EHLO first", "250 2.1.0 Ok",
	    "503 5.5.1 Nested MAIL command",
	    "503 5.5.1 Nested MAIL command" } },
	{ "RCPT TO:<d@example.org>", {
	    "503 5.5.1 Need MAIL before RCPT",
	    "503 5.5.1 Need MAIL before RCPT", "250 2.1.5 Ok",
	    "250 2.1.5 Ok" } },
	{ "DATA", { "503 5.5.1 Need RCPT before DATA",
	    "503 5.5.1 Need RCPT before DATA",
	    "554 5.5.1 No valid recipients",
	    "354 End data with <CR><LF>.<CR><LF>" } },
	{ "RSET", { "250 2.0.0 Ok", "250 2.0.0 Ok", "250 2.0.0 Ok",
	    "250 2.0.0 Ok" } },
	{ "NOOP", { "250 2.0.0 Ok", "250 2.0.0 Ok", "250 2.0.0 Ok",
	    "250 2.0.0 Ok" } },
	{ "QUIT", { "221 2.0.0 Bye", "221 2.0.0 Bye", "221 2.0.0 Bye",
	    "221 2.0.0 Bye" } },
	{ "VRFY x", { "252", "252", "252", "252" } },
	{ "HELP", { "214", "214", "214", "214" } },
	{ "STARTTLS", { "502 5.5.1 STARTTLS not available",
	    "502 5.5.1 STARTTLS not available",
	    "502 5.5.1 STARTTLS not available",
	    "502 5.5.1 STARTTLS not available" } },
	{ "AUTH PLAIN", { "503 5.5.1 Send EHLO first", "334 ",
	    "503 5.5.1 AUTH not permitted in a mail transaction",
	    "503 5.5.1 AUTH not permitted in a mail transaction" } },
	{ "EXPN x", { "502 5.5.1 Command not implemented",
	    "502 5.5.1 Command not implemented",
	    "502 5.5.1 Command not implemented",
	    "502 5.5.1 Command not implemented" } },
	{ "BDAT 1", { "502", "502", "502", "502" } },
	{ "ETRN x", { "502", "502", "502", "502" } },
	{ "TURN", { "502", "502", "502", "502" } },
	{ "XYZZY", { "500 5.5.1 Command unrecognized",
	    "500 5.5.1 Command unrecognized",
	    "500 5.5.1 Command unrecognized",
	    "500 5.5.1 Command unrecognized" } },
	{ "", { "500", "500", "500", "500" } },
	{ "noop", { "250", "250", "250", "250" } },
	{ "Mail FROM:<c@client.example>", { "503", "250", "503", "503" } },
};

Test(smtp_cmd, every_verb_in_every_state)
{
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++)
		for (size_t j = 0; j < 4; j++) {
			struct conn	 c = conn_in(command_states[j]);

			expect(&c, matrix[i].line, matrix[i].want[j]);
			conn_close(&c);
		}
}

/* The argument: missing, unexpected, and when it is judged. */
Test(smtp_cmd, arguments)
{
	struct conn	 c = conn_in(STATE_HELO);

	expect(&c, "EHLO", "501 5.5.4 Syntax: EHLO hostname");
	expect(&c, "EHLO ", "501 5.5.4 Syntax: EHLO hostname");
	expect(&c, "EHLO a b", "501 5.5.4 Syntax: EHLO hostname");
	expect(&c, "HELO", "501 5.5.4 Syntax: HELO hostname");
	expect(&c, "VRFY", "501 5.5.4 Syntax: VRFY address");
	expect(&c, "VRFY a b", "252");
	expect(&c, "MAIL", "501 5.1.7 Bad sender address syntax");
	expect(&c, "MAIL TO:<a@b.c>", "501 5.1.7 Bad sender address syntax");
	/* DATA's argument counts before its state. */
	expect(&c, "DATA x", "501 5.5.4 Syntax: DATA");
	expect(&c, "AUTH", "504 5.5.4 Unrecognized authentication type");
	expect(&c, "AUTH FOO", "504 5.5.4 Unrecognized authentication type");
	expect(&c, "RSET x", "250 2.0.0 Ok");
	expect(&c, "NOOP x", "250 2.0.0 Ok");
	expect(&c, "HELP x", "214");
	expect(&c, "MAIL FROM:<a@client.example>", "250 2.1.0 Ok");
	expect(&c, "RCPT", "501 5.1.3 Bad recipient address syntax");
	expect(&c, "RCPT TO:<>", "501 5.1.3 Bad recipient address syntax");
	expect(&c, "QUIT x", "221 2.0.0 Bye");
	conn_close(&c);
}

/* STARTTLS: availability, then the argument, then the state. */
Test(smtp_cmd, starttls_order)
{
	struct conn	 c;
	int		 sp[2];

	listener.flags = LISTEN_STARTTLS;
	/* A channel to a key process (nobody answers: none is needed). */
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	keyproxy_channel(worker->base, sp[0], 0);
	c = conn_in(STATE_MAIL);
	expect(&c, "STARTTLS x", "501 5.5.4 Syntax: STARTTLS");
	expect(&c, "STARTTLS", "503 5.5.1 STARTTLS inside a mail transaction");
	c.s->tls = 1;
	expect(&c, "STARTTLS x", "503 5.5.1 TLS already active");
	conn_close(&c);
	/* RFC 3207 4: the key process away (restarting): 454, not 220. */
	close(sp[1]);
	event_base_loop(worker->base, EVLOOP_NONBLOCK);
	cr_assert_not(keyproxy_available());
	c = conn_in(STATE_HELO);
	expect(&c, "STARTTLS", "454 4.7.0 TLS not available due to "
	    "temporary reason");
	conn_close(&c);
}

/* MAIL: the state, then the listener's demands, then the argument. */
Test(smtp_cmd, mail_policy_order)
{
	struct conn	 c;

	listener.flags = LISTEN_TLS_REQUIRE;
	c = conn_in(STATE_INIT);
	expect(&c, "MAIL", "503 5.5.1 Send HELO or EHLO first");
	expect(&c, "EHLO x", "250");
	expect(&c, "MAIL", "530 5.7.0 Must issue a STARTTLS command first");
	conn_close(&c);

	listener.flags = LISTEN_AUTH_REQUIRE;
	c = conn_in(STATE_HELO);
	expect(&c, "MAIL", "530 5.7.0 Authentication required");
	strlcpy(c.s->auth_user, "alice@example.org", sizeof(c.s->auth_user));
	expect(&c, "MAIL", "501 5.1.7 Bad sender address syntax");
	conn_close(&c);
}

/* AUTH: authenticated first, then the state, then availability. */
Test(smtp_cmd, auth_order)
{
	struct conn	 c = conn_in(STATE_MAIL);
	struct checker_conf *chk;

	strlcpy(c.s->auth_user, "alice@example.org", sizeof(c.s->auth_user));
	expect(&c, "AUTH PLAIN", "503 5.5.1 Already authenticated");
	c.s->auth_user[0] = '\0';
	expect(&c, "AUTH", "503 5.5.1 AUTH not permitted in a mail "
	    "transaction");
	expect(&c, "RSET", "250 2.0.0 Ok");
	strlcpy(c.s->client_addr, "192.0.2.1", sizeof(c.s->client_addr));
	expect(&c, "AUTH", "530 5.7.0 Must issue a STARTTLS command first");
	chk = TAILQ_FIRST(&worker->conf->checkers);
	TAILQ_REMOVE(&worker->conf->checkers, chk, entry);
	expect(&c, "AUTH", "502 5.5.1 AUTH not available");
	TAILQ_INSERT_TAIL(&worker->conf->checkers, chk, entry);
	conn_close(&c);
}

/* Only AUTH may be longer than SMTP_LINE_MAX (RFC 4954 4). */
Test(smtp_cmd, long_lines)
{
	struct conn	 c = conn_in(STATE_HELO);
	char		 line[SMTP_LINE_MAX + 16];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	memcpy(line, "NOOP ", 5);
	expect(&c, line, "500 5.5.2 Line too long");
	memcpy(line, "EXPN ", 5);
	expect(&c, line, "500 5.5.2 Line too long");
	memcpy(line, "XXXX ", 5);
	expect(&c, line, "500 5.5.2 Line too long");
	memcpy(line, "AUTH ", 5);
	expect(&c, line, "504 5.5.4 Unrecognized authentication type");
	conn_close(&c);
}

Test(smtp_cmd, table_sorted_and_unique)
{
	for (size_t i = 1; i < smtp_ncmds; i++)
		cr_assert_lt(strcasecmp(smtp_cmds[i - 1].verb,
		    smtp_cmds[i].verb), 0, "%s before %s",
		    smtp_cmds[i - 1].verb, smtp_cmds[i].verb);
	for (size_t i = 0; i < smtp_ncmds; i++) {
		cr_assert_eq(smtp_cmd_lookup(smtp_cmds[i].verb),
		    &smtp_cmds[i]);
		for (char *p = (char *)smtp_cmds[i].verb; *p != '\0'; p++)
			cr_assert(*p >= 'A' && *p <= 'Z');
	}
	cr_assert_eq(smtp_cmd_lookup("starttls"), smtp_cmd_lookup("STARTTLS"));
	cr_assert_null(smtp_cmd_lookup("STARTTL"));
	cr_assert_null(smtp_cmd_lookup(""));
}

/* Every entry says what to answer wherever it refuses. */
Test(smtp_cmd, table_whole)
{
	for (size_t i = 0; i < smtp_ncmds; i++) {
		const struct smtp_cmd	*c = &smtp_cmds[i];

		if (c->flags & CMD_NOT_IMPLEMENTED) {
			cr_assert_null(c->handler, "%s", c->verb);
			continue;
		}
		cr_assert_not_null(c->handler, "%s", c->verb);
		cr_assert((c->arg == ARG_OPTIONAL) == (c->bad_arg == NULL),
		    "%s", c->verb);
		for (size_t j = 0; j < 4; j++) {
			enum smtp_state st = command_states[j];
			int	 allowed = (c->states & CMD_STATE(st)) != 0;

			cr_assert(allowed == (c->refuse[st] == NULL),
			    "%s in state %d", c->verb, st);
		}
		for (size_t st = 0; st < CMD_STATES; st++)
			if (c->refuse[st] != NULL)
				cr_assert(c->refuse[st][0] >= '4', "%s",
				    c->verb);
	}
}

/* 502 for these, whatever follows them. */
Test(smtp_cmd, not_implemented)
{
	const char	*verbs[] = { "BDAT", "ETRN", "EXPN", "TURN" };
	size_t		 n = 0;

	for (size_t i = 0; i < smtp_ncmds; i++)
		if (smtp_cmds[i].flags & CMD_NOT_IMPLEMENTED) {
			cr_assert_lt(n, 4);
			cr_assert_str_eq(smtp_cmds[i].verb, verbs[n]);
			n++;
		}
	cr_assert_eq(n, 4);
}

/* RFC 2920 3.1: the verbs that end a pipelined group. */
Test(smtp_cmd, group_end)
{
	const char	*enders = " EHLO HELO DATA VRFY EXPN TURN QUIT NOOP "
			    "AUTH STARTTLS ";
	char		 word[16];

	for (size_t i = 0; i < smtp_ncmds; i++) {
		snprintf(word, sizeof(word), " %s ", smtp_cmds[i].verb);
		cr_assert_eq((smtp_cmds[i].flags & CMD_GROUP_END) != 0,
		    strstr(enders, word) != NULL, "%s", smtp_cmds[i].verb);
	}
}
