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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <openssl/ssl.h>

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

/* The local domains, in order, joined by spaces. */
static const char *
domains(struct portcullis_conf *conf)
{
	static char		 buf[4096];
	struct local_domain	*d;

	buf[0] = '\0';
	TAILQ_FOREACH(d, &conf->local_domains, entry) {
		if (buf[0] != '\0')
			(void)strlcat(buf, " ", sizeof(buf));
		(void)strlcat(buf, d->name, sizeof(buf));
	}
	return buf;
}

/* The trusted networks, in order, as "address/prefixlen" joined by spaces. */
static const char *
networks(struct portcullis_conf *conf)
{
	static char		 buf[4096];
	struct netaddr		*n;
	const void		*a;
	char			 addr[INET6_ADDRSTRLEN], one[INET6_ADDRSTRLEN + 8];

	buf[0] = '\0';
	TAILQ_FOREACH(n, &conf->trusted_networks, entry) {
		cr_assert(n->ss.ss_family == AF_INET ||
		    n->ss.ss_family == AF_INET6);
		if (n->ss.ss_family == AF_INET)
			a = &((struct sockaddr_in *)&n->ss)->sin_addr;
		else
			a = &((struct sockaddr_in6 *)&n->ss)->sin6_addr;
		cr_assert_not_null(inet_ntop(n->ss.ss_family, a, addr,
		    sizeof(addr)));
		(void)snprintf(one, sizeof(one), "%s/%d", addr, n->prefixlen);
		if (buf[0] != '\0')
			(void)strlcat(buf, " ", sizeof(buf));
		(void)strlcat(buf, one, sizeof(buf));
	}
	return buf;
}

/* The static users, in order, as "checker:name:password" joined by spaces. */
static const char *
static_users(struct portcullis_conf *conf)
{
	static char		 buf[4096];
	struct static_user	*u;

	buf[0] = '\0';
	TAILQ_FOREACH(u, &conf->static_users, entry) {
		if (buf[0] != '\0')
			(void)strlcat(buf, " ", sizeof(buf));
		(void)strlcat(buf, u->checker, sizeof(buf));
		(void)strlcat(buf, ":", sizeof(buf));
		(void)strlcat(buf, u->name, sizeof(buf));
		(void)strlcat(buf, ":", sizeof(buf));
		(void)strlcat(buf, u->password, sizeof(buf));
	}
	return buf;
}

static struct checker_conf *
nth_checker(struct portcullis_conf *conf, int n)
{
	struct checker_conf	*c;

	TAILQ_FOREACH(c, &conf->checkers, entry)
		if (n-- == 0)
			return c;
	cr_assert_fail("no checker %d", n);
	return NULL;
}

static void
assert_checker(struct checker_conf *c, const char *name,
    enum checker_type type, const char *path, enum chain_policy on_fail,
    enum chain_policy on_tempfail, uint32_t mechanisms)
{
	cr_assert_str_eq(c->name, name);
	cr_assert_eq(c->type, type, "%s: type %d", name, c->type);
	cr_assert_str_eq(c->path, path);
	cr_assert_eq(c->on_fail, on_fail, "%s: on-fail", name);
	cr_assert_eq(c->on_tempfail, on_tempfail, "%s: on-tempfail", name);
	cr_assert_eq(c->mechanisms, mechanisms, "%s: mechanisms %#x", name,
	    c->mechanisms);
}

/* Every authentication setting at its default. */
static void
assert_auth_defaults(struct portcullis_conf *conf)
{
	cr_assert_eq(conf->failure_delay, DEFAULT_FAILURE_DELAY);
	cr_assert_eq(conf->failure_delay, 2000);
	cr_assert_eq(conf->failure_delay_max, DEFAULT_FAILURE_DELAY_MAX);
	cr_assert_eq(conf->failure_delay_max, 15000);
	cr_assert_eq(conf->max_auth_failures, DEFAULT_MAX_AUTH_FAILURES);
	cr_assert_eq(conf->max_auth_failures, 3);
	cr_assert_eq(conf->penalty_prefix6, DEFAULT_PENALTY_PREFIX6);
	cr_assert_eq(conf->penalty_prefix6, 64);
	cr_assert(TAILQ_EMPTY(&conf->checkers));
	cr_assert(TAILQ_EMPTY(&conf->static_users));
	cr_assert(TAILQ_EMPTY(&conf->trusted_networks));
}

/* Every ESMTP setting at its default, as config.h has them. */
static void
assert_esmtp_defaults(struct portcullis_conf *conf)
{
	cr_assert_eq(conf->relay_tls, 0);
	cr_assert_eq(conf->timeout_command, DEFAULT_TIMEOUT_COMMAND);
	cr_assert_eq(conf->timeout_command, 300);
	cr_assert_eq(conf->timeout_data, DEFAULT_TIMEOUT_DATA);
	cr_assert_eq(conf->timeout_data, 180);
	cr_assert_eq(conf->timeout_session, DEFAULT_TIMEOUT_SESSION);
	cr_assert_eq(conf->timeout_session, 3600);
	cr_assert_eq(conf->max_recipients, DEFAULT_MAX_RECIPIENTS);
	cr_assert_eq(conf->max_recipients, 100);
	cr_assert_eq(conf->max_sessions, DEFAULT_MAX_SESSIONS);
	cr_assert_eq(conf->max_sessions_per_addr,
	    DEFAULT_MAX_SESSIONS_PER_ADDR);
	cr_assert_eq(conf->max_errors, DEFAULT_MAX_ERRORS);
	cr_assert_eq(conf->bare_newlines, BARE_NEWLINES_REJECT);
	cr_assert_eq(conf->early_talkers, EARLY_TALKERS_REJECT);
	cr_assert_eq(conf->sender_check, SENDER_CHECK_EXACT);
	cr_assert_eq(conf->tls_min_version, TLS1_2_VERSION);
	cr_assert_eq(conf->tls_min_version, 0x0303);
	cr_assert_str_eq(conf->tls_ciphers, "");
	cr_assert_eq(conf->tls_tickets, 1);
	cr_assert_eq(conf->tls_ticket_lifetime, 4 * 3600);
	cr_assert(TAILQ_EMPTY(&conf->local_domains));
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
	cr_assert_str_eq(conf->keys_user, "daemon");
	cr_assert_str_eq(conf->chroot, "/var/empty/portcullis");
	cr_assert_str_eq(conf->spool, "/var/spool/portcullis-test");
	cr_assert_str_eq(conf->control_socket,
	    "/var/run/portcullis-test.sock");
	cr_assert_eq(conf->workers, 4);
	cr_assert_eq(conf->key_processes, 3);
	cr_assert_eq(conf->grace_period, 120);
	cr_assert_eq(conf->max_message_size, 50ULL * 1024 * 1024);
	cr_assert_eq(conf->deliver, DELIVER_RELAY);
	cr_assert_str_eq(conf->relay_url, "lmtp://127.0.0.1:24");
	cr_assert_eq(conf->relay_tls, 1);
	cr_assert_eq(conf->failure_delay, 1500);

	cr_assert_str_eq(domains(conf), "example.org example.net "
	    "mail.example.com example.info");
	cr_assert_eq(conf->timeout_command, 120);
	cr_assert_eq(conf->timeout_data, 90);
	cr_assert_eq(conf->timeout_session, 7200);
	cr_assert_eq(conf->max_recipients, 50);
	cr_assert_eq(conf->max_sessions, 2000);
	cr_assert_eq(conf->max_sessions_per_addr, 8);
	cr_assert_eq(conf->max_errors, 5);
	cr_assert_eq(conf->bare_newlines, BARE_NEWLINES_NORMALIZE);
	cr_assert_eq(conf->early_talkers, EARLY_TALKERS_ALLOW);
	cr_assert_eq(conf->sender_check, SENDER_CHECK_DOMAIN);
	cr_assert_eq(conf->tls_min_version, TLS1_3_VERSION);
	cr_assert_eq(conf->tls_min_version, 0x0304);
	cr_assert_str_eq(conf->tls_ciphers, "HIGH:!aNULL:!MD5");
	cr_assert_eq(conf->tls_tickets, 0);
	cr_assert_eq(conf->tls_ticket_lifetime, 90 * 60);

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

	/* The checkers in their order, their options, their users. */
	assert_checker(nth_checker(conf, 0), "local", CHECKER_LMDB,
	    "/var/db/portcullis-test", CHAIN_STOP, CHAIN_CONTINUE, SASL_PLAIN);
	assert_checker(nth_checker(conf, 1), "default", CHECKER_LMDB,
	    PORTCULLIS_DB, CHAIN_CONTINUE, CHAIN_CONTINUE, 0);
	c = nth_checker(conf, 2);
	assert_checker(c, "demo", CHECKER_STATIC, "", CHAIN_CONTINUE,
	    CHAIN_STOP, SASL_PLAIN | SASL_LOGIN);
	cr_assert_null(TAILQ_NEXT(c, entry));
	cr_assert_str_eq(static_users(conf),
	    "demo:Demo@example.org:$6$portcull$M/lLuPwalAf4H2xkSe02jHF.Ep/9d5O9"
	    "IYHsY1q0QQ/X5Q0XtrayaDgxJxkzde3UCQ6bmjpmlXqqPMrVSeNoU. "
	    "demo:bob:secret");

	cr_assert_eq(conf->failure_delay, 1500);
	cr_assert_eq(conf->failure_delay_max, 20000);
	cr_assert_eq(conf->max_auth_failures, 5);
	cr_assert_eq(conf->penalty_prefix6, 56);
	/* Masked to the prefix; a bare address is a host. */
	cr_assert_str_eq(networks(conf), "127.0.0.0/8 ::1/128 10.0.0.0/8 "
	    "2001:db8:1::/48 192.0.2.7/32");

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
	cr_assert_str_eq(conf->keys_user, PORTCULLIS_KEYS_USER);
	cr_assert_str_eq(conf->chroot, PORTCULLIS_CHROOT);
	cr_assert_str_eq(conf->spool, PORTCULLIS_SPOOL);
	cr_assert_str_eq(conf->control_socket, PORTCULLIS_CONTROL);
	cr_assert_eq(conf->workers, 0);
	cr_assert_eq(conf->key_processes, 0);
	cr_assert_eq(conf->grace_period, DEFAULT_GRACE_PERIOD);
	cr_assert_eq(conf->grace_period, 30);
	cr_assert_eq(conf->max_message_size, 35ULL * 1024 * 1024);
	cr_assert_eq(conf->deliver, DELIVER_SPOOL);
	cr_assert_str_eq(conf->relay_url, "");
	cr_assert_eq(conf->failure_delay, 2000);
	assert_esmtp_defaults(conf);
	assert_auth_defaults(conf);
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
	assert_esmtp_defaults(conf);
	assert_auth_defaults(conf);
	cr_assert(TAILQ_EMPTY(&conf->listeners));
	cr_assert(TAILQ_EMPTY(&conf->pkis));
	cr_assert(TAILQ_EMPTY(&conf->checkers));
	config_free(conf);
	config_free(NULL);
}

/* An auth block with no statement about them leaves the defaults. */
Test(config, auth_defaults)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\nauth {\n}\n");
	assert_auth_defaults(conf);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\n"
	    "auth { checker \"a\" lmdb }\n");
	assert_checker(nth_checker(conf, 0), "a", CHECKER_LMDB, PORTCULLIS_DB,
	    CHAIN_CONTINUE, CHAIN_CONTINUE, 0);
	cr_assert_eq(conf->failure_delay_max, DEFAULT_FAILURE_DELAY_MAX);
	cr_assert_eq(conf->max_auth_failures, DEFAULT_MAX_AUTH_FAILURES);
	cr_assert_eq(conf->penalty_prefix6, DEFAULT_PENALTY_PREFIX6);
	cr_assert(TAILQ_EMPTY(&conf->static_users));
	cr_assert(TAILQ_EMPTY(&conf->trusted_networks));
	config_free(conf);
}

/*
 * config_free() releases what a worker holds: local domains and the
 * PEM buffers (len + 1 bytes each), with or without them.  ASan says
 * whether anything leaks or is freed with the wrong size.
 */
Test(config, free_releases_pem_and_domains)
{
	struct portcullis_conf	*conf;
	struct local_domain	*d;
	struct pki		*p, *q;

	conf = config_new_empty();
	cr_assert_not_null(conf);
	cr_assert_not_null(p = calloc(1, sizeof(*p)));
	p->cert_len = 5;
	cr_assert_not_null(p->cert_pem = strdup("CERT\n"));
	p->key_len = 4;
	cr_assert_not_null(p->key_pem = strdup("KEY\n"));
	TAILQ_INSERT_TAIL(&conf->pkis, p, entry);
	cr_assert_not_null(q = calloc(1, sizeof(*q)));	/* no PEM */
	TAILQ_INSERT_TAIL(&conf->pkis, q, entry);
	cr_assert_not_null(d = calloc(1, sizeof(*d)));
	(void)strlcpy(d->name, "example.org", sizeof(d->name));
	TAILQ_INSERT_TAIL(&conf->local_domains, d, entry);
	config_free(conf);
}

/* And the static users and the trusted networks. */
Test(config, free_releases_users_and_networks)
{
	struct portcullis_conf	*conf;
	struct static_user	*u;
	struct netaddr		*n;

	conf = config_new_empty();
	cr_assert_not_null(conf);
	cr_assert_not_null(u = calloc(1, sizeof(*u)));
	(void)strlcpy(u->password, "secret", sizeof(u->password));
	TAILQ_INSERT_TAIL(&conf->static_users, u, entry);
	cr_assert_not_null(n = calloc(1, sizeof(*n)));
	TAILQ_INSERT_TAIL(&conf->trusted_networks, n, entry);
	config_free(conf);
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
	    "unknown checker type \"radius\"");
}

Test(config, bad_workers_zero)
{
	expect_error("bad-workers-zero.conf", 3,
	    "workers must be between 1 and 256");
}

