/*
 * test_deliver.c -- unit tests for worker/deliver*.c.
 *
 * spool: a real spool directory under /tmp; what lands in new/ is read
 * back byte for byte, tmp/ must be empty afterwards, and a write error
 * (RLIMIT_FSIZE makes write(2) fail with EFBIG) must leave nothing.
 * console: stderr is redirected to a file and the log lines checked.
 * relay: a scripted next hop runs in a forked child on 127.0.0.1:0 with
 * plain blocking I/O (and OpenSSL for STARTTLS); it hands back a
 * transcript of everything it read over a pipe, which the test reads
 * through the event loop so that the relay can go on talking (QUIT)
 * meanwhile.  A fake session feeds the message in chunks and honours
 * deliver_pending()/resume like the real one.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "deliver_int.h"
#include "log.h"

/* A regression that blocks must fail, not hang the suite. */
TestSuite(spool, .timeout = 20);
TestSuite(console, .timeout = 20);
TestSuite(relay, .timeout = 20);

static struct event_base	*base;
static struct portcullis_conf	 conf;
static char			 spooldir[64];
static int			 spool_fd = -1;

/*
 * The fake session
 */

struct feeder {
	struct delivery	*d;
	const char	*msg;
	size_t		 len;
	size_t		 off;
	size_t		 chunk;
	int		 ended;
	int		 paused;
	int		 resumes;
	int		 write_failed;
	int		 called;
	int		 code;
	char		 status[32];
	char		 text[512];
};

static void
feeder_done(void *arg, int code, const char *status, const char *text)
{
	struct feeder	*f = arg;

	f->called++;
	f->code = code;
	strlcpy(f->status, status, sizeof(f->status));
	strlcpy(f->text, text, sizeof(f->text));
	event_base_loopbreak(base);
}

static void
feed(struct feeder *f)
{
	size_t	 n;

	while (f->off < f->len) {
		if (deliver_pending(f->d) > DELIVER_HIGH_WATER) {
			f->paused = 1;
			return;
		}
		n = f->len - f->off;
		if (n > f->chunk)
			n = f->chunk;
		if (deliver_write(f->d, f->msg + f->off, n) == -1)
			f->write_failed = 1;
		f->off += n;
	}
	if (!f->ended) {
		f->ended = 1;
		deliver_end(f->d);
	}
}

static void
feeder_resume(void *arg)
{
	struct feeder	*f = arg;

	cr_assert(f->paused, "resumed without a pause");
	f->paused = 0;
	f->resumes++;
	feed(f);
}

static void
loop_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(int *)arg = 1;
	event_base_loopbreak(base);
}

/* Run the loop until *flag is set or the time is up. */
static void
loop_until(int *flag, int seconds)
{
	struct event	*ev;
	struct timeval	 tv = { seconds, 0 };
	int		 timed_out = 0;

	ev = evtimer_new(base, loop_timeout, &timed_out);
	evtimer_add(ev, &tv);
	while (!*flag && !timed_out)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(ev);
}

static void
envelope_init(struct envelope *env, char **rcpts, size_t nrcpts)
{
	memset(env, 0, sizeof(*env));
	env->session_id = 0x0123456789abcdefULL;
	strlcpy(env->sender, "alice@example.org", sizeof(env->sender));
	env->rcpts = rcpts;
	env->nrcpts = nrcpts;
	strlcpy(env->client_addr, "192.0.2.7", sizeof(env->client_addr));
	strlcpy(env->helo, "client.example.org", sizeof(env->helo));
}

/* begin, feed everything in chunks, wait for the answer */
static void
deliver_message(struct feeder *f, const struct envelope *env,
    const char *msg, size_t len, size_t chunk)
{
	memset(f, 0, sizeof(*f));
	f->msg = msg;
	f->len = len;
	f->chunk = chunk;
	f->d = deliver_begin(env, feeder_done, f);
	cr_assert_not_null(f->d, "deliver_begin failed");
	deliver_set_resume(f->d, feeder_resume);
	feed(f);
	loop_until(&f->called, 15);
	cr_assert_eq(f->called, 1, "done called %d times", f->called);
}

/*
 * Fixtures
 */

static void
common_setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init(1, LOG_MAIL);
	log_procinit("test");
	base = event_base_new();
	cr_assert_not_null(base);
	memset(&conf, 0, sizeof(conf));
	strlcpy(conf.hostname, "mx.test.example", sizeof(conf.hostname));
	conf.max_message_size = DEFAULT_MAX_MSG_SIZE;
}

static void
relays_gone(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	if (relay_active == 0) {
		*(int *)arg = 1;
		event_base_loopbreak(base);
	}
}

