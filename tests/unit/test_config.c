/*
 * test_config.c -- unit tests of the configuration parser (parse.y)
 * and of config.c.
 *
 * Fixtures live in $PORTCULLIS_TESTDIR/conf (default tests/unit/conf,
 * relative to the repository root, the runner's working directory):
 * good-*.conf must parse to a known struct, bad-*.conf hold one fault
 * each, and every error is checked to the letter, line number
 * included.  Short cases are written to a temporary file instead.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "config.h"
#include "log.h"

static void
setup(void)
{
	/* Errors go to stderr, not to the machine's syslog. */
	log_init(1, LOG_MAIL);
}

TestSuite(config, .init = setup);

static const char *
testdir(void)
{
	const char	*dir = getenv("PORTCULLIS_TESTDIR");

	return dir != NULL && *dir != '\0' ? dir : "tests/unit";
}

static void
fixture(char *buf, size_t size, const char *name)
{
	int	 len;

	len = snprintf(buf, size, "%s/conf/%s", testdir(), name);
	cr_assert(len > 0 && (size_t)len < size);
}

static void
expect_error_in(const char *name, const char *errfile, int line,
    const char *msg)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], where[PATH_MAX];
	char			 want[PATH_MAX + 1024];

	fixture(path, sizeof(path), name);
	fixture(where, sizeof(where), errfile);
	conf = parse_config(path);
	cr_assert_null(conf, "%s parsed, but should not", path);
	(void)snprintf(want, sizeof(want), "%s:%d: %s", where, line, msg);
	cr_assert_str_eq(config_errmsg(), want);
}

static void
expect_error(const char *name, int line, const char *msg)
{
	expect_error_in(name, name, line, msg);
}

/* Parses text from a temporary file; its name is left in path. */
static struct portcullis_conf *
parse_text(const char *text, char *path, size_t size)
{
	struct portcullis_conf	*conf;
	size_t			 len = strlen(text);
	int			 fd;

	cr_assert((size_t)snprintf(path, size,
	    "/tmp/portcullis-test-conf-XXXXXX") < size);
	cr_assert((fd = mkstemp(path)) != -1, "mkstemp: %s",
	    strerror(errno));
	cr_assert(write(fd, text, len) == (ssize_t)len);
	close(fd);
	conf = parse_config(path);
	unlink(path);
	return conf;
}

static struct portcullis_conf *
parse_ok(const char *text)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX];

	conf = parse_text(text, path, sizeof(path));
	cr_assert_not_null(conf, "should parse, got: %s", config_errmsg());
	cr_assert_str_eq(config_errmsg(), "");
	return conf;
}

/* The first error of text, with its line: "LINE: message". */
static void
expect_text_error(const char *text, int line, const char *msg)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], want[PATH_MAX + 1024];

	conf = parse_text(text, path, sizeof(path));
	cr_assert_null(conf, "should not parse: %s", text);
	(void)snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	cr_assert_str_eq(config_errmsg(), want);
}

static struct listener *
nth_listener(struct portcullis_conf *conf, int n)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		if (n-- == 0)
			return l;
	cr_assert_fail("no listener %d", n);
	return NULL;
}

static int
count_listeners(struct portcullis_conf *conf)
{
	struct listener	*l;
	int		 n = 0;

	TAILQ_FOREACH(l, &conf->listeners, entry)
		n++;
	return n;
}