Test(config, bad_key_processes)
{
	expect_error("bad-key-processes.conf", 3,
	    "key-processes must be between 1 and 16");
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

Test(config, bad_early_talkers)
{
	expect_error("bad-early-talkers.conf", 3,
	    "invalid early-talkers \"maybe\": want reject or allow");
}

Test(config, bad_bare_newlines)
{
	expect_error("bad-bare-newlines.conf", 3,
	    "invalid bare-newlines \"keep\": want reject or normalize");
}

Test(config, bad_sender_check)
{
	expect_error("bad-sender-check.conf", 3,
	    "invalid sender-check \"strict\": want exact, domain or off");
}

Test(config, bad_tls_min_version)
{
	expect_error("bad-tls-min-version.conf", 3,
	    "invalid tls-min-version \"1.1\": want 1.2 or 1.3");
}

Test(config, bad_tls_tickets)
{
	expect_error("bad-tls-tickets.conf", 3,
	    "invalid tls-tickets \"yes\": want on or off");
	expect_error("bad-tls-ticket-lifetime.conf", 3,
	    "tls-ticket-lifetime: whole seconds from 1s to 7d");
}

Test(config, bad_max_recipients)
{
	expect_error("bad-max-recipients.conf", 3,
	    "max-recipients must be between 1 and 100000");
}

Test(config, bad_timeout_kind)
{
	expect_error("bad-timeout-kind.conf", 3,
	    "unknown timeout \"greeting\": want command, data, session or proxy");
}

Test(config, bad_duplicate_local_domain)
{
	expect_error("bad-dup-local-domain.conf", 5,
	    "duplicate local domain \"example.org\"");
}

Test(config, bad_local_domain)
{
	expect_error("bad-local-domain.conf", 3,
	    "invalid local domain \"bad_name.example.org\"");
}

Test(config, bad_tls_ciphers_too_long)
{
	expect_error("bad-tls-ciphers-long.conf", 3,
	    "tls-ciphers: too long (max 511)");
}

Test(config, bad_mechanism)
{
	expect_error("bad-mechanism.conf", 4, "unknown mechanism \"CRAM-MD5\"");
}

Test(config, bad_on_fail)
{
	expect_error("bad-on-fail.conf", 4,
	    "invalid on-fail \"retry\": want continue or stop");
}

Test(config, bad_static_checker_empty)
{
	expect_error("bad-static-empty.conf", 4, "checker \"demo\": no users");
}

Test(config, bad_static_duplicate_user)
{
	expect_error("bad-static-dup-user.conf", 6,
	    "checker \"demo\": duplicate user \"bob@example.org\"");
}

Test(config, bad_trusted_network_prefix)
{
	expect_error("bad-trusted-prefix.conf", 5,
	    "invalid trusted network \"10.0.0.0/33\"");
}

Test(config, bad_trusted_network_address)
{
	expect_error("bad-trusted-address.conf", 4,
	    "invalid trusted network \"nonsense\"");
}

Test(config, bad_failure_delay_max)
{
	expect_error("bad-failure-delay-max.conf", 4,
	    "failure-delay-max (1s) must not be less than failure-delay "
	    "(1500ms)");
}

Test(config, bad_max_auth_failures)
{
	expect_error("bad-max-auth-failures.conf", 4,
	    "max-auth-failures must be between 1 and 100");
}

Test(config, bad_penalty_prefix6)
{
	expect_error("bad-penalty-prefix6.conf", 4,
	    "penalty-prefix6 must be between 32 and 128");
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

Test(config, spool_min_free)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\n");
	cr_assert_eq(conf->spool_min_free, 0);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\nspool-min-free 100M\n");
	cr_assert_eq(conf->spool_min_free, 100ULL * 1024 * 1024);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\nspool-min-free 0\n");
	cr_assert_eq(conf->spool_min_free, 0);
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25\nspool-min-free 2T\n",
	    2, "invalid size \"2T\"");
	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "spool-min-free 1025G\n", 2,
	    "spool-min-free must be between 0 and 1024G");
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
	conf = parse_ok("listen on 127.0.0.1 port 25\ngrace-period 1d\n");
	cr_assert_eq(conf->grace_period, 86400);
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "grace-period 1500ms\n", 2,
	    "grace-period must be a whole number of seconds");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period 25h\n",
	    2, "grace-period must be between 0s and 24h");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period -1\n",
	    2, "invalid duration \"-1\"");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period 2d\n",
	    2, "grace-period must be between 0s and 24h");
	expect_text_error("listen on 127.0.0.1 port 25\ngrace-period 1w\n",
	    2, "invalid duration \"1w\"");
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
	expect_text_error("# c\nkey-processes 0\n", 2,
	    "key-processes must be between 1 and 16");
	expect_text_error("# c\nkey-processes 17\n", 2,
	    "key-processes must be between 1 and 16");
	expect_text_error("# c\nkeys-user \"no-such-user-here\"\n", 2,
	    "unknown user \"no-such-user-here\"");
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

/*
 * A NUL ends the input where it is, here inside an option line of an
 * oauth block.  The values read so far on that line pointed into the
 * freed string pool and were taken as the first values of the next
 * parse (found by tests/fuzz/fuzz_parse_config).
 */
Test(config, parse_twice_stopped_inside_option_line)
{
	static const char	 text[] = "listen on 127.0.0.1 port 25\n"
	    "auth {\n\tchecker \"idp\" oauth {\n\t\talgorithms RS256\n"
	    "\t\ttimeout 1\0\n";
	struct portcullis_conf	*conf[2];
	char			 path[PATH_MAX], want[PATH_MAX + 64];
	char			 got[2][PATH_MAX + 1024];
	int			 fd;

	(void)strlcpy(path, "/tmp/portcullis-test-conf-XXXXXX", sizeof(path));
	cr_assert((fd = mkstemp(path)) != -1);
	cr_assert(write(fd, text, sizeof(text) - 1) ==
	    (ssize_t)sizeof(text) - 1);
	close(fd);
	for (int i = 0; i < 2; i++) {
		conf[i] = parse_config(path);
		(void)strlcpy(got[i], config_errmsg(), sizeof(got[i]));
	}
	unlink(path);
	(void)snprintf(want, sizeof(want), "%s:5: timeout: missing value",
	    path);
	for (int i = 0; i < 2; i++) {
		cr_assert_null(conf[i]);
		cr_expect_str_eq(got[i], want, "parse %d", i + 1);
	}
}

/* The ESMTP settings. */

#define L25	"listen on 127.0.0.1 port 25\n"

Test(config, timeouts)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(L25 "timeout command 10\ntimeout data 1s\n"
	    "timeout session 24h\n");
	cr_assert_eq(conf->timeout_command, 10);
	cr_assert_eq(conf->timeout_data, 1);
	cr_assert_eq(conf->timeout_session, 86400);
	config_free(conf);
	conf = parse_ok(L25 "timeout data 5m\ntimeout data 6m\n"
	    "timeout command 3000ms\n");
	cr_assert_eq(conf->timeout_data, 360);
	cr_assert_eq(conf->timeout_command, 3);
	cr_assert_eq(conf->timeout_session, DEFAULT_TIMEOUT_SESSION);
	cr_assert_eq(conf->timeout_proxy, DEFAULT_TIMEOUT_PROXY);
	config_free(conf);
	conf = parse_ok(L25 "timeout proxy 3s\n");
	cr_assert_eq(conf->timeout_proxy, 3);
	config_free(conf);

	expect_text_error(L25 "timeout command 0\n", 2,
	    "timeout command must be between 1s and 24h");
	expect_text_error(L25 "timeout data 86401\n", 2,
	    "timeout data must be between 1s and 24h");
	expect_text_error(L25 "timeout session 1500ms\n", 2,
	    "timeout session must be a whole number of seconds");
	expect_text_error(L25 "timeout command 5x\n", 2,
	    "invalid duration \"5x\"");
	expect_text_error(L25 "timeout Command 5m\n", 2,
	    "unknown timeout \"Command\": want command, data, session or "
	    "proxy");
	expect_text_error(L25 "timeout command\n", 2,
	    "timeout: missing value");
	expect_text_error(L25 "timeout\n", 2, "timeout: missing value");
}

Test(config, limits)
{
	static const struct {
		const char	*keyword;
		int		 max;
		size_t		 offset;
	} limits[] = {
		{ "max-recipients", 100000,
		    offsetof(struct portcullis_conf, max_recipients) },
		{ "max-sessions", 1000000,
		    offsetof(struct portcullis_conf, max_sessions) },
		{ "max-sessions-per-address", 1000000,
		    offsetof(struct portcullis_conf, max_sessions_per_addr) },
		{ "max-errors", 1000,
		    offsetof(struct portcullis_conf, max_errors) },
	};
	struct portcullis_conf	*conf;
	char			 text[256], msg[128];
	size_t			 i;
	int			 bad[] = { 0, -1, 0 };
	int			 j;

	for (i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		/* Both bounds, and the last of two wins. */
		(void)snprintf(text, sizeof(text), L25 "%s %d\n",
		    limits[i].keyword, limits[i].max);
		conf = parse_ok(text);
		cr_assert_eq(*(int *)((char *)conf + limits[i].offset),
		    limits[i].max, "%s", limits[i].keyword);
		config_free(conf);
		(void)snprintf(text, sizeof(text), L25 "%s 7\n%s 1\n",
		    limits[i].keyword, limits[i].keyword);
		conf = parse_ok(text);
		cr_assert_eq(*(int *)((char *)conf + limits[i].offset), 1,
		    "%s", limits[i].keyword);
		config_free(conf);

		bad[2] = limits[i].max + 1;
		(void)snprintf(msg, sizeof(msg), "%s must be between 1 and %d",
		    limits[i].keyword, limits[i].max);
		for (j = 0; j < 3; j++) {
			(void)snprintf(text, sizeof(text), L25 "%s %d\n",
			    limits[i].keyword, bad[j]);
			expect_text_error(text, 2, msg);
		}
		(void)snprintf(text, sizeof(text), L25 "%s 10k\n",
		    limits[i].keyword);
		expect_text_error(text, 2, "syntax error near \"10k\"");
		(void)snprintf(text, sizeof(text), L25 "%s\n",
		    limits[i].keyword);
		(void)snprintf(msg, sizeof(msg), "%s: missing value",
		    limits[i].keyword);
		expect_text_error(text, 2, msg);
	}
}

Test(config, policies)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(L25 "bare-newlines normalize\nsender-check off\n");
	cr_assert_eq(conf->bare_newlines, BARE_NEWLINES_NORMALIZE);
	cr_assert_eq(conf->sender_check, SENDER_CHECK_OFF);
	config_free(conf);
	conf = parse_ok(L25 "bare-newlines normalize\nbare-newlines reject\n"
	    "sender-check domain\nsender-check \"exact\"\n");
	cr_assert_eq(conf->bare_newlines, BARE_NEWLINES_REJECT);
	cr_assert_eq(conf->sender_check, SENDER_CHECK_EXACT);
	config_free(conf);
	conf = parse_ok(L25 "bare-newlines 'normalize'\n"
	    "sender-check domain\n");
	cr_assert_eq(conf->bare_newlines, BARE_NEWLINES_NORMALIZE);
	cr_assert_eq(conf->sender_check, SENDER_CHECK_DOMAIN);
	config_free(conf);

	expect_text_error(L25 "bare-newlines Reject\n", 2,
	    "invalid bare-newlines \"Reject\": want reject or normalize");
	expect_text_error(L25 "bare-newlines 1\n", 2,
	    "invalid bare-newlines \"1\": want reject or normalize");
	expect_text_error(L25 "bare-newlines\n", 2,
	    "bare-newlines: missing value");
	expect_text_error(L25 "sender-check \"\"\n", 2,
	    "invalid sender-check \"\": want exact, domain or off");
	expect_text_error(L25 "sender-check exact domain\n", 2,
	    "syntax error near \"domain\"");
}

Test(config, tls_settings)
{
	struct portcullis_conf	*conf;
	char			 text[1024];

	conf = parse_ok(L25 "tls-min-version 1.3\n"
	    "tls-ciphers \"ECDHE+AESGCM:!aNULL\"\n");
	cr_assert_eq(conf->tls_min_version, TLS1_3_VERSION);
	cr_assert_str_eq(conf->tls_ciphers, "ECDHE+AESGCM:!aNULL");
	config_free(conf);
	conf = parse_ok(L25 "tls-min-version \"1.3\"\n"
	    "tls-min-version '1.2'\ntls-ciphers HIGH\n"
	    "tls-ciphers \"HIGH:!MD5\"\n");
	cr_assert_eq(conf->tls_min_version, TLS1_2_VERSION);
	cr_assert_str_eq(conf->tls_ciphers, "HIGH:!MD5");
	config_free(conf);
	conf = parse_ok(L25 "tls-min-version 1.2\n");
	cr_assert_eq(conf->tls_min_version, 0x0303);
	config_free(conf);

	/* The longest that fits. */
	(void)snprintf(text, sizeof(text), L25 "tls-ciphers \"%s%0*d\"\n",
	    "HIGH:", CONF_CIPHERS_MAX - 1 - 5, 0);
	conf = parse_ok(text);
	cr_assert_eq(strlen(conf->tls_ciphers), CONF_CIPHERS_MAX - 1);
	config_free(conf);

	expect_text_error(L25 "tls-min-version 1.0\n", 2,
	    "invalid tls-min-version \"1.0\": want 1.2 or 1.3");
	expect_text_error(L25 "tls-min-version 1\n", 2,
	    "invalid tls-min-version \"1\": want 1.2 or 1.3");
	expect_text_error(L25 "tls-min-version \"TLSv1.3\"\n", 2,
	    "invalid tls-min-version \"TLSv1.3\": want 1.2 or 1.3");
	expect_text_error(L25 "tls-min-version 1.30\n", 2,
	    "invalid tls-min-version \"1.30\": want 1.2 or 1.3");
	expect_text_error(L25 "tls-ciphers \"\"\n", 2,
	    "tls-ciphers: empty value");
	expect_text_error(L25 "tls-ciphers \"NOSUCH\"\n", 2,
	    "invalid tls-ciphers \"NOSUCH\": selects no cipher");
	/* RSA key exchange only: the workers never offer it (!kRSA). */
	expect_text_error(L25 "tls-ciphers \"AES128-SHA:AES256-SHA\"\n", 2,
	    "invalid tls-ciphers \"AES128-SHA:AES256-SHA\": selects no "
	    "cipher");
	expect_text_error(L25 "tls-ciphers \"TLS_AES_128_GCM_SHA256\"\n", 2,
	    "invalid tls-ciphers \"TLS_AES_128_GCM_SHA256\": selects no "
	    "cipher");
	expect_text_error(L25 "tls-ciphers\n", 2, "tls-ciphers: missing value");
}