/* Every relay frees itself once its next hop is done with it. */
static void
common_teardown(void)
{
	struct event	*ev;
	struct timeval	 tv = { 0, 10000 };
	int		 gone = 0;

	ev = event_new(base, -1, EV_PERSIST, relays_gone, &gone);
	event_add(ev, &tv);
	loop_until(&gone, 5);
	event_free(ev);
	cr_assert_eq(relay_active, 0, "%d relay(s) still alive", relay_active);
	event_base_free(base);
	base = NULL;
}

static void
spool_setup(void)
{
	char	 path[128];

	common_setup();
	strlcpy(spooldir, "/tmp/test_deliver.XXXXXX", sizeof(spooldir));
	cr_assert_not_null(mkdtemp(spooldir));
	snprintf(path, sizeof(path), "%s/tmp", spooldir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/new", spooldir);
	cr_assert_eq(mkdir(path, 0700), 0);
	spool_fd = open(spooldir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_neq(spool_fd, -1);
	conf.deliver = DELIVER_SPOOL;
	strlcpy(conf.spool, spooldir, sizeof(conf.spool));
	cr_assert_eq(deliver_init(base, &conf, spool_fd), 0);
}

static void
remove_dir(const char *path)
{
	DIR		*d;
	struct dirent	*de;
	char		 p[512];

	if ((d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(path);
}

static void
spool_teardown(void)
{
	char	 path[128];

	snprintf(path, sizeof(path), "%s/tmp", spooldir);
	remove_dir(path);
	snprintf(path, sizeof(path), "%s/new", spooldir);
	remove_dir(path);
	rmdir(spooldir);
	close(spool_fd);
	common_teardown();
}

/* Entries in spooldir/sub; the first name in *first. */
static int
count_entries(const char *sub, char *first, size_t firstsz)
{
	DIR		*d;
	struct dirent	*de;
	char		 path[128];
	int		 n = 0;

	snprintf(path, sizeof(path), "%s/%s", spooldir, sub);
	d = opendir(path);
	cr_assert_not_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first != NULL)
			strlcpy(first, de->d_name, firstsz);
	}
	closedir(d);
	return n;
}

static char *
read_file(const char *path, size_t *lenp)
{
	FILE	*fp;
	char	*buf;
	long	 len;

	fp = fopen(path, "rb");
	cr_assert_not_null(fp, "%s: %s", path, strerror(errno));
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	rewind(fp);
	buf = malloc(len + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, len, fp), (size_t)len);
	buf[len] = '\0';
	fclose(fp);
	*lenp = len;
	return buf;
}

/*
 * spool
 */

static const char	 spool_msg[] =
    "Received: from client.example.org ([192.0.2.7])\r\n"
    "\tby mx.test.example (portcullis); Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    "Subject: test\r\n"
    "\r\n"
    ".a line with a dot\r\n"
    "binary \x01\x02\xff\r\n";

Test(spool, queued, .init = spool_setup, .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net",
			    "carol@example.net\r\nX-Forged: yes" };
	char		 id[64], path[256], expect[1024], *got;
	const char	*p;
	size_t		 len, i;
	struct stat	 sb;

	envelope_init(&env, rcpts, 2);
	strlcpy(env.auth_user, "alice", sizeof(env.auth_user));
	deliver_message(&f, &env, spool_msg, sizeof(spool_msg) - 1, 7);
	cr_assert_eq(f.code, 250, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.status, "2.0.0");
	cr_assert(strncmp(f.text, "Ok: queued as ", 14) == 0, "%s", f.text);
	p = f.text + 14;
	cr_assert_eq(strlen(p), 16, "id \"%s\"", p);
	for (i = 0; i < 16; i++)
		cr_assert(strchr("0123456789abcdef", p[i]) != NULL, "%s", p);

	cr_assert_eq(count_entries("tmp", NULL, 0), 0);
	cr_assert_eq(count_entries("new", id, sizeof(id)), 1);
	cr_assert_str_eq(id, p);
	snprintf(path, sizeof(path), "%s/new/%s", spooldir, id);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);

	snprintf(expect, sizeof(expect),
	    "Return-Path: <alice@example.org>\r\n"
	    "X-Portcullis-Envelope-To: <bob@example.net>\r\n"
	    "X-Portcullis-Envelope-To: <carol@example.net??X-Forged: yes>\r\n"
	    "X-Portcullis-Auth: alice\r\n"
	    "X-Portcullis-Client: 192.0.2.7\r\n"
	    "X-Portcullis-Session: 0123456789abcdef\r\n"
	    "%s", spool_msg);
	got = read_file(path, &len);
	cr_assert_eq(len, strlen(expect), "got %zu octets:\n%s", len, got);
	cr_assert(memcmp(got, expect, len) == 0, "got:\n%s", got);
	free(got);
}