static void
assert_listener(struct listener *l, int family, const char *address,
    int port, const char *name, uint32_t flags, const char *pki)
{
	cr_assert_eq(l->ss.ss_family, family, "%s: family", name);
	cr_assert_eq(l->sslen, family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	cr_assert_str_eq(listener_address(l), address);
	cr_assert_eq(listener_port(l), port, "%s: port %d", name,
	    listener_port(l));
	cr_assert_str_eq(l->name, name);
	cr_assert_eq(l->flags, flags, "%s: flags %#x", name, l->flags);
	cr_assert_str_eq(l->pki, pki);
	cr_assert_eq(l->fd, -1);
}

Test(config, good_all)
{
	struct portcullis_conf	*conf;
	struct pki		*p;
	struct checker_conf	*c;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-all.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	cr_assert_str_eq(config_errmsg(), "");

	cr_assert_str_eq(conf->hostname, "mx.example.org");
	cr_assert_str_eq(conf->user, "nobody");
	cr_assert_str_eq(conf->auth_user, "root");
	cr_assert_str_eq(conf->chroot, "/var/empty/portcullis");
	cr_assert_str_eq(conf->spool, "/var/spool/portcullis-test");
	cr_assert_eq(conf->workers, 4);
	cr_assert_eq(conf->grace_period, 120);
	cr_assert_eq(conf->max_message_size, 50ULL * 1024 * 1024);
	cr_assert_eq(conf->deliver, DELIVER_RELAY);
	cr_assert_str_eq(conf->relay_url, "lmtp://127.0.0.1:24");
	cr_assert_eq(conf->failure_delay, 1500);

	cr_assert_eq(count_listeners(conf), 5);
	assert_listener(nth_listener(conf, 0), AF_INET, "127.0.0.1", 587,
	    "127.0.0.1:587",
	    LISTEN_STARTTLS | LISTEN_TLS_REQUIRE | LISTEN_AUTH_REQUIRE,
	    "mx.example.org");
	assert_listener(nth_listener(conf, 1), AF_INET6, "::1", 587, "sub6",
	    LISTEN_STARTTLS | LISTEN_AUTH_OPTIONAL, "other.example.org");
	assert_listener(nth_listener(conf, 2), AF_INET, "127.0.0.1", 465,
	    "127.0.0.1:465", LISTEN_SMTPS | LISTEN_AUTH_REQUIRE,
	    "mx.example.org");
	assert_listener(nth_listener(conf, 3), AF_INET, "0.0.0.0", 25,
	    "0.0.0.0:25", 0, "");
	assert_listener(nth_listener(conf, 4), AF_INET, "0.0.0.0", 2525,
	    "plain", 0, "");

	p = TAILQ_FIRST(&conf->pkis);
	cr_assert_not_null(p);
	cr_assert_str_eq(p->name, "mx.example.org");
	cr_assert_str_eq(p->cert_file, "/etc/ssl/mx.crt");
	cr_assert_str_eq(p->key_file, "/etc/ssl/private/mx.key");
	p = TAILQ_NEXT(p, entry);
	cr_assert_not_null(p);
	cr_assert_str_eq(p->name, "other.example.org");
	cr_assert_str_eq(p->cert_file, "/etc/ssl/other.crt");
	cr_assert_str_eq(p->key_file, "/etc/ssl/private/other.key");
	cr_assert_null(TAILQ_NEXT(p, entry));

	c = TAILQ_FIRST(&conf->checkers);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->name, "local");
	cr_assert_eq(c->type, CHECKER_LMDB);
	cr_assert_str_eq(c->path, "/var/db/portcullis-test");
	c = TAILQ_NEXT(c, entry);
	cr_assert_not_null(c);
	cr_assert_str_eq(c->name, "default");
	cr_assert_eq(c->type, CHECKER_LMDB);
	cr_assert_str_eq(c->path, PORTCULLIS_DB);
	cr_assert_null(TAILQ_NEXT(c, entry));

	config_free(conf);
}

Test(config, good_minimal_gets_defaults)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], host[CONF_HOST_MAX];

	fixture(path, sizeof(path), "good-minimal.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());

	memset(host, 0, sizeof(host));
	cr_assert(gethostname(host, sizeof(host) - 1) == 0);
	cr_assert_str_eq(conf->hostname, host);
	cr_assert_str_eq(conf->user, PORTCULLIS_USER);
	cr_assert_str_eq(conf->auth_user, PORTCULLIS_AUTH_USER);
	cr_assert_str_eq(conf->chroot, PORTCULLIS_CHROOT);
	cr_assert_str_eq(conf->spool, PORTCULLIS_SPOOL);
	cr_assert_eq(conf->workers, 0);
	cr_assert_eq(conf->grace_period, DEFAULT_GRACE_PERIOD);
	cr_assert_eq(conf->grace_period, 30);
	cr_assert_eq(conf->max_message_size, 35ULL * 1024 * 1024);
	cr_assert_eq(conf->deliver, DELIVER_SPOOL);
	cr_assert_str_eq(conf->relay_url, "");
	cr_assert_eq(conf->failure_delay, 2000);
	cr_assert(TAILQ_EMPTY(&conf->pkis));
	cr_assert(TAILQ_EMPTY(&conf->checkers));
	cr_assert_eq(count_listeners(conf), 1);
	assert_listener(nth_listener(conf, 0), AF_INET, "127.0.0.1", 2525,
	    "127.0.0.1:2525", 0, "");
	config_free(conf);
}