Test(config, relay_tls)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(L25
	    "deliver to relay \"smtp://relay.example:25\" tls\n");
	cr_assert_eq(conf->deliver, DELIVER_RELAY);
	cr_assert_str_eq(conf->relay_url, "smtp://relay.example:25");
	cr_assert_eq(conf->relay_tls, 1);
	config_free(conf);
	/* The last deliver statement counts, tls included. */
	conf = parse_ok(L25 "deliver to relay \"smtp://a.example:25\" tls\n"
	    "deliver to relay \"smtp://b.example:25\"\n");
	cr_assert_str_eq(conf->relay_url, "smtp://b.example:25");
	cr_assert_eq(conf->relay_tls, 0);
	config_free(conf);
	conf = parse_ok(L25 "deliver to relay \"smtp://a.example:25\" tls\n"
	    "deliver to console\n");
	cr_assert_eq(conf->deliver, DELIVER_CONSOLE);
	cr_assert_eq(conf->relay_tls, 0);
	config_free(conf);
	conf = parse_ok(L25 "deliver to relay \"smtp://a.example:25\" tls\n"
	    "deliver to spool\n");
	cr_assert_eq(conf->deliver, DELIVER_SPOOL);
	cr_assert_eq(conf->relay_tls, 0);
	config_free(conf);

	expect_text_error(L25 "deliver to relay \"smtp://a.example:25\" tls "
	    "tls\n", 2, "syntax error near \"tls\"");
	expect_text_error(L25 "deliver to spool tls\n", 2,
	    "syntax error near \"tls\"");
	expect_text_error(L25 "deliver to relay \"http://a.example:25\" tls\n",
	    2, "invalid relay URL \"http://a.example:25\": want "
	    "smtp://host:port or lmtp://host:port");
}

Test(config, local_domains)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(L25 "local-domains { \"A.Example\" }\n");
	cr_assert_str_eq(domains(conf), "a.example");
	config_free(conf);

	/* Bare or quoted, commas or not, over lines; the lists add up. */
	conf = parse_ok(L25 "d = \"m.example\"\n"
	    "local-domains {\n"
	    "\tb.example, \"c.example\" # a comment\n"
	    "\n"
	    "\td.example\n"
	    "\t$d,\n"
	    "}\n"
	    "local-domains { e.example f.example, g.example }\n"
	    "local-domains { 1x.example,\n"
	    "\th.example }\n");
	cr_assert_str_eq(domains(conf), "b.example c.example d.example "
	    "m.example e.example f.example g.example 1x.example h.example");
	config_free(conf);

	expect_text_error(L25 "local-domains { }\n", 2,
	    "local-domains: empty list");
	expect_text_error(L25 "local-domains { a.example }\n"
	    "local-domains { A.EXAMPLE }\n", 3,
	    "duplicate local domain \"a.example\"");
	expect_text_error(L25 "local-domains { a.example,, b.example }\n", 2,
	    "syntax error near \",\"");
	expect_text_error(L25 "local-domains { , a.example }\n", 2,
	    "syntax error near \",\"");
	expect_text_error(L25 "local-domains { a.example = }\n", 2,
	    "syntax error near \"=\"");
	expect_text_error(L25 "local-domains\n", 2,
	    "local-domains: missing value");
	expect_text_error(L25 "local-domains a.example\n", 2,
	    "syntax error near \"a.example\"");
	expect_text_error(L25 "local-domains { a.example\n"
	    "workers 2\n", 3,
	    "local-domains: missing \"}\" before \"workers\"");
	expect_text_error(L25 "local-domains { a.example relay }\n", 2,
	    "local-domains: missing \"}\" before \"relay\"");
	expect_text_error(L25 "local-domains {\n\ta.example\n", 3,
	    "local-domains: missing \"}\"");
	expect_text_error(L25 "local-domains { \"\" }\n", 2,
	    "invalid local domain \"\"");
	/* Keywords are keywords again after the list. */
	expect_text_error(L25 "local-domains { a.example }\n"
	    "lisen on 127.0.0.1 port 26\n", 3, "unknown keyword \"lisen\"");
}

/* A bad name is reported where it is, and the list goes on. */
Test(config, local_domains_errors_logged, .init = cr_redirect_stderr)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], want[4 * PATH_MAX];

	log_init(1, LOG_MAIL);
	conf = parse_text("# c\n"
	    "local-domains {\n"
	    "\ta.example\n"
	    "\tb_c.example, d.example\n"
	    "\tA.example\n"
	    "}\n"
	    "workers 0\n"
	    "listen on 127.0.0.1 port 25\n", path, sizeof(path));
	cr_assert_null(conf);
	(void)snprintf(want, sizeof(want),
	    "%s:4: invalid local domain \"b_c.example\"\n"
	    "%s:5: duplicate local domain \"a.example\"\n"
	    "%s:7: workers must be between 1 and 256\n", path, path, path);
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

Test(config, hostnames)
{
	static const char *good[] = {
		"mx", "mx.example.org", "a-b.example", "123.example", "x1",
		"xn--bcher-kva.example",
		/* 63 characters */
		("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
		"abc.example"),
	};
	static const char *bad[] = {
		"mx.", ".mx", "a..b", "-mx.example", "mx-.example",
		"mx.-a.example", "mx_1.example", "mx example", "",
		/* 64 characters */
		("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
		"abcd.example"),
	};
	struct portcullis_conf	*conf;
	char			 text[512], msg[512], longname[300];
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)snprintf(text, sizeof(text), L25 "hostname \"%s\"\n"
		    "local-domains { \"%s\" }\n", good[i], good[i]);
		conf = parse_ok(text);
		cr_assert_str_eq(conf->hostname, good[i]);
		cr_assert_str_eq(domains(conf), good[i]);
		config_free(conf);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(text, sizeof(text), L25 "hostname \"%s\"\n",
		    bad[i]);
		(void)snprintf(msg, sizeof(msg), "invalid hostname \"%s\"",
		    bad[i]);
		expect_text_error(text, 2, msg);
		(void)snprintf(text, sizeof(text), L25
		    "local-domains { \"%s\" }\n", bad[i]);
		(void)snprintf(msg, sizeof(msg), "invalid local domain \"%s\"",
		    bad[i]);
		expect_text_error(text, 2, msg);
	}

	/* 253 characters at most: 127 labels "a.", less the last dot. */
	memset(longname, 0, sizeof(longname));
	for (i = 0; i < 127; i++)
		memcpy(longname + 2 * i, "a.", 2);
	longname[253] = '\0';
	(void)snprintf(text, sizeof(text), L25 "hostname \"%s\"\n", longname);
	conf = parse_ok(text);
	config_free(conf);
	memcpy(longname + 253, ".b", 3);
	(void)snprintf(text, sizeof(text), L25 "hostname \"%s\"\n", longname);
	(void)snprintf(msg, sizeof(msg), "invalid hostname \"%s\"", longname);
	expect_text_error(text, 2, msg);
}

/* The authentication settings. */

#define AUTH(x)	L25 "auth {\n" x "}\n"

/* What the worker offers for each checker (EHLO): SCRAM when named. */
Test(config, checker_mechanisms_offered)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(AUTH(
	    "\tchecker \"a\" lmdb \"/db/a\" mechanisms PLAIN LOGIN "
	    "SCRAM-SHA-256 SCRAM-SHA-256-PLUS\n"
	    "\tchecker \"b\" lmdb \"/db/b\" mechanisms PLAIN LOGIN\n"
	    "\tchecker \"c\" static { user u password p }\n"
	    "\tchecker \"d\" lmdb \"/db/d\" mechanisms "
	    "SCRAM-SHA-256-PLUS\n"));
	cr_expect_eq(conf_checker_mechanisms(nth_checker(conf, 0)),
	    SASL_PLAIN | SASL_LOGIN | SASL_SCRAM_SHA256 |
	    SASL_SCRAM_SHA256_PLUS);
	cr_expect_eq(conf_checker_mechanisms(nth_checker(conf, 1)),
	    SASL_PLAIN | SASL_LOGIN);
	cr_expect_eq(conf_checker_mechanisms(nth_checker(conf, 2)),
	    SASL_PLAIN | SASL_LOGIN);
	cr_expect_eq(conf_checker_mechanisms(nth_checker(conf, 3)),
	    SASL_SCRAM_SHA256_PLUS);
	cr_expect_eq(conf->scram_iterations, 4096);
	config_free(conf);
	/* Not named: passwords only, as before SCRAM existed. */
	conf = parse_ok(AUTH("\tchecker \"a\" lmdb\n"));
	cr_expect_eq(conf_checker_mechanisms(nth_checker(conf, 0)),
	    SASL_PLAIN | SASL_LOGIN);
	config_free(conf);

	conf = parse_ok(AUTH("\tchecker \"a\" lmdb\n"
	    "\tscram-iterations 10000\n"));
	cr_expect_eq(conf->scram_iterations, 10000);
	config_free(conf);
	expect_text_error(AUTH("\tchecker \"a\" lmdb\n"
	    "\tscram-iterations 4095\n"), 4, "scram-iterations must be "
	    "between 4096 and 100000000");

	conf = parse_ok(AUTH("\tchecker \"a\" lmdb\n"));
	cr_expect_eq(conf->passwordless_app_only, 0);
	config_free(conf);
	conf = parse_ok(AUTH("\tchecker \"a\" lmdb\n"
	    "\tpasswordless app-passwords-only\n"));
	cr_expect_eq(conf->passwordless_app_only, 1);
	config_free(conf);
	expect_text_error(AUTH("\tchecker \"a\" lmdb\n"
	    "\tpasswordless stop\n"), 4, "invalid passwordless \"stop\": "
	    "want app-passwords-only or continue");
}

Test(config, checker_options)
{
	struct portcullis_conf	*conf;

	/* Any order, any case for the mechanisms, over a continued line. */
	conf = parse_ok(AUTH(
	    "\tchecker \"a\" lmdb mechanisms login on-tempfail stop\n"
	    "\tchecker \"b\" lmdb \"/db/b\" on-fail stop mechanisms Plain \\\n"
	    "\t    LOGIN on-tempfail 'continue'\n"
	    "\tchecker \"c\" lmdb on-fail continue\n"));
	assert_checker(nth_checker(conf, 0), "a", CHECKER_LMDB, PORTCULLIS_DB,
	    CHAIN_CONTINUE, CHAIN_STOP, SASL_LOGIN);
	assert_checker(nth_checker(conf, 1), "b", CHECKER_LMDB, "/db/b",
	    CHAIN_STOP, CHAIN_CONTINUE, SASL_PLAIN | SASL_LOGIN);
	assert_checker(nth_checker(conf, 2), "c", CHECKER_LMDB, PORTCULLIS_DB,
	    CHAIN_CONTINUE, CHAIN_CONTINUE, 0);
	config_free(conf);

	/* The last statement may share the closing brace's line. */
	conf = parse_ok(L25 "auth { checker \"a\" lmdb on-fail stop }\n");
	assert_checker(nth_checker(conf, 0), "a", CHECKER_LMDB, PORTCULLIS_DB,
	    CHAIN_STOP, CHAIN_CONTINUE, 0);
	config_free(conf);

	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms CRAM-MD5\n"),
	    3, "unknown mechanism \"CRAM-MD5\"");
	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms PLAIN "
	    "\"\"\n"), 3, "unknown mechanism \"\"");
	expect_text_error(AUTH("\tchecker \"a\" static { user a password "
	    "b } mechanisms scram-sha-256\n"), 3, "checker \"a\" (static) "
	    "cannot verify SCRAM-SHA-256");
	/* Tokens are for the oauth checkers. */
	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms XOAUTH2\n"),
	    3, "checker \"a\" (lmdb) cannot verify XOAUTH2");
	expect_text_error(AUTH("\tchecker \"a\" static { user u password p } "
	    "mechanisms oauthbearer\n"), 3,
	    "checker \"a\" (static) cannot verify OAUTHBEARER");
	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms PLAIN plain\n"),
	    3, "checker \"a\": mechanism PLAIN given twice");
	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms PLAIN "
	    "mechanisms LOGIN\n"), 3, "checker \"a\": mechanisms given twice");
	expect_text_error(AUTH("\tchecker \"a\" lmdb mechanisms\n"), 3,
	    "checker: missing value after \"mechanisms\"");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-fail\n"), 3,
	    "checker: missing value after \"on-fail\"");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-fail Stop\n"), 3,
	    "invalid on-fail \"Stop\": want continue or stop");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-tempfail 1\n"), 3,
	    "invalid on-tempfail \"1\": want continue or stop");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-fail stop "
	    "on-fail continue\n"), 3, "checker \"a\": on-fail given twice");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-tempfail stop "
	    "on-tempfail stop\n"), 3, "checker \"a\": on-tempfail given twice");
	/* Options come after the type and its path. */
	expect_text_error(AUTH("\tchecker \"a\" on-fail stop lmdb\n"), 3,
	    "syntax error near \"on-fail\"");
	expect_text_error(AUTH("\tchecker \"a\" lmdb on-fail stop \"/db\"\n"),
	    3, "syntax error near \"/db\"");
	/* The checker's name is checked once, where it is. */
	expect_text_error(AUTH("\tchecker \"a\" lmdb\n"
	    "\tchecker \"a\" static {\n"
	    "\t\tuser \"u\" password \"p\"\n"
	    "\t} on-fail stop\n"), 4, "duplicate checker \"a\"");
	expect_text_error(AUTH("\tchecker \"\" lmdb\n"), 3,
	    "checker name: empty value");
	expect_text_error(AUTH("\tchecker \"a\" radius on-fail maybe\n"), 3,
	    "unknown checker type \"radius\"");
}