Test(spool, null_sender_and_flags, .init = spool_setup,
    .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };
	char		 id[64], path[256], *got;
	size_t		 len;
	const char	*expect =
	    "Return-Path: <>\r\n"
	    "X-Portcullis-Envelope-To: <bob@example.net>\r\n"
	    "X-Portcullis-Client: 192.0.2.7\r\n"
	    "X-Portcullis-Session: 0123456789abcdef\r\n"
	    "X-Portcullis-Body: 8BITMIME\r\n"
	    "X-Portcullis-SMTPUTF8: yes\r\n";

	envelope_init(&env, rcpts, 1);
	env.sender[0] = '\0';
	env.body_8bit = env.smtputf8 = 1;
	deliver_message(&f, &env, "", 0, 1);
	cr_assert_eq(f.code, 250);
	cr_assert_eq(count_entries("new", id, sizeof(id)), 1);
	snprintf(path, sizeof(path), "%s/new/%s", spooldir, id);
	got = read_file(path, &len);
	cr_assert_str_eq(got, expect);
	free(got);
}

Test(spool, ids_differ, .init = spool_setup, .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f1, f2;
	char		*rcpts[] = { "bob@example.net" };

	envelope_init(&env, rcpts, 1);
	deliver_message(&f1, &env, spool_msg, sizeof(spool_msg) - 1, 100);
	deliver_message(&f2, &env, spool_msg, sizeof(spool_msg) - 1, 100);
	cr_assert_eq(f1.code, 250);
	cr_assert_eq(f2.code, 250);
	cr_assert_str_neq(f1.text, f2.text);
	cr_assert_eq(count_entries("new", NULL, 0), 2);
	cr_assert_eq(count_entries("tmp", NULL, 0), 0);
}

Test(spool, abort, .init = spool_setup, .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };
	struct delivery	*d;

	envelope_init(&env, rcpts, 1);
	memset(&f, 0, sizeof(f));
	d = deliver_begin(&env, feeder_done, &f);
	cr_assert_not_null(d);
	cr_assert_eq(count_entries("tmp", NULL, 0), 1);
	cr_assert_eq(deliver_write(d, spool_msg, sizeof(spool_msg) - 1), 0);
	deliver_abort(d);
	cr_assert_eq(f.called, 0);
	cr_assert_eq(count_entries("tmp", NULL, 0), 0);
	cr_assert_eq(count_entries("new", NULL, 0), 0);
}

/* A worker killed in DATA leaves tmp/<id>, never new/<id>. */
Test(spool, nothing_in_new_before_end, .init = spool_setup,
    .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };
	struct delivery	*d;

	envelope_init(&env, rcpts, 1);
	memset(&f, 0, sizeof(f));
	d = deliver_begin(&env, feeder_done, &f);
	cr_assert_not_null(d);
	cr_assert_eq(deliver_write(d, spool_msg, sizeof(spool_msg) - 1), 0);
	cr_assert_eq(count_entries("new", NULL, 0), 0);
	cr_assert_eq(count_entries("tmp", NULL, 0), 1);
	deliver_abort(d);
}

/* write(2) fails (EFBIG past RLIMIT_FSIZE): 451 and nothing kept. */
Test(spool, write_error, .init = spool_setup, .fini = spool_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };
	struct rlimit	 rl, old;
	char		*big;
	size_t		 len = 256 * 1024;

	envelope_init(&env, rcpts, 1);
	big = malloc(len);
	cr_assert_not_null(big);
	memset(big, 'x', len);
	signal(SIGXFSZ, SIG_IGN);
	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	rl = old;
	rl.rlim_cur = 64 * 1024;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
	deliver_message(&f, &env, big, len, 4096);
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	cr_assert(f.write_failed, "deliver_write never failed");
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.3.0");
	cr_assert_str_eq(f.text, "Local error in processing");
	cr_assert_eq(count_entries("tmp", NULL, 0), 0);
	cr_assert_eq(count_entries("new", NULL, 0), 0);
	free(big);
}

Test(spool, missing_directories)
{
	char	 dir[] = "/tmp/test_deliver_empty.XXXXXX";
	int	 fd;

	common_setup();
	cr_assert_not_null(mkdtemp(dir));
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_neq(fd, -1);
	conf.deliver = DELIVER_SPOOL;
	cr_assert_eq(deliver_init(base, &conf, fd), -1);
	close(fd);
	rmdir(dir);
	common_teardown();
}

/*
 * console
 */