Test(config, new_empty_matches_minimal)
{
	struct portcullis_conf	*conf;

	conf = config_new_empty();
	cr_assert_not_null(conf);
	cr_assert_str_eq(conf->user, PORTCULLIS_USER);
	cr_assert_eq(conf->deliver, DELIVER_SPOOL);
	cr_assert_eq(conf->failure_delay, DEFAULT_FAILURE_DELAY);
	cr_assert(TAILQ_EMPTY(&conf->listeners));
	config_free(conf);
	config_free(NULL);
}

/* One fault per file, each on a line after the first. */

Test(config, bad_unknown_keyword)
{
	expect_error("bad-unknown-keyword.conf", 3,
	    "unknown keyword \"lisen\"");
}

Test(config, bad_port_zero)
{
	expect_error("bad-port-zero.conf", 3,
	    "port 0 out of range (1-65535)");
}

Test(config, bad_port_too_big)
{
	expect_error("bad-port-big.conf", 3,
	    "port 70000 out of range (1-65535)");
}

Test(config, bad_unterminated_string)
{
	expect_error("bad-unterminated.conf", 2, "unterminated quoted string");
}

Test(config, bad_duplicate_listener)
{
	expect_error("bad-dup-listener.conf", 3,
	    "duplicate listener on 127.0.0.1 port 587");
}

Test(config, bad_unknown_user)
{
	expect_error("bad-unknown-user.conf", 3,
	    "unknown user \"nosuchuser_pcx9\"");
}

Test(config, bad_missing_value)
{
	expect_error("bad-missing-value.conf", 3, "hostname: missing value");
}

Test(config, bad_missing_port)
{
	expect_error("bad-missing-port.conf", 2,
	    "listen: missing value after \"port\"");
}

Test(config, bad_tls_without_pki)
{
	expect_error("bad-tls-no-pki.conf", 3,
	    "listener \"127.0.0.1:587\": tls requires a pki");
}

Test(config, bad_unknown_pki)
{
	expect_error("bad-unknown-pki.conf", 2,
	    "listener \"127.0.0.1:587\": unknown pki \"nope.example.org\"");
}

Test(config, bad_tls_and_smtps)
{
	expect_error("bad-tls-smtps.conf", 3,
	    "listener \"127.0.0.1:465\": tls and smtps are mutually "
	    "exclusive");
}

Test(config, bad_duration)
{
	expect_error("bad-duration.conf", 3, "invalid duration \"5x\"");
}

Test(config, bad_size)
{
	expect_error("bad-size.conf", 3, "invalid size \"35X\"");
}

Test(config, bad_undefined_macro)
{
	expect_error("bad-undefined-macro.conf", 3,
	    "macro \"nowhere\" not defined");
}

Test(config, bad_include_missing)
{
	expect_error("bad-include-missing.conf", 3,
	    "include \"does-not-exist.conf\": No such file or directory");
}

Test(config, bad_error_in_included_file)
{
	expect_error_in("bad-include-error.conf", "bad-include-error-inc.conf",
	    3, "workers must be between 1 and 256");
}

Test(config, bad_relay_url)
{
	expect_error("bad-relay-url.conf", 3,
	    "invalid relay URL \"http://127.0.0.1:24\": want "
	    "smtp://host:port or lmtp://host:port");
}

Test(config, bad_duplicate_checker)
{
	expect_error("bad-dup-checker.conf", 5, "duplicate checker \"local\"");
}

Test(config, bad_checker_type)
{
	expect_error("bad-checker-type.conf", 4,
	    "unknown checker type \"ldap\"");
}

Test(config, bad_workers_zero)
{
	expect_error("bad-workers-zero.conf", 3,
	    "workers must be between 1 and 256");
}

Test(config, bad_no_listener)
{
	expect_error("bad-no-listener.conf", 4, "no listener configured");
}