/* Every error is logged, once: each line here has one, and only one. */
Test(config, checker_errors_logged, .init = cr_redirect_stderr)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], want[10 * PATH_MAX];

	log_init(1, LOG_MAIL);
	conf = parse_text("listen on 127.0.0.1 port 25\n"
	    "auth {\n"
	    "\tchecker \"a\" lmdb\n"
	    "\tchecker \"a\" static {\n"
	    "\t\tuser \"x y\" password \"p\"\n"
	    "\t} mechanisms NTLM\n"
	    "\tchecker \"b\" static {\n"
	    "\t\tuser \"u\" password \"\"\n"
	    "\t}\n"
	    "\tchecker \"c\" static {\n"
	    "\t}\n"
	    "\tchecker \"d\" lmdb on-fail x on-tempfail y\n"
	    "\tchecker \"e\" static {\n"
	    "\t\tuser \"u\"\n"
	    "\t}\n"
	    "}\n", path, sizeof(path));
	cr_assert_null(conf);
	(void)snprintf(want, sizeof(want),
	    "%s:4: duplicate checker \"a\"\n"
	    "%s:5: checker \"a\": invalid user name \"x y\"\n"
	    "%s:6: unknown mechanism \"NTLM\"\n"
	    "%s:8: checker \"b\": user \"u\": empty password\n"
	    "%s:10: checker \"c\": no users\n"
	    "%s:12: invalid on-fail \"x\": want continue or stop\n"
	    "%s:12: invalid on-tempfail \"y\": want continue or stop\n"
	    "%s:14: user: missing value\n",
	    path, path, path, path, path, path, path, path);
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

Test(config, static_checker)
{
	struct portcullis_conf	*conf;
	char			 text[2048], name[CONF_AUTH_NAME_MAX + 1];
	char			 pass[CONF_HASH_MAX + 1];

	/* The domain in lower case, the local part as it is. */
	conf = parse_ok(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"Alice@Mail.Example.ORG\" password \"$2b$10$abc\"\n"
	    "\n"
	    "\t\tuser \"weird@name@EXAMPLE.org\" password 'plain text'\n"
	    "\t\tuser ALICE password \"x\"\n"
	    "\t\tuser \"alice@mail.example.org\" password \"y\"\n"
	    "\t}\n"
	    "\tchecker \"t\" static { user \"Alice@Mail.Example.ORG\" "
	    "password p }\n"
	    "\tchecker \"u\" static {\n"
	    "\t\tuser \"bob\" password \"b\" } on-fail stop\n"));
	cr_assert_str_eq(static_users(conf),
	    "s:Alice@mail.example.org:$2b$10$abc "
	    "s:weird@name@example.org:plain text "
	    "s:ALICE:x "
	    "s:alice@mail.example.org:y "
	    "t:Alice@mail.example.org:p "
	    "u:bob:b");
	assert_checker(nth_checker(conf, 0), "s", CHECKER_STATIC, "",
	    CHAIN_CONTINUE, CHAIN_CONTINUE, 0);
	assert_checker(nth_checker(conf, 2), "u", CHECKER_STATIC, "",
	    CHAIN_STOP, CHAIN_CONTINUE, 0);
	config_free(conf);

	/* The longest name and password that fit. */
	memset(name, 'n', CONF_AUTH_NAME_MAX - 1);
	name[CONF_AUTH_NAME_MAX - 1] = '\0';
	memset(pass, 'p', CONF_HASH_MAX - 1);
	pass[CONF_HASH_MAX - 1] = '\0';
	(void)snprintf(text, sizeof(text), AUTH("checker \"s\" static {\n"
	    "user \"%s\" password \"%s\"\n}\n"), name, pass);
	conf = parse_ok(text);
	cr_assert_eq(strlen(TAILQ_FIRST(&conf->static_users)->name),
	    CONF_AUTH_NAME_MAX - 1);
	cr_assert_eq(strlen(TAILQ_FIRST(&conf->static_users)->password),
	    CONF_HASH_MAX - 1);
	config_free(conf);
	name[CONF_AUTH_NAME_MAX - 1] = 'n';
	name[CONF_AUTH_NAME_MAX] = '\0';
	(void)snprintf(text, sizeof(text), AUTH("checker \"s\" static {\n"
	    "user \"%s\" password \"x\"\n}\n"), name);
	expect_text_error(text, 4, "checker \"s\": user name too long "
	    "(max 255)");
	pass[CONF_HASH_MAX - 1] = 'p';
	pass[CONF_HASH_MAX] = '\0';
	(void)snprintf(text, sizeof(text), AUTH("checker \"s\" static {\n"
	    "user \"u\" password \"%s\"\n}\n"), pass);
	expect_text_error(text, 4, "checker \"s\": user \"u\": password too "
	    "long (max 255)");

	expect_text_error(AUTH("\tchecker \"s\" static { }\n"), 3,
	    "checker \"s\": no users");
	expect_text_error(AUTH("\tchecker \"s\" static {\n\n\t} "
	    "on-fail stop\n"), 3, "checker \"s\": no users");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"A@X.example\" password \"1\"\n"
	    "\t\tuser \"A@x.EXAMPLE\" password \"2\"\n\t}\n"), 5,
	    "checker \"s\": duplicate user \"A@x.example\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"a b\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"a b\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"a\tb\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"a\tb\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"a\x01\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"a\x01\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"@example.org\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"@example.org\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"bob@example.org@\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"bob@example.org@\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"a\x7f\" password \"1\"\n\t}\n"), 4,
	    "checker \"s\": invalid user name \"a\x7f\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\" password \"\"\n\t}\n"), 4,
	    "checker \"s\": user \"u\": empty password");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\"\n\t}\n"), 4, "user: missing value");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\" password\n\t}\n"), 4,
	    "user: missing value after \"password\"");
	/* Quoted, or the number is no password. */
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\" password 0123\n\t}\n"), 4,
	    "syntax error near \"123\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tusr \"u\" password \"p\"\n\t}\n"), 4,
	    "unknown keyword \"usr\"");
	expect_text_error(AUTH("\tchecker \"s\" static\n"), 3,
	    "checker: missing value after \"static\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\" password \"p\"\n"
	    "\t} on-fail\n"), 5, "checker: missing value after \"on-fail\"");
	expect_text_error(AUTH("\tchecker \"s\" static {\n"
	    "\t\tuser \"u\" password \"p\"\n"
	    "\t} mechanisms\n"), 5,
	    "checker: missing value after \"mechanisms\"");
	expect_text_error(AUTH("\tchecker \"s\" static \"/db\" {\n"
	    "\t\tuser \"u\" password \"p\"\n\t}\n"), 3,
	    "syntax error near \"/db\"");
}

Test(config, failure_delays)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(AUTH("\tfailure-delay-max 30s\n"
	    "\tfailure-delay 30\n"));
	cr_assert_eq(conf->failure_delay, 30000);
	cr_assert_eq(conf->failure_delay_max, 30000);
	config_free(conf);
	conf = parse_ok(AUTH("\tfailure-delay 0\n\tfailure-delay-max 0\n"));
	cr_assert_eq(conf->failure_delay, 0);
	cr_assert_eq(conf->failure_delay_max, 0);
	config_free(conf);
	conf = parse_ok(AUTH("\tfailure-delay-max 60s\n"
	    "\tfailure-delay-max 2500ms\n"));
	cr_assert_eq(conf->failure_delay_max, 2500);
	config_free(conf);
	/* Without failure-delay-max, a longer failure-delay raises it. */
	conf = parse_ok(AUTH("\tfailure-delay 20s\n"));
	cr_assert_eq(conf->failure_delay, 20000);
	cr_assert_eq(conf->failure_delay_max, 20000);
	config_free(conf);

	expect_text_error(AUTH("\tfailure-delay-max 61s\n"), 3,
	    "failure-delay-max must be between 0 and 60s");
	expect_text_error(AUTH("\tfailure-delay-max 1x\n"), 3,
	    "invalid duration \"1x\"");
	expect_text_error(AUTH("\tfailure-delay-max\n"), 3,
	    "failure-delay-max: missing value");
	expect_text_error(AUTH("\tfailure-delay 20s\n"
	    "\n"
	    "\tfailure-delay-max 15s\n"), 5,
	    "failure-delay-max (15s) must not be less than failure-delay "
	    "(20s)");
	/* The last failure-delay-max is the one to blame. */
	expect_text_error(AUTH("\tfailure-delay-max 1s\n"
	    "\tfailure-delay-max 999ms\n"), 4,
	    "failure-delay-max (999ms) must not be less than failure-delay "
	    "(2s)");
	/* Outside the auth block, no such statement. */
	expect_text_error(L25 "failure-delay-max 20s\n", 2,
	    "syntax error near \"failure-delay-max\"");
}

Test(config, auth_limits)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(AUTH("\tmax-auth-failures 1\n\tpenalty-prefix6 32\n"));
	cr_assert_eq(conf->max_auth_failures, 1);
	cr_assert_eq(conf->penalty_prefix6, 32);
	config_free(conf);
	conf = parse_ok(AUTH("\tmax-auth-failures 100\n"
	    "\tpenalty-prefix6 128\n"));
	cr_assert_eq(conf->max_auth_failures, 100);
	cr_assert_eq(conf->penalty_prefix6, 128);
	config_free(conf);

	expect_text_error(AUTH("\tmax-auth-failures 0\n"), 3,
	    "max-auth-failures must be between 1 and 100");
	expect_text_error(AUTH("\tmax-auth-failures 101\n"), 3,
	    "max-auth-failures must be between 1 and 100");
	expect_text_error(AUTH("\tmax-auth-failures -1\n"), 3,
	    "max-auth-failures must be between 1 and 100");
	expect_text_error(AUTH("\tmax-auth-failures three\n"), 3,
	    "syntax error near \"three\"");
	expect_text_error(AUTH("\tpenalty-prefix6 31\n"), 3,
	    "penalty-prefix6 must be between 32 and 128");
	expect_text_error(AUTH("\tpenalty-prefix6 129\n"), 3,
	    "penalty-prefix6 must be between 32 and 128");
	expect_text_error(AUTH("\tpenalty-prefix6 /64\n"), 3,
	    "syntax error near \"/64\"");
	expect_text_error(AUTH("\tpenalty-prefix6\n"), 3,
	    "penalty-prefix6: missing value");
}

Test(config, trusted_networks)
{
	static const char *bad[] = {
		"10.0.0.0/33", "nonsense", "10.0.0.0/", "10.0.0.0/-1",
		"10.0.0.0/8/8", "10.0.0.0/8x", "10.0.0.0/0008", "10.1",
		"10.0.0.256", "/8", "::1/129", "2001:db8::1::1/64",
		"fe80::1%lo0", "::1/+8", "192.0.2.1/ 8", "",
	};
	struct portcullis_conf	*conf;
	char			 text[256], msg[256];
	size_t			 i;

	conf = parse_ok(AUTH("\ttrusted-networks {\n"
	    "\t\t192.0.2.255/25, 0.0.0.0/0\n"
	    "\t\t\"2001:db8::ff/120\" fe80::1/10\n"
	    "\t\t::/0 ::ffff:10.1.2.3 198.51.100.7/32 10.0.0.1/008\n"
	    "\t}\n"
	    "\ttrusted-networks { 172.16.0.0/12 }\n"));
	cr_assert_str_eq(networks(conf), "192.0.2.128/25 0.0.0.0/0 "
	    "2001:db8::/120 fe80::/10 ::/0 ::ffff:10.1.2.3/128 "
	    "198.51.100.7/32 10.0.0.0/8 172.16.0.0/12");
	config_free(conf);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(text, sizeof(text),
		    AUTH("\ttrusted-networks { \"%s\" }\n"), bad[i]);
		(void)snprintf(msg, sizeof(msg),
		    "invalid trusted network \"%s\"", bad[i]);
		expect_text_error(text, 3, msg);
	}
	/* Bare, a number is still a value. */
	expect_text_error(AUTH("\ttrusted-networks { 10 }\n"), 3,
	    "invalid trusted network \"10\"");
	expect_text_error(AUTH("\ttrusted-networks { 10.0.0.0/8 }\n"
	    "\ttrusted-networks { 10.9.9.9/8 }\n"), 4,
	    "duplicate trusted network \"10.0.0.0/8\"");
	expect_text_error(AUTH("\ttrusted-networks { ::1 0::1/128 }\n"), 3,
	    "duplicate trusted network \"::1/128\"");
	expect_text_error(AUTH("\ttrusted-networks { }\n"), 3,
	    "trusted-networks: empty list");
	expect_text_error(AUTH("\ttrusted-networks\n"), 3,
	    "trusted-networks: missing value");
	expect_text_error(AUTH("\ttrusted-networks 10.0.0.0/8\n"), 3,
	    "syntax error near \"10.0.0.0/8\"");
	expect_text_error(AUTH("\ttrusted-networks { 10.0.0.0/8\n"
	    "\tfailure-delay 1s\n"), 4,
	    "trusted-networks: missing \"}\" before \"failure-delay\"");
	expect_text_error(L25 "auth {\n\ttrusted-networks {\n\t\t::1\n", 4,
	    "trusted-networks: missing \"}\"");
	/* Outside the auth block, no such statement. */
	expect_text_error(L25 "trusted-networks { ::1 }\n", 2,
	    "syntax error near \"trusted-networks\"");
}