Test(console, binary, .init = common_setup, .fini = common_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net", "carol@example.net" };
	char		 logpath[] = "/tmp/test_deliver_log.XXXXXX";
	char		*msg, *log;
	size_t		 len = 100 * 1024, i, loglen;
	int		 logfd, saved;

	conf.deliver = DELIVER_CONSOLE;
	cr_assert_eq(deliver_init(base, &conf, -1), 0);
	msg = malloc(len);
	cr_assert_not_null(msg);
	for (i = 0; i < 256; i++)
		msg[i] = (char)i;
	memcpy(msg + 256, "\r\nsecond line\r\n", 15);
	for (i = 271; i < len; i++)
		msg[i] = (i % 100 == 99) ? '\n' : 'a' + i % 26;

	logfd = mkstemp(logpath);
	cr_assert_neq(logfd, -1);
	fflush(stderr);
	saved = dup(2);
	dup2(logfd, 2);
	envelope_init(&env, rcpts, 2);
	deliver_message(&f, &env, msg, len, 1000);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(logfd);

	cr_assert_eq(f.code, 250);
	cr_assert_str_eq(f.status, "2.0.0");
	cr_assert_str_eq(f.text, "Ok: printed to the log");
	log = read_file(logpath, &loglen);
	unlink(logpath);
	cr_assert_not_null(strstr(log, "session 0123456789abcdef: console "
	    "delivery from <alice@example.org> to <bob@example.net>, "
	    "<carol@example.net>, 102400 octets"), "%.300s", log);
	cr_assert_not_null(strstr(log, "session 0123456789abcdef: | "
	    "\\x00\\x01\\x02"));
	cr_assert_not_null(strstr(log, "| second line\n"));
	cr_assert_not_null(strstr(log, "\\xff"));
	cr_assert_not_null(strstr(log, "[... 36864 more octets]"));
	for (i = 0; i < loglen; i++)
		cr_assert(log[i] == '\n' || (log[i] >= 0x20 && log[i] < 0x7f),
		    "unescaped octet 0x%02x in the log", (unsigned char)log[i]);
	free(log);
	free(msg);
}

Test(console, abort, .init = common_setup, .fini = common_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };
	struct delivery	*d;

	conf.deliver = DELIVER_CONSOLE;
	cr_assert_eq(deliver_init(base, &conf, -1), 0);
	envelope_init(&env, rcpts, 1);
	memset(&f, 0, sizeof(f));
	d = deliver_begin(&env, feeder_done, &f);
	cr_assert_not_null(d);
	deliver_write(d, "x\r\n", 3);
	deliver_abort(d);
	cr_assert_eq(f.called, 0);
}

/*
 * relay: the fake next hop
 */

#define HOP_MAX_RCPTS	4

struct hop_script {
	int		 lmtp;
	int		 tls;		/* offer STARTTLS */
	int		 silent;	/* accept, then say nothing */
	const char	*greeting;
	const char	*ehlo;
	const char	*starttls;
	const char	*mail;
	const char	*rcpt[HOP_MAX_RCPTS];
	const char	*data;
	const char	*dot[HOP_MAX_RCPTS];
};

struct hop {
	pid_t		 pid;
	int		 port;
	int		 pipe_fd;
	char		*transcript;
	size_t		 len;
	int		 eof;
};

struct hop_conn {
	int		 fd;
	SSL		*ssl;
	char		*buf;		/* the transcript */
	size_t		 len;
	size_t		 size;
	char		 in[8192];
	size_t		 inlen;
	int		 out_fd;
};

static void
hop_write(struct hop_conn *c, const char *s)
{
	size_t	 len = strlen(s);
	ssize_t	 n;

	while (len > 0) {
		n = c->ssl != NULL ? SSL_write(c->ssl, s, (int)len) :
		    write(c->fd, s, len);
		if (n <= 0)
			_exit(3);
		s += n;
		len -= n;
	}
}

/* One line with its CR LF into line; 0 at EOF. */
static int
hop_readline(struct hop_conn *c, char *line, size_t size)
{
	char	*nl;
	size_t	 n;
	ssize_t	 r;

	for (;;) {
		if ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
			n = nl + 1 - c->in;
			if (n >= size)
				_exit(4);
			memcpy(line, c->in, n);
			line[n] = '\0';
			memmove(c->in, c->in + n, c->inlen - n);
			c->inlen -= n;
			if (c->len + n > c->size) {
				c->size = (c->len + n) * 2;
				if ((c->buf = realloc(c->buf, c->size)) ==
				    NULL)
					_exit(5);
			}
			memcpy(c->buf + c->len, line, n);
			c->len += n;
			return 1;
		}
		if (c->inlen == sizeof(c->in))
			_exit(6);
		r = c->ssl != NULL ? SSL_read(c->ssl, c->in + c->inlen,
		    (int)(sizeof(c->in) - c->inlen)) :
		    read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
		if (r <= 0)
			return 0;
		c->inlen += r;
	}
}

/* Hand the transcript to the test, once. */
static void
hop_flush(struct hop_conn *c)
{
	size_t	 off = 0;
	ssize_t	 n;

	if (c->out_fd == -1)
		return;
	while (off < c->len) {
		if ((n = write(c->out_fd, c->buf + off, c->len - off)) <= 0)
			_exit(7);
		off += n;
	}
	close(c->out_fd);
	c->out_fd = -1;
}