Test(config, bad_duplicate_pki)
{
	expect_error("bad-dup-pki.conf", 3, "duplicate pki \"mx.example.org\"");
}

Test(config, bad_pki_without_key)
{
	expect_error("bad-pki-no-key.conf", 2,
	    "pki \"mx.example.org\": missing key");
}

Test(config, bad_auth_without_checker)
{
	expect_error("bad-auth-no-checker.conf", 3,
	    "listener \"127.0.0.1:587\": auth needs a checker in the auth "
	    "block");
}

/* Every error is logged; the first is the one kept. */
Test(config, bad_two_errors_logs_both, .init = cr_redirect_stderr)
{
	char	 path[PATH_MAX], want[3 * PATH_MAX];

	log_init(1, LOG_MAIL);
	expect_error("bad-two-errors.conf", 2,
	    "workers must be between 1 and 256");
	fixture(path, sizeof(path), "bad-two-errors.conf");
	(void)snprintf(want, sizeof(want),
	    "%s:2: workers must be between 1 and 256\n"
	    "%s:3: hostname: missing value\n", path, path);
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

Test(config, missing_file)
{
	char	 path[PATH_MAX], want[PATH_MAX + 64];

	fixture(path, sizeof(path), "no-such-file.conf");
	cr_assert_null(parse_config(path));
	(void)snprintf(want, sizeof(want), "%s: No such file or directory",
	    path);
	cr_assert_str_eq(config_errmsg(), want);
}

/* A copy of a good file with the given mode must be refused. */
static void
expect_refused(mode_t mode, const char *why)
{
	struct portcullis_conf	*conf;
	char			 src[PATH_MAX], path[PATH_MAX];
	char			 want[PATH_MAX + 128], buf[4096];
	ssize_t			 n;
	int			 in, out;

	fixture(src, sizeof(src), "good-minimal.conf");
	cr_assert((in = open(src, O_RDONLY)) != -1);
	(void)strlcpy(path, "/tmp/portcullis-test-perm-XXXXXX", sizeof(path));
	cr_assert((out = mkstemp(path)) != -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		cr_assert(write(out, buf, n) == n);
	close(in);
	cr_assert(fchmod(out, mode) == 0);
	close(out);

	conf = parse_config(path);
	unlink(path);
	config_free(conf);
	cr_assert_null(conf, "mode %o should be refused", (unsigned)mode);
	(void)snprintf(want, sizeof(want), "%s: refusing to read: %s", path,
	    why);
	cr_assert_str_eq(config_errmsg(), want);
}

Test(config, refuses_world_writable)
{
	expect_refused(0666, "group or world writable");
}

Test(config, refuses_group_writable)
{
	expect_refused(0620, "group or world writable");
}

Test(config, refuses_foreign_owner)
{
	struct passwd	*pw;
	char		 path[PATH_MAX], want[PATH_MAX + 128];
	int		 fd;

	if (getuid() != 0)
		cr_skip_test("only root can give a file away");
	cr_assert_not_null(pw = getpwnam("nobody"));
	(void)strlcpy(path, "/tmp/portcullis-test-owner-XXXXXX", sizeof(path));
	cr_assert((fd = mkstemp(path)) != -1);
	cr_assert(write(fd, "listen on 127.0.0.1 port 25\n", 28) == 28);
	cr_assert(fchown(fd, pw->pw_uid, pw->pw_gid) == 0);
	close(fd);
	cr_assert_null(parse_config(path));
	unlink(path);
	(void)snprintf(want, sizeof(want), "%s: refusing to read: not owned "
	    "by root or the current user", path);
	cr_assert_str_eq(config_errmsg(), want);
}

Test(config, accepts_private_mode)
{
	struct portcullis_conf	*conf;

	/* mkstemp makes 0600 files: parse_ok would fail on a refusal. */
	conf = parse_ok("listen on 127.0.0.1 port 25\n");
	config_free(conf);
}

/* Short cases, from temporary files. */

Test(config, sizes)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\nmax-message-size 4096\n");
	cr_assert_eq(conf->max_message_size, 4096);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\nmax-message-size 10K\n");
	cr_assert_eq(conf->max_message_size, 10 * 1024);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\nmax-message-size 2m\n");
	cr_assert_eq(conf->max_message_size, 2 * 1024 * 1024);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\nmax-message-size 4G\n");
	cr_assert_eq(conf->max_message_size, 4ULL * 1024 * 1024 * 1024);
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25\nmax-message-size 5G\n",
	    2, "max-message-size must be between 1 and 4G");
	expect_text_error("listen on 127.0.0.1 port 25\nmax-message-size 0\n",
	    2, "max-message-size must be between 1 and 4G");
	expect_text_error("listen on 127.0.0.1 port 25\nmax-message-size 1KB\n",
	    2, "invalid size \"1KB\"");
	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "max-message-size 99999999999999999999G\n", 2,
	    "invalid size \"99999999999999999999G\"");
}