/* Each bad network is reported, and the list goes on. */
Test(config, trusted_networks_errors_logged, .init = cr_redirect_stderr)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], want[4 * PATH_MAX];

	log_init(1, LOG_MAIL);
	conf = parse_text("listen on 127.0.0.1 port 25\n"
	    "auth {\n"
	    "\ttrusted-networks {\n"
	    "\t\t10.0.0.0/33\n"
	    "\t\t::1, nonsense\n"
	    "\t}\n"
	    "\tmax-auth-failures 0\n"
	    "}\n", path, sizeof(path));
	cr_assert_null(conf);
	(void)snprintf(want, sizeof(want),
	    "%s:4: invalid trusted network \"10.0.0.0/33\"\n"
	    "%s:5: invalid trusted network \"nonsense\"\n"
	    "%s:7: max-auth-failures must be between 1 and 100\n",
	    path, path, path);
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

/* A static checker answers for auth require like any other. */
Test(config, static_checker_serves_auth)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25 auth optional\n"
	    "auth {\n\tchecker \"demo\" static { user \"u\" password \"p\" }\n"
	    "}\n");
	cr_assert_eq(nth_listener(conf, 0)->flags, LISTEN_AUTH_OPTIONAL);
	config_free(conf);
	expect_text_error("# c\nlisten on 127.0.0.1 port 25 auth optional\n"
	    "auth {\n\ttrusted-networks { ::1 }\n}\n", 2,
	    "listener \"127.0.0.1:25\": auth needs a checker in the auth "
	    "block");
}

/* The oauth and cache checkers. */

/* What an oauth checker has when its block says nothing of it. */
static void
assert_oauth_defaults(const struct oauth_conf *o)
{
	cr_assert_eq(o->client_auth, OAUTH_CLIENT_BASIC);
	cr_assert_eq(o->algorithms, JWT_ALG_RS256 | JWT_ALG_ES256 |
	    JWT_ALG_EDDSA);
	cr_assert_eq(o->leeway, DEFAULT_OAUTH_LEEWAY);
	cr_assert_eq(o->leeway, 30);
	cr_assert_eq(o->timeout, DEFAULT_OAUTH_TIMEOUT);
	cr_assert_eq(o->timeout, 5000);
	cr_assert_eq(o->connect_timeout, DEFAULT_OAUTH_CONNECT_TIMEOUT);
	cr_assert_eq(o->connect_timeout, 2000);
	cr_assert_eq(o->max_requests, DEFAULT_OAUTH_MAX_REQUESTS);
	cr_assert_eq(o->max_requests, 16);
	cr_assert_eq(o->breaker, DEFAULT_OAUTH_BREAKER);
	cr_assert_eq(o->breaker, 5);
	cr_assert_eq(o->breaker_time, DEFAULT_OAUTH_BREAKER_TIME);
	cr_assert_eq(o->breaker_time, 30);
	cr_assert_eq(o->jwks_refresh, DEFAULT_OAUTH_JWKS_REFRESH);
	cr_assert_eq(o->jwks_refresh, 60);
	cr_assert_eq(o->jwks_interval, DEFAULT_OAUTH_JWKS_INTERVAL);
	cr_assert_eq(o->jwks_interval, 300);
	cr_assert_eq(o->jwks_max_age, DEFAULT_OAUTH_JWKS_MAX_AGE);
	cr_assert_eq(o->jwks_max_age, 3600);
	cr_assert_eq(o->jwt_typ_relaxed, 0);	/* RFC 9068 4 */
	cr_assert_str_eq(o->client_claim, "");
	cr_assert_str_eq(o->clients, "");
	cr_assert_eq(o->discovery, 0);
	cr_assert_str_eq(o->scope, "");
	cr_assert_str_eq(o->ca_file, "");
	cr_assert_str_eq(o->user_claim, "");
	cr_assert_str_eq(o->domain, "");
	cr_assert_str_eq(o->client_secret, "");	/* master reads it */
}

Test(config, good_oauth)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;
	const struct oauth_conf	*o;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-oauth.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	cr_assert_str_eq(config_errmsg(), "");

	/* The cache answers for every mechanism of the oauth checkers. */
	c = nth_checker(conf, 0);
	assert_checker(c, "cache", CHECKER_CACHE, "/var/db/portcullis-cache",
	    CHAIN_CONTINUE, CHAIN_STOP, SASL_PLAIN | SASL_LOGIN |
	    SASL_XOAUTH2 | SASL_OAUTHBEARER);
	cr_assert_eq(c->cache.ttl, 7200);
	cr_assert_eq(c->cache.negative_ttl, 300);
	cr_assert_eq(c->cache.stale_if_error, 86400);
	cr_assert_str_eq(c->cache.key_file, "/etc/portcullis/cache.key");

	/* Every option; mechanisms narrow what the URLs allow. */
	c = nth_checker(conf, 1);
	assert_checker(c, "full", CHECKER_OAUTH, "", CHAIN_STOP,
	    CHAIN_CONTINUE, SASL_XOAUTH2 | SASL_PLAIN);
	o = &c->oauth;
	cr_assert_str_eq(o->introspection_url,
	    "https://idp.example.org/introspect");
	cr_assert_str_eq(o->jwks_url, "https://idp.example.org/certs");
	cr_assert_str_eq(o->token_url, "http://127.0.0.1:8080/token");
	cr_assert_str_eq(o->issuer, "https://idp.example.org/realms/mail");
	cr_assert_str_eq(o->audience, "smtp.example.org");
	cr_assert_str_eq(o->scope, "https://mail.example.org/SMTP.Send");
	cr_assert_str_eq(o->client_id, "portcullis");
	cr_assert_str_eq(o->secret_file, "/etc/portcullis/idp.secret");
	cr_assert_str_eq(o->client_secret, "");
	cr_assert_eq(o->client_auth, OAUTH_CLIENT_POST);
	cr_assert_str_eq(o->ca_file, "/etc/ssl/idp-ca.pem");
	cr_assert_str_eq(o->user_claim, "preferred_username");
	cr_assert_str_eq(o->domain, "example.org");
	cr_assert_eq(o->algorithms, JWT_ALG_ES256 | JWT_ALG_EDDSA);
	cr_assert_eq(o->leeway, 60);
	cr_assert_eq(o->timeout, 2500);
	cr_assert_eq(o->connect_timeout, 500);
	cr_assert_eq(o->max_requests, 4);
	cr_assert_eq(o->breaker, 3);
	cr_assert_eq(o->breaker_time, 60);
	cr_assert_eq(o->jwks_refresh, 300);

	/* A JWKS verifies tokens only. */
	c = nth_checker(conf, 2);
	assert_checker(c, "tokens", CHECKER_OAUTH, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_XOAUTH2 | SASL_OAUTHBEARER);
	o = &c->oauth;
	cr_assert_str_eq(o->jwks_url, "http://[::1]/jwks");
	cr_assert_str_eq(o->issuer, "https://login.example.com/v2.0");
	cr_assert_str_eq(o->audience, "api://smtp");
	cr_assert_str_eq(o->introspection_url, "");
	cr_assert_str_eq(o->token_url, "");
	cr_assert_str_eq(o->client_id, "");
	cr_assert_str_eq(o->secret_file, "");
	assert_oauth_defaults(o);

	/* A token endpoint verifies passwords only. */
	c = nth_checker(conf, 3);
	assert_checker(c, "passwords", CHECKER_OAUTH, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_PLAIN | SASL_LOGIN);
	o = &c->oauth;
	cr_assert_str_eq(o->token_url, "http://localhost/token");
	cr_assert_str_eq(o->client_id, "public-client");
	cr_assert_str_eq(o->secret_file, "");
	cr_assert_str_eq(o->jwks_url, "");
	cr_assert_str_eq(o->introspection_url, "");
	cr_assert_eq(o->breaker, 0);
	cr_assert_eq(o->breaker_time, DEFAULT_OAUTH_BREAKER_TIME);
	cr_assert_null(TAILQ_NEXT(c, entry));

	/* No static users, nothing else changed. */
	cr_assert(TAILQ_EMPTY(&conf->static_users));
	cr_assert_eq(conf->failure_delay, DEFAULT_FAILURE_DELAY);
	config_free(conf);
}

Test(config, good_oauth_defaults)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-oauth-defaults.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());

	/* The cache: the default environment, its key in there. */
	c = nth_checker(conf, 0);
	assert_checker(c, "cache", CHECKER_CACHE, PORTCULLIS_DB,
	    CHAIN_CONTINUE, CHAIN_CONTINUE, SASL_TOKEN_MECHS);
	cr_assert_eq(c->cache.ttl, DEFAULT_CACHE_TTL);
	cr_assert_eq(c->cache.ttl, 3600);
	cr_assert_eq(c->cache.negative_ttl, 0);
	cr_assert_eq(c->cache.stale_if_error, 0);
	cr_assert_str_eq(c->cache.key_file, "/var/db/portcullis/cache.key");

	c = nth_checker(conf, 1);
	assert_checker(c, "jwt", CHECKER_OAUTH, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_XOAUTH2 | SASL_OAUTHBEARER);
	cr_assert_str_eq(c->oauth.jwks_url, "https://idp.example.org/jwks");
	cr_assert_str_eq(c->oauth.issuer, "https://idp.example.org");
	cr_assert_str_eq(c->oauth.audience, "smtp");
	cr_assert_str_eq(c->oauth.introspection_url, "");
	cr_assert_str_eq(c->oauth.token_url, "");
	cr_assert_str_eq(c->oauth.client_id, "");
	cr_assert_str_eq(c->oauth.secret_file, "");
	assert_oauth_defaults(&c->oauth);
	cr_assert_null(TAILQ_NEXT(c, entry));
	config_free(conf);
}

/* With issuer alone, the URLs come from the metadata (issue 14). */
Test(config, good_oauth_discovery)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-oauth-discovery.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	c = nth_checker(conf, 0);
	/* tokens, unless the configuration says more */
	assert_checker(c, "keycloak", CHECKER_OAUTH, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_XOAUTH2 | SASL_OAUTHBEARER);
	cr_assert_eq(c->oauth.discovery, 1);
	cr_assert_str_eq(c->oauth.jwks_url, "");
	cr_assert_str_eq(c->oauth.client_claim, "azp");
	cr_assert_str_eq(c->oauth.clients, "thunderbird mail-app");
	cr_assert_eq(c->oauth.jwks_refresh, 10);
	cr_assert_eq(c->oauth.jwks_interval, 120);
	cr_assert_eq(c->oauth.jwks_max_age, 1800);
	cr_assert_eq(c->oauth.jwt_typ_relaxed, 0);
	c = nth_checker(conf, 1);
	assert_checker(c, "entra", CHECKER_OAUTH, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_XOAUTH2 | SASL_PLAIN);
	cr_assert_eq(c->oauth.discovery, 1);
	cr_assert_eq(c->oauth.jwt_typ_relaxed, 1);
	config_free(conf);
}

Test(config, bad_oauth_discovery)
{
	expect_error("bad-oauth-discovery-audience.conf", 4,
	    "checker \"idp\": tokens need audience");
	expect_error("bad-oauth-discovery-http.conf", 4,
	    "checker \"idp\": issuer \"http://idp.example.org\", for "
	    "discovery: not an https URL (http is allowed to this host only)");
	expect_error("bad-oauth-discovery-plain.conf", 4,
	    "checker \"idp\": PLAIN needs client-id");
}

Test(config, bad_oauth_keys_and_typ)
{
	expect_error("bad-oauth-max-age.conf", 4,
	    "checker \"idp\": jwks-max-age is shorter than jwks-interval");
	expect_error("bad-oauth-jwt-typ.conf", 8,
	    "checker \"idp\": invalid jwt-typ \"any\": want strict or "
	    "relaxed");
}

Test(config, bad_oauth_unknown_option)
{
	expect_error("bad-oauth-option.conf", 7,
	    "checker \"idp\": unknown oauth option \"client-secret\"");
}

Test(config, bad_oauth_duplicate_option)
{
	expect_error("bad-oauth-dup-option.conf", 7,
	    "checker \"idp\": client-id given twice");
}

Test(config, bad_oauth_http_url)
{
	expect_error("bad-oauth-http-url.conf", 5,
	    "checker \"idp\": introspection-url: "
	    "\"http://idp.example.org/introspect\": not an https URL (http "
	    "is allowed to this host only)");
}

Test(config, bad_oauth_url_with_space)
{
	expect_error("bad-oauth-url-space.conf", 5,
	    "checker \"idp\": token-url: "
	    "\"https://idp.example.org/oauth token\": blanks or control "
	    "characters in a URL");
}

Test(config, bad_oauth_jwks_without_audience)
{
	expect_error("bad-oauth-no-audience.conf", 4,
	    "checker \"idp\": jwks-url needs issuer and audience");
}

Test(config, bad_oauth_introspection_without_secret)
{
	expect_error("bad-oauth-no-secret.conf", 4,
	    "checker \"idp\": introspection-url needs client-id and "
	    "client-secret-file");
}

Test(config, bad_oauth_token_url_without_client_id)
{
	expect_error("bad-oauth-no-client-id.conf", 4,
	    "checker \"idp\": token-url needs client-id");
}

Test(config, bad_oauth_no_url)
{
	expect_error("bad-oauth-no-url.conf", 4,
	    "checker \"idp\": oauth needs issuer (discovery), "
	    "introspection-url, jwks-url or token-url");
}

Test(config, bad_oauth_algorithm_hmac)
{
	expect_error("bad-oauth-alg-hs256.conf", 8,
	    "checker \"idp\": unsupported algorithm \"HS256\": want RS256, "
	    "ES256 or EdDSA");
}

Test(config, bad_oauth_algorithm_none)
{
	expect_error("bad-oauth-alg-none.conf", 8,
	    "checker \"idp\": unsupported algorithm \"none\": want RS256, "
	    "ES256 or EdDSA");
}