static SSL_CTX *
hop_tls_ctx(void)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*pkey;
	X509		*x;
	X509_NAME	*name;

	if ((pkey = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		_exit(10);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"hop.test", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (X509_sign(x, pkey, EVP_sha256()) == 0)
		_exit(11);
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, pkey) != 1)
		_exit(12);
	return ctx;
}

static void
hop_serve(const struct hop_script *sc, int fd, int out_fd)
{
	struct hop_conn	 c;
	char		 line[8192], reply[512];
	size_t		 nrcpt = 0, accepted = 0, i;
	const char	*rp;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.out_fd = out_fd;
	if (sc->silent) {
		while (hop_readline(&c, line, sizeof(line)))
			;
		hop_flush(&c);
		return;
	}
	hop_write(&c, sc->greeting != NULL ? sc->greeting :
	    "220 hop.test ESMTP fake\r\n");
	while (hop_readline(&c, line, sizeof(line))) {
		if (strncasecmp(line, "EHLO ", 5) == 0 ||
		    strncasecmp(line, "LHLO ", 5) == 0) {
			if (sc->ehlo != NULL)
				rp = sc->ehlo;
			else if (sc->tls && c.ssl == NULL)
				rp = "250-hop.test\r\n250-8BITMIME\r\n"
				    "250-STARTTLS\r\n250 SMTPUTF8\r\n";
			else
				rp = "250-hop.test\r\n250-PIPELINING\r\n"
				    "250-8BITMIME\r\n250 SMTPUTF8\r\n";
			hop_write(&c, rp);
		} else if (strcasecmp(line, "STARTTLS\r\n") == 0) {
			hop_write(&c, sc->starttls != NULL ? sc->starttls :
			    "220 2.0.0 go ahead\r\n");
			c.ssl = SSL_new(hop_tls_ctx());
			SSL_set_fd(c.ssl, fd);
			if (SSL_accept(c.ssl) != 1) {
				SSL_free(c.ssl);
				c.ssl = NULL;
				break;
			}
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			hop_write(&c, sc->mail != NULL ? sc->mail :
			    "250 2.1.0 Ok\r\n");
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
			rp = nrcpt < HOP_MAX_RCPTS && sc->rcpt[nrcpt] != NULL ?
			    sc->rcpt[nrcpt] : "250 2.1.5 Ok\r\n";
			nrcpt++;
			if (rp[0] == '2')
				accepted++;
			hop_write(&c, rp);
		} else if (strcasecmp(line, "DATA\r\n") == 0) {
			rp = sc->data != NULL ? sc->data : "354 go ahead\r\n";
			hop_write(&c, rp);
			if (rp[0] != '3')
				continue;
			while (hop_readline(&c, line, sizeof(line)) &&
			    strcmp(line, ".\r\n") != 0)
				;
			for (i = 0; i < (sc->lmtp ? accepted : 1); i++) {
				if (i < HOP_MAX_RCPTS && sc->dot[i] != NULL)
					rp = sc->dot[i];
				else {
					snprintf(reply, sizeof(reply),
					    "250 2.0.0 Ok: queued as FAKE%zu"
					    "\r\n", i);
					rp = reply;
				}
				hop_write(&c, rp);
			}
			hop_flush(&c);
		} else if (strcasecmp(line, "QUIT\r\n") == 0) {
			hop_write(&c, "221 2.0.0 Bye\r\n");
			break;
		} else if (strcasecmp(line, "RSET\r\n") == 0)
			hop_write(&c, "250 2.0.0 Ok\r\n");
		else
			hop_write(&c, "500 5.5.1 what?\r\n");
	}
	hop_flush(&c);
}

static void
hop_start(struct hop *h, const struct hop_script *sc)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	int			 lfd, fd, p[2];

	memset(h, 0, sizeof(*h));
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_neq(lfd, -1);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	cr_assert_eq(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);
	h->port = ntohs(sin.sin_port);
	cr_assert_eq(pipe(p), 0);
	h->pid = fork();
	cr_assert_neq(h->pid, -1);
	if (h->pid == 0) {
		close(p[0]);
		alarm(15);
		if ((fd = accept(lfd, NULL, NULL)) == -1)
			_exit(2);
		close(lfd);
		hop_serve(sc, fd, p[1]);
		close(fd);
		_exit(0);
	}
	close(lfd);
	close(p[1]);
	h->pipe_fd = p[0];
}

static void
hop_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hop	*h = arg;
	char		 buf[65536];
	ssize_t		 n;

	(void)what;
	if ((n = read(fd, buf, sizeof(buf))) <= 0) {
		h->eof = 1;
		return;
	}
	h->transcript = realloc(h->transcript, h->len + n + 1);
	cr_assert_not_null(h->transcript);
	memcpy(h->transcript + h->len, buf, n);
	h->len += n;
	h->transcript[h->len] = '\0';
}