Test(config, durations)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\ngrace-period 45\n"
	    "auth {\nfailure-delay 3\n}\n");
	cr_assert_eq(conf->grace_period, 45);
	cr_assert_eq(conf->failure_delay, 3000);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\ngrace-period 1h\n"
	    "auth { failure-delay 250ms }\n");
	cr_assert_eq(conf->grace_period, 3600);
	cr_assert_eq(conf->failure_delay, 250);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\ngrace-period 0s\n"
	    "grace-period 2000ms\nauth {\n\tfailure-delay 0\n}\n");
	cr_assert_eq(conf->grace_period, 2);
	cr_assert_eq(conf->failure_delay, 0);
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "grace-period 1500ms\n", 2,
	    "grace-period must be a whole number of seconds");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period 25h\n",
	    2, "grace-period must be between 0s and 24h");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period -1\n",
	    2, "invalid duration \"-1\"");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period 1d\n",
	    2, "invalid duration \"1d\"");
	expect_text_error("listen on 127.0.0.1 port 25\nauth {\n"
	    "failure-delay 2m\n}\n", 3,
	    "failure-delay must be between 0 and 60s");
}

Test(config, deliver_methods)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\ndeliver to console\n");
	cr_assert_eq(conf->deliver, DELIVER_CONSOLE);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\n"
	    "deliver to relay \"smtp://[::1]:10025\"\ndeliver to spool\n");
	cr_assert_eq(conf->deliver, DELIVER_SPOOL);
	cr_assert_str_eq(conf->relay_url, "");
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\n"
	    "deliver to relay \"smtp://relay.example.org:587\"\n");
	cr_assert_eq(conf->deliver, DELIVER_RELAY);
	cr_assert_str_eq(conf->relay_url, "smtp://relay.example.org:587");
	config_free(conf);
}

Test(config, bad_relay_urls)
{
	static const char *urls[] = {
		"smtp://host", "lmtp://:24", "smtp://h:0", "smtp://h:99999",
		"smtp://h:25/x", "smtp://[::1:25", "smtp://[zz]:25",
		"smtps://h:465", "smtp://a b:25", "",
	};
	char	 text[256], msg[256];
	size_t	 i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		(void)snprintf(text, sizeof(text), "listen on 127.0.0.1 port 25"
		    "\ndeliver to relay \"%s\"\n", urls[i]);
		(void)snprintf(msg, sizeof(msg), "invalid relay URL \"%s\": "
		    "want smtp://host:port or lmtp://host:port", urls[i]);
		expect_text_error(text, 2, msg);
	}
}

Test(config, listen_addresses)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on :: port 25\n"
	    "listen on 192.0.2.7 port 26\n"
	    "listen on \"*\" port 27\n");
	assert_listener(nth_listener(conf, 0), AF_INET6, "::", 25, "[::]:25",
	    0, "");
	assert_listener(nth_listener(conf, 1), AF_INET, "192.0.2.7", 26,
	    "192.0.2.7:26", 0, "");
	assert_listener(nth_listener(conf, 2), AF_INET, "0.0.0.0", 27,
	    "0.0.0.0:27", 0, "");
	config_free(conf);

	expect_text_error("# c\nlisten on mail.example.org port 25\n", 2,
	    "invalid listen address \"mail.example.org\"");
	expect_text_error("# c\nlisten on 127.1 port 25\n", 2,
	    "invalid listen address \"127.1\"");
	expect_text_error("# c\nlisten on 127.0.0.1 port nosuchservice\n", 2,
	    "unknown port \"nosuchservice\"");
	expect_text_error("listen on 127.0.0.1 port 25 name a\n"
	    "listen on 127.0.0.1 port 26 name a\n", 2,
	    "duplicate listener name \"a\"");
	expect_text_error("# c\nlisten on 127.0.0.1 port 25 name a name b\n",
	    2, "listen: name given twice");
	expect_text_error("# c\nlisten on 127.0.0.1 port 25 auth require "
	    "auth optional\n", 2, "listener \"127.0.0.1:25\": auth require "
	    "and auth optional are mutually exclusive");
	expect_text_error("# c\nlisten on 127.0.0.1 port 25 auth\n", 2,
	    "listen: missing value after \"auth\"");
}