Test(config, bad_oauth_client_auth)
{
	expect_error("bad-oauth-client-auth.conf", 7,
	    "checker \"idp\": invalid client-auth \"private_key_jwt\": want "
	    "basic or post");
}

Test(config, bad_oauth_breaker_zero)
{
	expect_error("bad-oauth-breaker-zero.conf", 7,
	    "checker \"idp\": circuit-breaker: the count must be between 1 "
	    "and 1000");
}

Test(config, bad_oauth_breaker_duration)
{
	expect_error("bad-oauth-breaker-duration.conf", 7,
	    "checker \"idp\": circuit-breaker: the time must be whole "
	    "seconds between 1s and 1h");
}

Test(config, bad_oauth_breaker_three_values)
{
	expect_error("bad-oauth-breaker-values.conf", 7,
	    "checker \"idp\": circuit-breaker: wrong number of values");
}

Test(config, bad_oauth_timeout)
{
	expect_error("bad-oauth-timeout.conf", 7,
	    "checker \"idp\": timeout must be between 100ms and 2m");
}

Test(config, bad_oauth_mechanisms)
{
	expect_error("bad-oauth-mechanisms.conf", 4,
	    "checker \"idp\": PLAIN needs token-url");
}

Test(config, bad_cache_two)
{
	expect_error("bad-cache-two.conf", 5,
	    "checker \"cache2\": only one cache checker may be configured");
}

/* Found at the end of the file, reported at the cache's line. */
Test(config, bad_cache_without_oauth)
{
	expect_error("bad-cache-no-oauth.conf", 4,
	    "checker \"cache\": a cache needs a remote checker (oauth, ldap, sql)");
}

Test(config, bad_cache_key_file)
{
	expect_error("bad-cache-key-file.conf", 5,
	    "checker \"cache\": key-file: \"cache.key\" is not an absolute "
	    "path");
}

Test(config, bad_cache_negative_ttl)
{
	expect_error("bad-cache-negative-ttl.conf", 6,
	    "checker \"cache\": negative-ttl must be a whole number of "
	    "seconds");
}

#define TOKENS	"\tchecker \"o\" oauth {\n" \
		"\t\tjwks-url \"https://idp.example.org/jwks\"\n" \
		"\t\tissuer \"https://idp.example.org\"\n" \
		"\t\taudience \"smtp\"\n"
#define OAUTH(x) AUTH("\tchecker \"o\" oauth {\n" \
		"\t\ttoken-url \"https://idp.example.org/token\"\n" \
		"\t\tclient-id \"portcullis\"\n" x "\t}\n")

/* Only TLS, or plain HTTP to this very host. */
Test(config, oauth_urls)
{
	static const char *const good[] = {
		"https://idp.example.org", "HTTPS://idp.example.org/token",
		"https://idp.example.org:8443/a?b=c",
		"http://127.0.0.1", "http://127.0.0.1/token",
		"http://127.0.0.1:8080/token", "http://[::1]:80",
		"http://localhost/token", "HTTP://LOCALHOST:9/x",
	};
	static const struct {
		const char	*url;
		const char	*why;
	} bad[] = {
		{ "http://idp.example.org/token", "not an https URL" },
		{ "ftp://idp.example.org/token", "not an https URL" },
		{ "idp.example.org/token", "not an https URL" },
		{ "https://", "no host" },
		{ "https:///token", "no host" },
		{ "http://localhost.example.org/", "not an https URL" },
		{ "http://127.0.0.10/", "not an https URL" },
		{ "http://localhost@example.org/", "not an https URL" },
		/* A user name and password, then the real host. */
		{ "http://127.0.0.1:80@example.org/", "not an https URL" },
		{ "http://[::1]:x@example.org/", "not an https URL" },
		{ "http://localhost:/token", "not an https URL" },
		{ "https://idp.example.org/a\tb", "blanks or control" },
	};
	struct portcullis_conf	*conf;
	char			 text[2048], want[512];
	size_t			 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		(void)snprintf(text, sizeof(text), AUTH("\tchecker \"o\" "
		    "oauth {\n\t\ttoken-url \"%s\"\n\t\tclient-id x\n\t}\n"),
		    good[i]);
		conf = parse_ok(text);
		cr_assert_str_eq(nth_checker(conf, 0)->oauth.token_url,
		    good[i]);
		config_free(conf);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		(void)snprintf(text, sizeof(text), AUTH("\tchecker \"o\" "
		    "oauth {\n\t\tclient-id x\n\t\ttoken-url \"%s\"\n\t}\n"),
		    bad[i].url);
		(void)snprintf(want, sizeof(want), "checker \"o\": token-url: "
		    "\"%s\": %s%s", bad[i].url, bad[i].why,
		    strcmp(bad[i].why, "not an https URL") == 0 ?
		    " (http is allowed to this host only)" :
		    strcmp(bad[i].why, "blanks or control") == 0 ?
		    " characters in a URL" : "");
		expect_text_error(text, 5, want);
	}
}

Test(config, oauth_options)
{
	struct portcullis_conf	*conf;
	struct oauth_conf	*o;

	/* Durations take any unit; numbers without one are seconds. */
	conf = parse_ok(OAUTH("\t\tleeway 0\n\t\ttimeout 2m\n"
	    "\t\tconnect-timeout 100ms\n\t\tjwks-refresh 1d\n"
	    "\t\tmax-requests 1024\n\t\tcircuit-breaker 1000 1h\n"
	    "\t\talgorithms RS256\n\t\tclient-auth basic\n"
	    "\t\tuser-claim sub\n\t\tscope \"https://mail.google.com/\"\n"));
	o = &nth_checker(conf, 0)->oauth;
	cr_assert_eq(o->leeway, 0);
	cr_assert_eq(o->timeout, 120000);
	cr_assert_eq(o->connect_timeout, 100);
	cr_assert_eq(o->jwks_refresh, 86400);
	cr_assert_eq(o->max_requests, 1024);
	cr_assert_eq(o->breaker, 1000);
	cr_assert_eq(o->breaker_time, 3600);
	cr_assert_eq(o->algorithms, JWT_ALG_RS256);
	cr_assert_eq(o->client_auth, OAUTH_CLIENT_BASIC);
	cr_assert_str_eq(o->user_claim, "sub");
	cr_assert_str_eq(o->scope, "https://mail.google.com/");
	config_free(conf);

	/* A block may start and end on the lines of its options. */
	conf = parse_ok(AUTH("\tchecker \"c\" cache { ttl 1d }\n"
	    "\tchecker \"o\" oauth { token-url \"https://i/t\"\n"
	    "\t\tclient-id x } on-fail stop\n"));
	cr_assert_eq(nth_checker(conf, 0)->cache.ttl, 86400);
	assert_checker(nth_checker(conf, 1), "o", CHECKER_OAUTH, "",
	    CHAIN_STOP, CHAIN_CONTINUE, SASL_PASSWORD_MECHS);
	config_free(conf);

	/* Values: their number, their form, their range. */
	expect_text_error(OAUTH("\t\tissuer\n"), 6, "issuer: missing value");
	expect_text_error(OAUTH("\t\ttimeout\n"), 6,
	    "timeout: missing value");
	expect_text_error(OAUTH("\t\tissuer a b\n"), 6,
	    "checker \"o\": issuer: wrong number of values");
	expect_text_error(OAUTH("\t\tclient-auth basic post\n"), 6,
	    "checker \"o\": client-auth: wrong number of values");
	expect_text_error(OAUTH("\t\tcircuit-breaker 5\n"), 6,
	    "checker \"o\": circuit-breaker: wrong number of values");
	expect_text_error(OAUTH("\t\tcircuit-breaker 1001 1m\n"), 6,
	    "checker \"o\": circuit-breaker: the count must be between 1 "
	    "and 1000");
	expect_text_error(OAUTH("\t\tcircuit-breaker 5 1500ms\n"), 6,
	    "checker \"o\": circuit-breaker: the time must be whole "
	    "seconds between 1s and 1h");
	expect_text_error(OAUTH("\t\tcircuit-breaker 5 2h\n"), 6,
	    "checker \"o\": circuit-breaker: the time must be whole "
	    "seconds between 1s and 1h");
	expect_text_error(OAUTH("\t\tcircuit-breaker yes\n"), 6,
	    "checker \"o\": circuit-breaker: wrong number of values");
	expect_text_error(OAUTH("\t\ttimeout 99ms\n"), 6,
	    "checker \"o\": timeout must be between 100ms and 2m");
	expect_text_error(OAUTH("\t\tconnect-timeout 61\n"), 6,
	    "checker \"o\": connect-timeout must be between 100ms and 1m");
	expect_text_error(OAUTH("\t\tleeway 11m\n"), 6,
	    "checker \"o\": leeway must be between 0s and 10m");
	expect_text_error(OAUTH("\t\tleeway 500ms\n"), 6,
	    "checker \"o\": leeway must be a whole number of seconds");
	expect_text_error(OAUTH("\t\tjwks-refresh 0\n"), 6,
	    "checker \"o\": jwks-refresh must be between 1s and 1d");
	expect_text_error(OAUTH("\t\tjwks-refresh 1y\n"), 6,
	    "checker \"o\": jwks-refresh: invalid duration \"1y\"");
	expect_text_error(OAUTH("\t\tmax-requests 0\n"), 6,
	    "checker \"o\": max-requests must be between 1 and 1024");
	expect_text_error(OAUTH("\t\tmax-requests many\n"), 6,
	    "checker \"o\": max-requests: invalid number \"many\"");
	expect_text_error(OAUTH("\t\talgorithms rs256\n"), 6,
	    "checker \"o\": unsupported algorithm \"rs256\": want RS256, "
	    "ES256 or EdDSA");
	expect_text_error(OAUTH("\t\tca-file \"ca.pem\"\n"), 6,
	    "checker \"o\": ca-file: \"ca.pem\" is not an absolute path");
	expect_text_error(OAUTH("\t\tclient-secret-file secret\n"), 6,
	    "checker \"o\": client-secret-file: \"secret\" is not an "
	    "absolute path");
	expect_text_error(OAUTH("\t\tuser-claim \"\"\n"), 6,
	    "checker \"o\": user-claim: empty value");
	expect_text_error(OAUTH("\t\tdomain \"@example.org\"\n"), 6,
	    "checker \"o\": domain: invalid domain \"@example.org\"");
	expect_text_error(OAUTH("\t\tscope \"openid email\"\n"), 6,
	    "checker \"o\": scope: invalid scope \"openid email\": one "
	    "scope, without blanks or quotes");
	expect_text_error(OAUTH("\t\ttoken-url \"https://other/\"\n"), 6,
	    "checker \"o\": token-url given twice");
	expect_text_error(OAUTH("\t\talgorithms RS256\n"
	    "\t\talgorithms ES256\n"), 7,
	    "checker \"o\": algorithms given twice");
	/* A cache option is no oauth option, and the reverse. */
	expect_text_error(OAUTH("\t\tttl 1h\n"), 6,
	    "checker \"o\": unknown oauth option \"ttl\"");
	expect_text_error(AUTH("\tchecker \"c\" cache {\n"
	    "\t\tscope x\n\t}\n"), 4,
	    "checker \"c\": unknown cache option \"scope\"");
	/* The block is not optional. */
	expect_text_error(AUTH("\tchecker \"o\" oauth on-fail stop\n"), 3,
	    "syntax error near \"on-fail\"");
}

/* What an oauth checker verifies follows from its URLs. */
Test(config, oauth_mechanisms)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(AUTH(TOKENS "\t} mechanisms OAUTHBEARER\n"));
	assert_checker(nth_checker(conf, 0), "o", CHECKER_OAUTH, "",
	    CHAIN_CONTINUE, CHAIN_CONTINUE, SASL_OAUTHBEARER);
	config_free(conf);

	/* introspection-url verifies tokens just as jwks-url does. */
	conf = parse_ok(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\tintrospection-url \"https://idp/introspect\"\n"
	    "\t\tclient-id x\n\t\tclient-secret-file /s\n\t}\n"));
	assert_checker(nth_checker(conf, 0), "o", CHECKER_OAUTH, "",
	    CHAIN_CONTINUE, CHAIN_CONTINUE, SASL_TOKEN_MECHS);
	config_free(conf);

	expect_text_error(AUTH(TOKENS "\t} mechanisms LOGIN\n"), 3,
	    "checker \"o\": LOGIN needs token-url");
	expect_text_error(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\ttoken-url \"https://idp/token\"\n"
	    "\t\tclient-id x\n\t} mechanisms PLAIN XOAUTH2\n"), 3,
	    "checker \"o\": XOAUTH2 needs jwks-url or introspection-url");
	expect_text_error(AUTH(TOKENS "\t} mechanisms SCRAM-SHA-256\n"), 7,
	    "checker \"o\" (oauth) cannot verify SCRAM-SHA-256");
	/* Any one of them may be missing. */
	expect_text_error(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\tjwks-url \"https://idp/jwks\"\n"
	    "\t\taudience smtp\n\t}\n"), 3,
	    "checker \"o\": jwks-url needs issuer and audience");
	expect_text_error(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\tintrospection-url \"https://idp/introspect\"\n"
	    "\t\tclient-secret-file /s\n\t}\n"), 3,
	    "checker \"o\": introspection-url needs client-id and "
	    "client-secret-file");
	expect_text_error(AUTH("\tchecker \"o\" oauth {\n\t}\n"), 3,
	    "checker \"o\": oauth needs issuer (discovery), "
	    "introspection-url, jwks-url or token-url");
	expect_text_error(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\tdiscovery yes\n\t\taudience smtp\n\t}\n"), 3,
	    "checker \"o\": discovery needs issuer");
	/* discovery yes with a URL: the others from the metadata */
	conf = parse_ok(AUTH("\tchecker \"o\" oauth {\n"
	    "\t\tdiscovery yes\n\t\tissuer \"https://idp\"\n"
	    "\t\taudience smtp\n"
	    "\t\ttoken-url \"https://idp/token\"\n\t\tclient-id x\n\t}\n"));
	assert_checker(nth_checker(conf, 0), "o", CHECKER_OAUTH, "",
	    CHAIN_CONTINUE, CHAIN_CONTINUE, SASL_TOKEN_MECHS |
	    SASL_PASSWORD_MECHS);
	cr_assert_eq(nth_checker(conf, 0)->oauth.discovery, 1);
	config_free(conf);
}