/* Collect the transcript, running the loop meanwhile; reap the child. */
static void
hop_finish(struct hop *h)
{
	struct event	*ev;
	int		 status;

	ev = event_new(base, h->pipe_fd, EV_READ | EV_PERSIST, hop_read_cb,
	    h);
	event_add(ev, NULL);
	loop_until(&h->eof, 10);
	event_free(ev);
	close(h->pipe_fd);
	cr_assert(h->eof, "the next hop did not finish");
	if (h->transcript == NULL)
		h->transcript = strdup("");
	/* give the relay a moment to see QUIT through, then reap */
	kill(h->pid, SIGTERM);
	cr_assert_eq(waitpid(h->pid, &status, 0), h->pid);
}

static void
relay_setup_url(const char *scheme, int port)
{
	snprintf(conf.relay_url, sizeof(conf.relay_url), "%s://127.0.0.1:%d",
	    scheme, port);
	conf.deliver = DELIVER_RELAY;
	cr_assert_eq(deliver_init(base, &conf, -1), 0);
}

static void
assert_printable(const char *s)
{
	for (; *s != '\0'; s++)
		cr_assert(*s >= 0x20 && *s < 0x7f, "octet 0x%02x in reply",
		    (unsigned char)*s);
}

static const char	 relay_msg[] =
    "Received: from client.example.org\r\n"
    "Subject: dots\r\n"
    "\r\n"
    ".leading dot\r\n"
    "..two dots\r\n"
    "middle . dot\r\n"
    ".\r\n"
    "last line\r\n";

static const char	 relay_stuffed[] =
    "DATA\r\n"
    "Received: from client.example.org\r\n"
    "Subject: dots\r\n"
    "\r\n"
    "..leading dot\r\n"
    "...two dots\r\n"
    "middle . dot\r\n"
    "..\r\n"
    "last line\r\n"
    ".\r\n";

Test(relay, smtp_ok, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net",
				    "carol@example.net" };
	size_t			 chunk;

	for (chunk = 1; chunk <= 4096; chunk *= 64) {
		hop_start(&h, &sc);
		relay_setup_url("smtp", h.port);
		envelope_init(&env, rcpts, 2);
		env.body_8bit = 1;
		deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1,
		    chunk);
		cr_assert_eq(f.code, 250, "%d %s %s", f.code, f.status,
		    f.text);
		cr_assert_str_eq(f.status, "2.0.0");
		cr_assert_str_eq(f.text, "Ok: relayed (Ok: queued as FAKE0)");
		hop_finish(&h);
		cr_assert_str_eq(h.transcript,
		    "EHLO mx.test.example\r\n"
		    "MAIL FROM:<alice@example.org> BODY=8BITMIME\r\n"
		    "RCPT TO:<bob@example.net>\r\n"
		    "RCPT TO:<carol@example.net>\r\n"
		    "DATA\r\n"
		    "Received: from client.example.org\r\n"
		    "Subject: dots\r\n"
		    "\r\n"
		    "..leading dot\r\n"
		    "...two dots\r\n"
		    "middle . dot\r\n"
		    "..\r\n"
		    "last line\r\n"
		    ".\r\n");
		free(h.transcript);
	}
}

Test(relay, rcpt_refused, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net",
				    "nobody@example.net" };

	sc.rcpt[1] = "550-5.1.1 <nobody@example.net>: no\x01such user\r\n"
	    "550 5.1.1 \xc3\xa9 go away\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 2);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 5);
	cr_assert_eq(f.code, 554, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.status, "5.1.1");
	cr_assert_str_eq(f.text, "Next hop refused: <nobody@example.net>: "
	    "no?such user ?? go away");
	assert_printable(f.text);
	hop_finish(&h);
	cr_assert_null(strstr(h.transcript, "DATA"), "%s", h.transcript);
	free(h.transcript);
}

Test(relay, data_end_tempfail, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	sc.dot[0] = "451 4.3.0 Try again later\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.status, "4.3.0");
	cr_assert_str_eq(f.text,
	    "Next hop temporarily refused: Try again later");
	hop_finish(&h);
	cr_assert_not_null(strstr(h.transcript, relay_stuffed));
	free(h.transcript);
}

Test(relay, greeting_refused, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	sc.greeting = "421 busy, no enhanced code\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.0.0");
	cr_assert_str_eq(f.text,
	    "Next hop temporarily refused: busy, no enhanced code");
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, unreachable, .init = common_setup, .fini = common_teardown)
{
	struct sockaddr_in	 sin;
	socklen_t		 len = sizeof(sin);
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };
	int			 fd;

	/* a port that was free a moment ago: nothing listens there */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	relay_setup_url("smtp", ntohs(sin.sin_port));
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.4.1");
	cr_assert_str_eq(f.text, "Next hop unreachable");
}