Test(config, too_many_listeners)
{
	char	 text[64 * (CONF_LISTENERS_MAX + 1)], msg[64];
	size_t	 len = 0;
	int	 i;

	for (i = 0; i <= CONF_LISTENERS_MAX; i++)
		len += snprintf(text + len, sizeof(text) - len,
		    "listen on 127.0.0.1 port %d\n", 2000 + i);
	(void)snprintf(msg, sizeof(msg), "too many listeners (max %d)",
	    CONF_LISTENERS_MAX);
	expect_text_error(text, CONF_LISTENERS_MAX + 1, msg);
}

Test(config, too_many_checkers)
{
	char	 text[64 * (CONF_CHECKERS_MAX + 4)], msg[64];
	size_t	 len;
	int	 i;

	len = snprintf(text, sizeof(text), "listen on 127.0.0.1 port 25\n"
	    "auth {\n");
	for (i = 0; i <= CONF_CHECKERS_MAX; i++)
		len += snprintf(text + len, sizeof(text) - len,
		    "checker \"c%d\" lmdb\n", i);
	(void)snprintf(text + len, sizeof(text) - len, "}\n");
	(void)snprintf(msg, sizeof(msg), "too many checkers (max %d)",
	    CONF_CHECKERS_MAX);
	expect_text_error(text, CONF_CHECKERS_MAX + 3, msg);
}

Test(config, default_pki)
{
	struct portcullis_conf	*conf;

	/* The only pki, whatever its name. */
	conf = parse_ok("hostname \"a.example.org\"\n"
	    "listen on 127.0.0.1 port 465 smtps\n"
	    "pki \"b.example.org\" cert \"/c\" key \"/k\"\n");
	cr_assert_str_eq(nth_listener(conf, 0)->pki, "b.example.org");
	config_free(conf);

	/* Several: the one named as the host, declared after it all. */
	conf = parse_ok("listen on 127.0.0.1 port 587 tls\n"
	    "pki \"b.example.org\" cert \"/c\" key \"/k\"\n"
	    "pki \"a.example.org\" cert \"/c\" key \"/k\"\n"
	    "hostname \"a.example.org\"\n");
	cr_assert_str_eq(nth_listener(conf, 0)->pki, "a.example.org");
	config_free(conf);

	expect_text_error("hostname \"a.example.org\"\n"
	    "listen on 127.0.0.1 port 587 tls\n"
	    "pki \"b.example.org\" cert \"/c\" key \"/k\"\n"
	    "pki \"c.example.org\" cert \"/c\" key \"/k\"\n", 2,
	    "listener \"127.0.0.1:587\": several pkis and none named "
	    "\"a.example.org\": choose one with \"pki NAME\"");
	expect_text_error("pki \"b.example.org\" cert \"/c\" key \"/k\"\n"
	    "listen on 127.0.0.1 port 25 pki \"b.example.org\"\n", 2,
	    "listener \"127.0.0.1:25\": pki without tls or smtps");
	expect_text_error("# c\npki \"b.example.org\" key \"/k\"\n", 2,
	    "pki \"b.example.org\": missing cert");
	expect_text_error("# c\npki \"b\" cert \"/c\" cert \"/d\" key \"/k\"\n",
	    2, "pki \"b\": cert given twice");
	expect_text_error("# c\npki \"b\" cert \"c.pem\" key \"/k\"\n", 2,
	    "cert: \"c.pem\" is not an absolute path");
}