Test(config, cache_checker)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;

	/* Last in the chain is allowed; the key goes with the path. */
	conf = parse_ok(AUTH(TOKENS "\t}\n"
	    "\tchecker \"c\" cache \"/var/db/x\" {\n"
	    "\t\tttl 30d\n\t\tnegative-ttl 1h\n"
	    "\t\tstale-if-error 30d\n\t}\n"));
	c = nth_checker(conf, 1);
	assert_checker(c, "c", CHECKER_CACHE, "/var/db/x", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_TOKEN_MECHS);
	cr_assert_eq(c->cache.ttl, 30 * 86400);
	cr_assert_eq(c->cache.negative_ttl, 3600);
	cr_assert_eq(c->cache.stale_if_error, 30 * 86400);
	cr_assert_str_eq(c->cache.key_file, "/var/db/x/cache.key");
	config_free(conf);

	/* The union of the oauth checkers' mechanisms, not all four. */
	conf = parse_ok(AUTH("\tchecker \"c\" cache\n"
	    TOKENS "\t} mechanisms XOAUTH2\n"
	    "\tchecker \"p\" oauth {\n\t\ttoken-url \"https://idp/t\"\n"
	    "\t\tclient-id x\n\t}\n"
	    "\tchecker \"l\" lmdb\n"));
	assert_checker(nth_checker(conf, 0), "c", CHECKER_CACHE,
	    PORTCULLIS_DB, CHAIN_CONTINUE, CHAIN_CONTINUE,
	    SASL_XOAUTH2 | SASL_PLAIN | SASL_LOGIN);
	config_free(conf);

	/* Its own mechanisms, if given, must be among them. */
	conf = parse_ok(AUTH("\tchecker \"c\" cache mechanisms xoauth2\n"
	    TOKENS "\t}\n"));
	assert_checker(nth_checker(conf, 0), "c", CHECKER_CACHE,
	    PORTCULLIS_DB, CHAIN_CONTINUE, CHAIN_CONTINUE, SASL_XOAUTH2);
	config_free(conf);
	expect_text_error(AUTH("\tchecker \"c\" cache mechanisms PLAIN\n"
	    TOKENS "\t}\n"), 3,
	    "checker \"c\": no remote checker verifies PLAIN");

	/* A miss is a fail, and must not end the chain. */
	expect_text_error(AUTH("\tchecker \"c\" cache on-fail stop\n"
	    TOKENS "\t}\n"), 3, "checker \"c\": a cache cannot take on-fail "
	    "stop: a miss would end the chain");
	expect_text_error(AUTH("\tchecker \"c\" cache \"db\"\n"), 3,
	    "cache: \"db\" is not an absolute path");
	expect_text_error(AUTH("\tchecker \"c\" cache { ttl 0 }\n"), 3,
	    "checker \"c\": ttl must be between 1s and 30d");
	expect_text_error(AUTH("\tchecker \"c\" cache { ttl 31d }\n"), 3,
	    "checker \"c\": ttl must be between 1s and 30d");
	expect_text_error(AUTH("\tchecker \"c\" cache {\n"
	    "\t\tnegative-ttl 61m\n\t}\n"), 4,
	    "checker \"c\": negative-ttl must be between 0s and 1h");
	expect_text_error(AUTH("\tchecker \"c\" cache {\n"
	    "\t\tstale-if-error 1h\n\t\tstale-if-error 2h\n\t}\n"), 5,
	    "checker \"c\": stale-if-error given twice");
	expect_text_error(AUTH("\tchecker \"c\" cache {\n"
	    "\t\tkey-file /a /b\n\t}\n"), 4,
	    "checker \"c\": key-file: wrong number of values");
	/* One cache; it needs something to cache. */
	expect_text_error(AUTH(TOKENS "\t}\n\tchecker \"c\" cache\n"
	    "\tchecker \"d\" cache \"/var/db/d\"\n"), 9,
	    "checker \"d\": only one cache checker may be configured");
	expect_text_error(AUTH("\tchecker \"c\" cache\n"), 3,
	    "checker \"c\": a cache needs a remote checker (oauth, ldap, sql)");
}

/*
 * Every error is logged once, and none that follows from another: an
 * option in error is not "missing" as well, and the rest of a block
 * on one line is skipped to its closing brace, not to the next line.
 */
Test(config, oauth_errors_logged, .init = cr_redirect_stderr)
{
	struct portcullis_conf	*conf;
	char			 path[PATH_MAX], want[8 * PATH_MAX];

	log_init(1, LOG_MAIL);
	conf = parse_text("listen on 127.0.0.1 port 25\n"
	    "auth {\n"
	    "\tchecker \"a\" oauth {\n"
	    "\t\tjwks-url \"http://idp.example.org/jwks\"\n"
	    "\t\tissuer \"https://idp.example.org\"\n"
	    "\t\taudiences smtp\n"
	    "\t}\n"
	    "\tchecker \"b\" oauth { token-url 'https://i/t' x }\n"
	    "\tchecker \"c\" cache { ttl 1h; }\n"
	    "\tchecker \"d\" oauth {\n"
	    "\t\tjwks-url \"https://idp.example.org/jwks\"\n"
	    "\t}\n"
	    "}\n", path, sizeof(path));
	cr_assert_null(conf);
	(void)snprintf(want, sizeof(want),
	    "%s:4: checker \"a\": jwks-url: "
	    "\"http://idp.example.org/jwks\": not an https URL (http is "
	    "allowed to this host only)\n"
	    "%s:6: checker \"a\": unknown oauth option \"audiences\"\n"
	    "%s:8: checker \"b\": token-url: wrong number of values\n"
	    "%s:9: syntax error near \";\"\n"
	    "%s:10: checker \"d\": jwks-url needs issuer and audience\n",
	    path, path, path, path, path);
	fflush(stderr);
	cr_assert_stderr_eq_str(want);
}

/* An error in an included file names that file and its line. */
Test(config, oauth_error_in_included_file)
{
	char	 inc[PATH_MAX], text[PATH_MAX + 256], path[PATH_MAX];
	char	 want[2 * PATH_MAX];
	int	 fd;

	(void)strlcpy(inc, "/tmp/portcullis-test-inc-XXXXXX", sizeof(inc));
	cr_assert((fd = mkstemp(inc)) != -1);
	(void)snprintf(text, sizeof(text), "# inc\nauth {\n"
	    "\tchecker \"c\" cache\n\tchecker \"l\" lmdb\n}\n");
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
	(void)snprintf(text, sizeof(text), "listen on 127.0.0.1 port 25\n"
	    "include \"%s\"\n# the end\n", inc);
	cr_assert_null(parse_text(text, path, sizeof(path)));
	unlink(inc);
	(void)snprintf(want, sizeof(want),
	    "%s:3: checker \"c\": a cache needs a remote checker (oauth, ldap, sql)", inc);
	cr_assert_str_eq(config_errmsg(), want);
}

/*
 * As portcullis.conf(5) shows them: a macro followed by the rest of a
 * URL, and a long URL continued over two lines.
 */
Test(config, oauth_urls_from_macros)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;

	conf = parse_ok("idp = \"https://sso.example.org/realms/mail\"\n"
	    L25 "auth {\n"
	    "\tchecker \"sso\" oauth {\n"
	    "\t\tintrospection-url $idp/token/introspect\n"
	    "\t\ttoken-url $idp/token\n"
	    "\t\tclient-id \"portcullis\"\n"
	    "\t\tclient-secret-file \"/etc/portcullis/sso.secret\"\n"
	    "\t}\n"
	    "\tchecker \"entra\" oauth {\n"
	    "\t\tjwks-url \"https://login.microsoftonline.com/\\\n"
	    "TENANT/discovery/v2.0/keys\"\n"
	    "\t\tissuer \"https://login.microsoftonline.com/TENANT/v2.0\"\n"
	    "\t\taudience \"api://portcullis\"\n"
	    "\t}\n"
	    "}\n");
	c = nth_checker(conf, 0);
	cr_assert_str_eq(c->oauth.introspection_url,
	    "https://sso.example.org/realms/mail/token/introspect");
	cr_assert_str_eq(c->oauth.token_url,
	    "https://sso.example.org/realms/mail/token");
	c = nth_checker(conf, 1);
	cr_assert_str_eq(c->oauth.jwks_url,
	    "https://login.microsoftonline.com/TENANT/discovery/v2.0/keys");
	config_free(conf);
}

/* listen on ... proxy-protocol from { ... }: the balancers' networks. */
Test(config, proxy_protocol)
{
	static const uint8_t	 v6[16] = { 0xfd };
	struct portcullis_conf	*conf;
	struct listener		*l;

	conf = parse_ok("listen on 127.0.0.1 port 25 proxy-protocol from {\n"
	    "\t10.1.2.3/8, 192.0.2.7\n"
	    "\t\"fd00::/8\"\n"
	    "} name \"lb\"\n"
	    "listen on 127.0.0.1 port 26\n");
	l = nth_listener(conf, 0);
	cr_assert_str_eq(l->name, "lb");
	cr_assert(l->flags & LISTEN_PROXY);
	cr_assert_eq(l->proxy_nfrom, 3);
	cr_assert_eq(l->proxy_from[0].family, AF_INET);
	cr_assert_eq(l->proxy_from[0].prefixlen, 8);
	cr_assert_eq(memcmp(l->proxy_from[0].addr, "\x0a\0\0\0", 4), 0);
	cr_assert_eq(l->proxy_from[1].prefixlen, 32);
	cr_assert_eq(memcmp(l->proxy_from[1].addr, "\xc0\0\x02\x07", 4), 0);
	cr_assert_eq(l->proxy_from[2].family, AF_INET6);
	cr_assert_eq(l->proxy_from[2].prefixlen, 8);
	cr_assert_eq(memcmp(l->proxy_from[2].addr, v6, 16), 0);
	l = nth_listener(conf, 1);
	cr_assert_eq(l->flags & LISTEN_PROXY, 0);
	cr_assert_eq(l->proxy_nfrom, 0);
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol from "
	    "{ 10.0.0.0/33 }\n", 1,
	    "invalid proxy-protocol source \"10.0.0.0/33\"");
	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol from "
	    "{ }\n", 1, "proxy-protocol: empty list");
	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol from "
	    "{ ::1 0::1/128 }\n", 1,
	    "proxy-protocol: duplicate source \"0::1/128\"");
	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol from "
	    "{ 10.0.0.1 } proxy-protocol from { 10.0.0.2 }\n", 1,
	    "listen: proxy-protocol given twice");
	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol from "
	    "{ 1.0.0.1 1.0.0.2 1.0.0.3 1.0.0.4 1.0.0.5 1.0.0.6 1.0.0.7 "
	    "1.0.0.8 1.0.0.9 1.0.0.10 1.0.0.11 1.0.0.12 1.0.0.13 1.0.0.14 "
	    "1.0.0.15 1.0.0.16 1.0.0.17 }\n", 1,
	    "proxy-protocol: more than 16 sources");
	expect_text_error("listen on 127.0.0.1 port 25 proxy-protocol\n", 1,
	    "listen: missing value after \"proxy-protocol\"");
}