Test(relay, reply_timeout, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	sc.silent = 1;
	relay_reply_timeout = 1;
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.4.1");
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, not_smtp, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	sc.greeting = "HTTP/1.1 400 Bad Request\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.5.0");
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, lmtp_two_ok, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net",
				    "carol@example.net" };

	sc.lmtp = 1;
	hop_start(&h, &sc);
	relay_setup_url("lmtp", h.port);
	envelope_init(&env, rcpts, 2);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 10);
	cr_assert_eq(f.code, 250, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.text, "Ok: relayed (Ok: queued as FAKE0)");
	hop_finish(&h);
	cr_assert(strncmp(h.transcript, "LHLO mx.test.example\r\n", 22) == 0,
	    "%s", h.transcript);
	cr_assert_not_null(strstr(h.transcript, relay_stuffed));
	free(h.transcript);
}

Test(relay, lmtp_one_refused, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net",
				    "carol@example.net" };

	sc.lmtp = 1;
	sc.dot[1] = "550 5.2.2 <carol@example.net> mailbox full\r\n";
	hop_start(&h, &sc);
	relay_setup_url("lmtp", h.port);
	envelope_init(&env, rcpts, 2);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 10);
	cr_assert_eq(f.code, 554, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.status, "5.2.2");
	cr_assert_str_eq(f.text,
	    "Next hop refused: <carol@example.net> mailbox full");
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, lmtp_temp_wins, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "a@example.net", "b@example.net",
				    "c@example.net" };

	sc.lmtp = 1;
	sc.dot[0] = "550 5.1.1 gone\r\n";
	sc.dot[2] = "452 4.2.2 over quota\r\n";
	hop_start(&h, &sc);
	relay_setup_url("lmtp", h.port);
	envelope_init(&env, rcpts, 3);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 10);
	cr_assert_eq(f.code, 451, "%d %s %s", f.code, f.status, f.text);
	cr_assert_str_eq(f.status, "4.2.2");
	hop_finish(&h);
	free(h.transcript);
}

/* Bigger than the high-water mark: the session must pause and resume. */
Test(relay, flow_control, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };
	char			*msg, *expect, *got;
	size_t			 len = 40000 * 80, i, n;

	msg = malloc(len);
	expect = malloc(2 * len);
	cr_assert(msg != NULL && expect != NULL);
	for (i = 0; i < len; i++) {
		if (i % 80 == 78)
			msg[i] = '\r';
		else if (i % 80 == 79)
			msg[i] = '\n';
		else if (i % 800 == 0)
			msg[i] = '.';
		else
			msg[i] = 'A' + (i / 80) % 26;
	}
	n = 0;
	for (i = 0; i < len; i++) {
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
			expect[n++] = '.';
		expect[n++] = msg[i];
	}
	/* ends in CR LF, else the relay must add one before the dot */
	memcpy(expect + n, ".\r\n", 4);
	n += 3;

	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, msg, len, 65536);
	cr_assert_eq(f.code, 250, "%d %s %s", f.code, f.status, f.text);
	cr_assert_geq(f.resumes, 1, "never paused");
	hop_finish(&h);
	got = strstr(h.transcript, "DATA\r\n");
	cr_assert_not_null(got);
	got += 6;
	cr_assert_eq(strlen(got), n, "got %zu octets, want %zu", strlen(got),
	    n);
	cr_assert(memcmp(got, expect, n) == 0);
	free(h.transcript);
	free(msg);
	free(expect);
}

Test(relay, smtputf8, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "j\xc3\xb6rg@example.net" };

	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	env.smtputf8 = 1;
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 250);
	hop_finish(&h);
	cr_assert_not_null(strstr(h.transcript,
	    "MAIL FROM:<alice@example.org> SMTPUTF8\r\n"
	    "RCPT TO:<j\xc3\xb6rg@example.net>\r\n"), "%s", h.transcript);
	free(h.transcript);
}

/* RFC 6531 3.4: a UTF-8 address cannot go to a hop without SMTPUTF8. */
Test(relay, smtputf8_missing, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "j\xc3\xb6rg@example.net" };

	sc.ehlo = "250-hop.test\r\n250 8BITMIME\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	env.smtputf8 = 1;
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 554);
	cr_assert_str_eq(f.status, "5.6.7");
	hop_finish(&h);
	cr_assert_null(strstr(h.transcript, "MAIL"));
	free(h.transcript);
}