Test(config, values)
{
	expect_text_error("# c\nhostname \"mx example\"\n", 2,
	    "invalid hostname \"mx example\"");
	expect_text_error("# c\nhostname \"\"\n", 2, "invalid hostname \"\"");
	expect_text_error("# c\nchroot \"var/empty\"\n", 2,
	    "chroot: \"var/empty\" is not an absolute path");
	expect_text_error("# c\nspool \"\"\n", 2,
	    "spool: \"\" is not an absolute path");
	expect_text_error("# c\nuser \"abcdefghijabcdefghijabcdefghijabc\"\n",
	    2, "user: too long (max 32)");
	expect_text_error("# c\nworkers 257\n", 2,
	    "workers must be between 1 and 256");
	expect_text_error("# c\nworkers 99999999999999999999\n", 2,
	    "invalid number \"99999999999999999999\": too large");
	expect_text_error("# c\nauth {\nchecker \"x\" lmdb \"db\"\n}\n", 3,
	    "lmdb: \"db\" is not an absolute path");
}

Test(config, syntax_errors)
{
	expect_text_error("# c\nhostname \"a\" \"b\"\n", 2,
	    "syntax error near \"b\"");
	expect_text_error("# c\ndeliver to\n", 2,
	    "deliver: missing value after \"to\"");
	expect_text_error("# c\nauth {\n\tchekcer \"x\" lmdb\n}\n", 3,
	    "unknown keyword \"chekcer\"");
	expect_text_error("# c\nauth {\n\tfailure-delay\n}\n", 3,
	    "failure-delay: missing value");
	expect_text_error("listen on 127.0.0.1 port 25\nauth {\n"
	    "\tfailure-delay 2s\n", 3, "syntax error at end of file");
	expect_text_error("# c\nmy-macro = \"x\"\n", 2,
	    "invalid macro name \"my-macro\"");
	expect_text_error("# c\nhostname \"a\" ! \n", 2,
	    "syntax error near \"!\"");
}

Test(config, macros)
{
	struct portcullis_conf	*conf;

	/* Redefined, quoted, bare, and no expansion inside quotes. */
	conf = parse_ok("p = 2525\np_ = 25\nh = \"127.0.0.1\"\n"
	    "h = 127.0.0.2\n"
	    "listen on $h port $p name \"$h\"\n");
	assert_listener(nth_listener(conf, 0), AF_INET, "127.0.0.2", 2525,
	    "$h", 0, "");
	config_free(conf);

	/* A macro's value is read as it is, not expanded again. */
	expect_text_error("a = \"$a\"\n"
	    "listen on 127.0.0.1 port 25 name $a\n", 2,
	    "syntax error near \"$\"");
	/* A keyword cannot name a macro. */
	expect_text_error("# c\nport = 25\n", 2, "syntax error near \"port\"");
}

Test(config, last_line_without_newline)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("# c\nlisten on 127.0.0.1 port 25 # no newline");
	cr_assert_eq(count_listeners(conf), 1);
	config_free(conf);
	expect_text_error("# c\nhostname \"x", 2,
	    "unterminated quoted string");
	expect_text_error("# c\n\nworkers 1", 3, "no listener configured");
}

Test(config, include_loop)
{
	char	 path[PATH_MAX], text[PATH_MAX + 32], want[2 * PATH_MAX + 64];
	int	 fd;

	(void)strlcpy(path, "/tmp/portcullis-test-loop-XXXXXX", sizeof(path));
	cr_assert((fd = mkstemp(path)) != -1);
	(void)snprintf(text, sizeof(text), "# loops\ninclude \"%s\"\n", path);
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	cr_assert_null(parse_config(path));
	unlink(path);
	(void)snprintf(want, sizeof(want),
	    "%s:2: include \"%s\": nested too deeply", path, path);
	cr_assert_str_eq(config_errmsg(), want);
}

/* The parser's state does not leak from one parse into the next. */
Test(config, parse_twice)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "bad-unterminated.conf");
	cr_assert_null(parse_config(path));
	cr_assert_str_neq(config_errmsg(), "");
	fixture(path, sizeof(path), "good-all.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	cr_assert_str_eq(config_errmsg(), "");
	cr_assert_eq(count_listeners(conf), 5);
	config_free(conf);
}