/* penalty, limit and state: their defaults, their words, their errors */
Test(config, penalty_limit_state)
{
	struct portcullis_conf	*conf;

	conf = parse_ok(AUTH(""));
	cr_assert_eq(conf->penalty.forget, DEFAULT_PENALTY_FORGET);
	cr_assert_eq(conf->penalty.account_max, 50);
	cr_assert_eq(conf->penalty.account_window, 900);
	cr_assert_eq(conf->penalty.repeats, 4);
	cr_assert_eq(conf->limit.messages, 0);
	cr_assert_eq(conf->state.type, STATE_LOCAL);
	config_free(conf);

	conf = parse_ok(AUTH("\tpenalty address forget 2h\n"
	    "\tpenalty account 7 per 10m known 3d\n"
	    "\tpenalty repeats 0\n")
	    "limit messages 500 per 1h recipients 2000 per 1d\n"
	    "state redis \"unix:/run/redis/redis.sock\" password-file "
	    "\"/etc/portcullis/redis.pw\" fail-closed timeout 250ms\n");
	cr_assert_eq(conf->penalty.forget, 7200);
	cr_assert_eq(conf->penalty.account_max, 7);
	cr_assert_eq(conf->penalty.account_window, 600);
	cr_assert_eq(conf->penalty.known_for, 3 * 86400);
	cr_assert_eq(conf->penalty.repeats, 0);
	cr_assert_eq(conf->limit.messages, 500);
	cr_assert_eq(conf->limit.messages_window, 3600);
	cr_assert_eq(conf->limit.recipients, 2000);
	cr_assert_eq(conf->limit.recipients_window, 86400);
	cr_assert_eq(conf->state.type, STATE_REDIS);
	cr_assert_str_eq(conf->state.redis, "unix:/run/redis/redis.sock");
	cr_assert_str_eq(conf->state.password_file,
	    "/etc/portcullis/redis.pw");
	cr_assert_eq(conf->state.fail_closed, 1);
	cr_assert_eq(conf->state.timeout, 250);
	config_free(conf);

	conf = parse_ok(L25 "state redis \"127.0.0.1:6379\"\n"
	    "limit recipients 10 per 60\n");
	cr_assert_eq(conf->state.type, STATE_REDIS);
	cr_assert_eq(conf->limit.recipients, 10);
	cr_assert_eq(conf->limit.recipients_window, 60);
	config_free(conf);
	conf = parse_ok(L25 "state redis \"[::1]:6379\"\n");
	cr_assert_eq(conf->limit.on, 0);
	config_free(conf);
	conf = parse_ok(L25 "limit messages none recipients 9 per 2h "
	    "lock-after 3 for 1d\n");
	cr_assert_eq(conf->limit.on, 1);
	cr_assert_eq(conf->limit.messages, 0);
	cr_assert_eq(conf->limit.recipients, 9);
	cr_assert_eq(conf->limit.recipients_window, 7200);
	cr_assert_eq(conf->limit.lock_after, 3);
	cr_assert_eq(conf->limit.lock_for, 86400);
	config_free(conf);

	expect_text_error(AUTH("\tpenalty account 5 per\n"), 3,
	    "penalty: want \"address forget DURATION\", \"account NUMBER "
	    "per DURATION [known DURATION]\" or \"repeats NUMBER\"");
	expect_text_error(AUTH("\tpenalty repeats 17\n"), 3,
	    "penalty repeats must be a number between 0 and 16");
	expect_text_error(AUTH("\tpenalty address forget 1500ms\n"), 3,
	    "penalty address forget: invalid duration \"1500ms\" (whole "
	    "seconds)");
	expect_text_error(L25 "limit messages 5 per 1h recipients\n", 2,
	    "limit recipients: want NUMBER per DURATION, or none");
	expect_text_error(L25 "limit lock-after 3 for 1d\n", 2,
	    "limit lock-after: needs messages or recipients");
	expect_text_error(L25 "limit messages 5 per 1h lock-after 3\n", 2,
	    "limit: want \"messages NUMBER per DURATION\" and/or "
	    "\"recipients NUMBER per DURATION\" (or none), then "
	    "[lock-after NUMBER for DURATION]");
	expect_text_error(L25 "limit messages 5 per 1h lock-after 0 for 1d\n",
	    2, "limit lock-after must be a number between 1 and 1000000");
	expect_text_error(L25 "limit letters 5 per 1h\n", 2,
	    "limit: unknown kind \"letters\": want messages or recipients");
	expect_text_error(L25 "state redis \"redis.example:6379\"\n", 2,
	    "state redis: invalid address \"redis.example:6379\": want "
	    "\"unix:/path\" or a numeric address and a port");
	expect_text_error(L25 "state redis \"unix:relative\"\n", 2,
	    "state redis: invalid address \"unix:relative\": want "
	    "\"unix:/path\" or a numeric address and a port");
	expect_text_error(L25 "state redis \"127.0.0.1:6379\" tls\n", 2,
	    "syntax error near \"tls\"");
	expect_text_error(L25 "state redis \"127.0.0.1:6379\" timeout 20s\n",
	    2, "state redis timeout must be between 10ms and 10s");
	expect_text_error(L25 "state memcached\n", 2,
	    "state: want \"local\" or \"redis ADDRESS [password-file PATH] "
	    "[fail-closed] [timeout DURATION]\"");
}

Test(config, metrics_listen)
{
	struct portcullis_conf	*conf;

	conf = parse_ok("listen on 127.0.0.1 port 25\n");
	cr_assert_eq(conf->metrics.enabled, 0);
	config_free(conf);
	conf = parse_ok("listen on 127.0.0.1 port 25\n"
	    "metrics listen on 127.0.0.1 port 9425\n");
	cr_assert_eq(conf->metrics.enabled, 1);
	cr_assert_eq(listener_port(&conf->metrics.listener), 9425);
	cr_assert_str_eq(conf->metrics.token_file, "");
	cr_assert_eq(conf->metrics.listener.fd, -1);
	config_free(conf);
	conf = parse_ok("metrics listen on ::1 port 9425 bearer-token-file "
	    "\"/etc/portcullis/metrics.token\"\n"
	    "listen on 127.0.0.1 port 25\n");
	cr_assert_str_eq(conf->metrics.token_file,
	    "/etc/portcullis/metrics.token");
	config_free(conf);

	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "metrics listen on 127.0.0.1 port 9425\n"
	    "metrics listen on 127.0.0.1 port 9426\n", 3,
	    "metrics listen given twice");
	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "metrics listen on 127.0.0.1 port 25\n", 2,
	    "metrics listen on 127.0.0.1 port 25: an SMTP listener's address");
	expect_text_error("metrics listen on 127.0.0.1 port 25\n"
	    "listen on 127.0.0.1 port 25\n", 2,
	    "listener on 127.0.0.1 port 25: the metrics address");
	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "metrics listen on example.org port 9425\n", 2,
	    "invalid metrics listen address \"example.org\"");
	expect_text_error("listen on 127.0.0.1 port 25\n"
	    "metrics listen on 127.0.0.1 port 0\n", 2,
	    "port 0 out of range (1-65535)");
}

/* checker NAME ldap { ... } */
Test(config, ldap_checker)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;

	conf = parse_ok(AUTH("\tchecker \"dir\" ldap {\n"
	    "\t\turl ldap://a.example:389 ldaps://b.example "
	    "ldapi://%2Frun%2Fslapd%2Fldapi\n"
	    "\t\tstarttls yes\n\t\tca-file \"/etc/ssl/ca.pem\"\n"
	    "\t\ttimeout 3s\n\t\tconnections 8\n"
	    "\t\tbind-dn \"cn=reader,dc=example,dc=org\"\n"
	    "\t\tbind-password-file \"/etc/portcullis/ldap.secret\"\n"
	    "\t\tbase \"ou=people,dc=example,dc=org\"\n\t\tscope one\n"
	    "\t\tfilter \"(&(objectClass=inetOrgPerson)(uid=%u))\"\n"
	    "\t\tpassword attribute\n"
	    "\t\tmail-attributes mail mailAlternateAddress proxyAddresses\n"
	    "\t\tuser-attribute uid\n"
	    "\t\tdisabled-filter \"(pwdAccountLockedTime=*)\"\n"
	    "\t}\n"));
	c = nth_checker(conf, 0);
	cr_assert_eq(c->type, CHECKER_LDAP);
	cr_assert_eq(c->mechanisms, SASL_PASSWORD_MECHS);
	cr_assert_eq(c->ldap.nurls, 3);
	cr_assert_str_eq(c->ldap.urls[2], "ldapi://%2Frun%2Fslapd%2Fldapi");
	cr_assert_eq(c->ldap.starttls, 1);
	cr_assert_eq(c->ldap.timeout, 3000);
	cr_assert_eq(c->ldap.connections, 8);
	cr_assert_eq(c->ldap.scope, LDAP_SCOPE_CONF_ONE);
	cr_assert_eq(c->ldap.method, LDAP_METHOD_ATTRIBUTE);
	cr_assert_eq(c->ldap.nmail_attrs, 3);
	cr_assert_str_eq(c->ldap.mail_attrs[2], "proxyAddresses");
	cr_assert_str_eq(c->ldap.password_attr, "userPassword");
	config_free(conf);

	/* The defaults: bind as the user, (uid=%u), mail attributes. */
	conf = parse_ok(AUTH("\tchecker \"dir\" ldap {\n"
	    "\t\turl ldap://127.0.0.1\n\t\tbase \"dc=example,dc=org\"\n"
	    "\t}\n"));
	c = nth_checker(conf, 0);
	cr_assert_eq(c->ldap.method, LDAP_METHOD_BIND);
	cr_assert_str_eq(c->ldap.filter, "(uid=%u)");
	cr_assert_eq(c->ldap.timeout, DEFAULT_LDAP_TIMEOUT);
	cr_assert_eq(c->ldap.connections, DEFAULT_LDAP_CONNECTIONS);
	cr_assert_eq(c->ldap.nmail_attrs, 2);
	cr_assert_str_eq(c->ldap.mail_attrs[1], "mailAlternateAddress");
	config_free(conf);

	/* A cache may answer for it. */
	conf = parse_ok(AUTH("\tchecker \"c\" cache\n"
	    "\tchecker \"dir\" ldap {\n"
	    "\t\turl ldap://127.0.0.1\n\t\tbase \"dc=example,dc=org\"\n"
	    "\t}\n"));
	cr_assert_eq(nth_checker(conf, 0)->mechanisms, SASL_PASSWORD_MECHS);
	config_free(conf);

	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\tbase \"dc=x\"\n\t}\n"), 3, "checker \"d\": ldap needs url");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl ldap://h\n\t}\n"), 3, "checker \"d\": ldap needs base");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl http://h\n\t}\n"), 4, "checker \"d\": url: \"http://h\": "
	    "want ldap://, ldaps:// or ldapi://HOST[:PORT]");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl \"ldap://h/dc=x??sub\"\n\t}\n"), 4, "checker \"d\": url: "
	    "\"ldap://h/dc=x??sub\": want ldap://, ldaps:// or "
	    "ldapi://HOST[:PORT]");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl ldap://h\n\t\tbase \"dc=x\"\n"
	    "\t\tfilter \"(|(uid=%u)(mail=%u))\"\n\t}\n"), 3,
	    "checker \"d\": filter must be in parentheses and hold %u once");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl ldap://h\n\t\tbase \"dc=x\"\n"
	    "\t\tfilter \"uid=%u\"\n\t}\n"), 3,
	    "checker \"d\": filter must be in parentheses and hold %u once");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\turl ldap://h\n\t\tbase \"dc=x\"\n"
	    "\t\tbind-dn \"cn=r\"\n\t}\n"), 3,
	    "checker \"d\": bind-dn and bind-password-file go together");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\tpassword maybe\n\t}\n"), 4,
	    "checker \"d\": invalid password \"maybe\": want bind or "
	    "attribute");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\tscope tree\n\t}\n"), 4,
	    "checker \"d\": invalid scope \"tree\": want sub, one or base");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\tconnections 0\n\t}\n"), 4,
	    "checker \"d\": connections must be between 1 and 64");
	expect_text_error(AUTH("\tchecker \"d\" ldap {\n"
	    "\t\tsecret x\n\t}\n"), 4,
	    "checker \"d\": unknown ldap option \"secret\"");
}

/* The sql checker: PostfixAdmin's tables, and what it needs. */
Test(config, good_sql)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;
	const struct sql_conf	*s;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-sql.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	/* The cache answers for the sql checker, as for oauth ones. */
	c = nth_checker(conf, 1);
	cr_assert_eq(c->type, CHECKER_CACHE);
	cr_assert_eq(c->mechanisms, SASL_PASSWORD_MECHS);
	c = nth_checker(conf, 2);
	assert_checker(c, "pfa", CHECKER_SQL, "", CHAIN_CONTINUE, CHAIN_STOP,
	    SASL_PASSWORD_MECHS);
	s = c->sql;
	cr_assert_not_null(s);
	cr_assert_str_eq(s->conninfo, "host=db1.example.org,db2.example.org "
	    "dbname=postfix user=portcullis target_session_attrs=read-write");
	cr_assert_str_eq(s->password_file, "/etc/portcullis/sql.pass");
	cr_assert_str_eq(s->password, "", "master reads it, not the parser");
	cr_assert_str_eq(s->query, "SELECT username, password, active FROM "
	    "mailbox WHERE username = $1");
	cr_assert_str_eq(s->address_query,
	    "SELECT address FROM alias WHERE goto = $1");
	cr_assert_str_eq(s->password_column, "password");
	cr_assert_str_eq(s->user_column, "username");
	cr_assert_str_eq(s->enabled_column, "active");
	cr_assert_str_eq(s->addresses_column, "addrs");
	cr_assert_eq(s->connections, 8);
	cr_assert_eq(s->queue, 100);
	cr_assert_eq(s->timeout, 2000);
	cr_assert_eq(s->statement_timeout, 1500);
	config_free(conf);
}

Test(config, good_sql_defaults)
{
	struct portcullis_conf	*conf;
	struct checker_conf	*c;
	const struct sql_conf	*s;
	char			 path[PATH_MAX];

	fixture(path, sizeof(path), "good-sql-defaults.conf");
	conf = parse_config(path);
	cr_assert_not_null(conf, "%s", config_errmsg());
	c = nth_checker(conf, 0);
	assert_checker(c, "db", CHECKER_SQL, "", CHAIN_CONTINUE,
	    CHAIN_CONTINUE, SASL_PASSWORD_MECHS);
	s = c->sql;
	cr_assert_str_eq(s->password_file, "");
	cr_assert_str_eq(s->address_query, "");
	cr_assert_str_eq(s->password_column, "password");
	cr_assert_str_eq(s->user_column, "");
	cr_assert_str_eq(s->enabled_column, "");
	cr_assert_str_eq(s->addresses_column, "");
	cr_assert_eq(s->connections, DEFAULT_SQL_CONNECTIONS);
	cr_assert_eq(s->queue, DEFAULT_SQL_QUEUE);
	cr_assert_eq(s->timeout, DEFAULT_SQL_TIMEOUT);
	cr_assert_eq(s->statement_timeout, DEFAULT_SQL_STATEMENT_TIMEOUT);
	config_free(conf);
}

Test(config, bad_sql_no_query)
{
	expect_error("bad-sql-no-query.conf", 4,
	    "checker \"db\": sql needs conninfo and query");
}

Test(config, bad_sql_login_not_a_parameter)
{
	expect_error("bad-sql-no-param.conf", 4,
	    "checker \"db\": query must take the login as $1");
}

Test(config, bad_sql_password_in_the_configuration)
{
	expect_error("bad-sql-option.conf", 7,
	    "checker \"db\": unknown sql option \"password\"");
}

Test(config, bad_sql_timeout)
{
	expect_error("bad-sql-timeout.conf", 7,
	    "checker \"db\": timeout must be between 100ms and 2m");
}

Test(config, bad_sql_mechanism)
{
	expect_error("bad-sql-mechanism.conf", 7,
	    "checker \"db\" (sql) cannot verify XOAUTH2");
}