/* The engine ends every message with CR LF; if not, the relay does. */
Test(relay, no_final_crlf, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, ".abc", 4, 1);
	cr_assert_eq(f.code, 250);
	hop_finish(&h);
	cr_assert_not_null(strstr(h.transcript, "DATA\r\n..abc\r\n.\r\n"),
	    "%s", h.transcript);
	free(h.transcript);
}

/* A refusal while the session is paused must wake it. */
Test(relay, refused_while_paused, .init = common_setup,
    .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };
	char			*msg;
	size_t			 len = 1024 * 1024;

	msg = malloc(len);
	cr_assert_not_null(msg);
	memset(msg, 'x', len);
	sc.mail = "553 5.7.1 sender rejected\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, msg, len, 65536);
	cr_assert_eq(f.code, 554);
	cr_assert_str_eq(f.status, "5.7.1");
	cr_assert_eq(f.resumes, 1);
	cr_assert(f.write_failed);
	hop_finish(&h);
	free(h.transcript);
	free(msg);
}

Test(relay, abort_mid_data, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };
	struct delivery		*d;
	int			 never = 0;

	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	memset(&f, 0, sizeof(f));
	d = deliver_begin(&env, feeder_done, &f);
	cr_assert_not_null(d);
	cr_assert_eq(deliver_write(d, "Subject: x\r\n\r\nbody\r\n", 20), 0);
	loop_until(&never, 1);		/* let it reach DATA */
	deliver_abort(d);
	hop_finish(&h);
	cr_assert_eq(f.called, 0);
	cr_assert_not_null(strstr(h.transcript, "DATA\r\n"));
	cr_assert_null(strstr(h.transcript, "\r\n.\r\n"));
	free(h.transcript);
}

/* deliver_abort() between deliver_end() and the answer. */
Test(relay, abort_after_end, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };
	struct delivery		*d;
	int			 never = 0;

	sc.silent = 1;
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	memset(&f, 0, sizeof(f));
	d = deliver_begin(&env, feeder_done, &f);
	cr_assert_not_null(d);
	deliver_write(d, "x\r\n", 3);
	deliver_end(d);
	loop_until(&never, 1);
	deliver_abort(d);
	loop_until(&never, 1);
	cr_assert_eq(f.called, 0);
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, starttls, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	sc.tls = 1;
	conf.relay_tls = 1;
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 3);
	cr_assert_eq(f.code, 250, "%d %s %s", f.code, f.status, f.text);
	hop_finish(&h);
	cr_assert(strncmp(h.transcript, "EHLO mx.test.example\r\n"
	    "STARTTLS\r\nEHLO mx.test.example\r\nMAIL FROM:", 56) == 0,
	    "%s", h.transcript);
	cr_assert_not_null(strstr(h.transcript, relay_stuffed));
	free(h.transcript);
}

Test(relay, starttls_missing, .init = common_setup, .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	conf.relay_tls = 1;
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.7.0");
	hop_finish(&h);
	cr_assert_null(strstr(h.transcript, "MAIL"));
	free(h.transcript);
}

/* STARTTLS response injection (CVE-2011-0411 and kin). */
Test(relay, starttls_injection, .init = common_setup,
    .fini = common_teardown)
{
	struct hop_script	 sc = { 0 };
	struct hop		 h;
	struct envelope		 env;
	struct feeder		 f;
	char			*rcpts[] = { "bob@example.net" };

	conf.relay_tls = 1;
	sc.tls = 1;
	sc.starttls = "220 2.0.0 go ahead\r\n250 2.1.0 forged\r\n";
	hop_start(&h, &sc);
	relay_setup_url("smtp", h.port);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, relay_msg, sizeof(relay_msg) - 1, 64);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.5.0");
	hop_finish(&h);
	free(h.transcript);
}

Test(relay, numeric_host_only, .init = common_setup, .fini = common_teardown)
{
	struct envelope	 env;
	char		*rcpts[] = { "bob@example.net" };

	strlcpy(conf.relay_url, "smtp://mx.example.org:25",
	    sizeof(conf.relay_url));
	conf.deliver = DELIVER_RELAY;
	cr_assert_eq(deliver_init(base, &conf, -1), 0);
	envelope_init(&env, rcpts, 1);
	cr_assert_null(deliver_begin(&env, feeder_done, NULL));
}

Test(relay, ipv6_url, .init = common_setup, .fini = common_teardown)
{
	struct envelope	 env;
	struct feeder	 f;
	char		*rcpts[] = { "bob@example.net" };

	strlcpy(conf.relay_url, "lmtp://[::1]:1", sizeof(conf.relay_url));
	conf.deliver = DELIVER_RELAY;
	cr_assert_eq(deliver_init(base, &conf, -1), 0);
	envelope_init(&env, rcpts, 1);
	deliver_message(&f, &env, "x\r\n", 3, 3);
	cr_assert_eq(f.code, 451);
	cr_assert_str_eq(f.status, "4.4.1");
}
