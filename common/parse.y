/*
 * parse.y -- the portcullis.conf(5) grammar.
 *
 * parse_config() reads one configuration file, and the files it
 * includes, into a struct portcullis_conf.  It follows the OpenBSD
 * parse.y template: a sorted keyword table searched with bsearch(3),
 * macros ("name = value", expanded by "$name" outside quotes),
 * "include", "#" comments and a line number in every error.
 *
 * Guarantees:
 * - every error is logged as "FILE:LINE: message" with log_warnx(), and
 *   the first one of a parse is kept for config_errmsg() ("" after a
 *   parse without error);
 * - on any error nothing is returned and nothing is leaked: every
 *   string the lexer makes lives in a pool freed when the parse ends,
 *   because yacc's error recovery discards tokens without telling us;
 * - a file that is group or world writable, or owned by neither root
 *   nor the invoking user, is refused before a byte of it is read;
 * - the parser opens no certificate, key, spool or database: master
 *   does that, so "portcullisd -n" checks the grammar and the
 *   cross-references only (and tls-ciphers, with OpenSSL, in memory).
 */

%{
#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bounds.h"
#include "config.h"
#include "log.h"
#include "scope.h"
#include "util.h"

#define LEX_MAX			8192	/* longest token, with the NUL */
#define UNGET_MAX		(2 * LEX_MAX)
#define INCLUDE_DEPTH_MAX	10
#define MACRO_END		256	/* pushback marker: expansion ends */
#define BLOCK_DEPTH_MAX		4	/* auth { checker static { } } */

#define WORKERS_MAX		256
#define GRACE_PERIOD_MAX	(24 * 3600)		/* seconds */
#define FAILURE_DELAY_MAX	(60 * 1000)		/* milliseconds */
#define MAX_AUTH_FAILURES_MAX	100
#define PENALTY_PREFIX6_MIN	32
#define PENALTY_PREFIX6_MAX	128
#define MSG_SIZE_MAX		(4ULL * 1024 * 1024 * 1024)
#define SPOOL_MIN_FREE_MAX	(1024ULL * 1024 * 1024 * 1024)
#define TIMEOUT_MAX		(24 * 3600)		/* seconds */
#define MAX_RECIPIENTS_MAX	100000
#define MAX_SESSIONS_MAX	1000000
#define MAX_ERRORS_MAX		1000

struct file {
	TAILQ_ENTRY(file)	 entry;
	FILE			*stream;
	char			*name;
	int			 lineno;
	int			 lastc;		/* to end the file with '\n' */
	size_t			 ungetlen;
	int			 ungetbuf[UNGET_MAX];
};
TAILQ_HEAD(files, file);

struct sym {
	TAILQ_ENTRY(sym)	 entry;
	char			*name;
	char			*value;
};
TAILQ_HEAD(syms, sym);

struct pooled_string {
	SLIST_ENTRY(pooled_string) entry;
	char			 s[];
};
SLIST_HEAD(string_pool, pooled_string);

/* Where a listener was declared, for the checks made at the end. */
struct listener_origin {
	struct listener		*listener;
	char			*file;
	int			 line;
};

/* Listener options collected while "listen on" is parsed. */
struct listen_opts {
	char			*name;
	char			*pki;
	uint32_t		 flags;
	int			 tls;		/* tls or tls require given */
	int			 smtps;
	int			 auth_require;
	int			 auth_optional;
	int			 proxy;		/* proxy-protocol given */
	int			 proxy_nfrom;
	struct netprefix	 proxy_from[CONF_PROXY_FROM_MAX];
};

/* A pki statement being parsed. */
struct pki_opts {
	char			*name;
	char			*cert;
	char			*key;
	int			 line;
};

/*
 * Where the statements were whose names master checks only later, in
 * the file system and the user database (user, auth-user, chroot, each
 * pki): "file:line", keyed by what the statement set.  Kept until the
 * next parse, for config_where().
 */
struct where {
	const void		*what;
	char			*text;
};

/*
 * A checker statement being parsed.  The checker joins conf->checkers
 * as soon as its name is read, so that the order is kept.  After an
 * error in its name, type or path it is NULL: the rest of the
 * statement is still checked, its users and options included, but
 * changes nothing, and no error follows from the first.
 */
struct checker_opts {
	struct checker_conf	*checker;
	const char		*name;
	int			 line;
	enum checker_type	 type;		/* 0 until known */
	int			 nusers;	/* static: user lines seen */
	int			 on_fail;	/* given */
	int			 on_tempfail;
	int			 mechanisms;
	uint32_t		 given;		/* oauth, cache: options seen */
	int			 kv_bad;	/* one of them was in error */
};

/* The values of one "option value ..." line of an oauth or cache block. */
#define KV_VALUES_MAX		8
/* The words of a penalty, limit or state statement, read by its own
   function (fewer keywords for the rest of the grammar). */
#define WORDS_MAX		12
static struct {
	const char		*v[WORDS_MAX];
	int			 n;
	int			 over;
} stmtw;
static struct {
	const char		*key;
	const char		*v[KV_VALUES_MAX];
	int			 n;
	int			 line;
} kv;

/* Where failure-delay-max was set, for the check made at the end. */
struct setting_origin {
	const char		*file;		/* pooled */
	int			 line;		/* 0: not set */
};

typedef struct {
	union {
		int64_t		 number;
		char		*string;
	} v;
	int lineno;
} YYSTYPE;
#define YYSTYPE_IS_DECLARED 1

int		 yyparse(void);
int		 yylex(void);
static void	 yyerror(const char *);

static int	 lex_token(void);
static int	 lgetc(int);
static int	 lungetc(int);
static int	 findeol(void);
static int	 lookup(const char *);
static void	 lex_error(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));
static void	 conf_error(const char *, ...)
		    __attribute__((__format__ (printf, 1, 2)));
static void	 conf_error_at(const char *, int, const char *, ...)
		    __attribute__((__format__ (printf, 3, 4)));
static void	 conf_verror(const char *, int, const char *, va_list)
		    __attribute__((__format__ (printf, 3, 0)));

static struct file *pushfile(const char *, char *, size_t);
static void	 popfile(void);
static int	 include_file(const char *);
static const char *file_secrecy(int);

static int	 symset(const char *, const char *);
static const char *symget(const char *);
static void	 symfree(void);
static char	*pool_strdup(const char *);
static void	 pool_free(void);

static int	 copy_value(char *, size_t, const char *, const char *);
static int	 copy_path(char *, size_t, const char *, const char *);
static int	 valid_macro_name(const char *);
static int	 valid_hostname(const char *);
static int	 valid_relay_url(const char *);
static int	 valid_cipher_list(const char *);
static int	 set_number(int *, int64_t, int64_t, int64_t, const char *);
static int	 set_timeout(const char *, int64_t);
static int	 local_domain_add(const char *);
static int64_t	 parse_duration(const char *);
static int64_t	 parse_size(const char *);
static int	 set_spool_min_free(int64_t);
static int	 set_user(char *, size_t, const char *, const char *);
static int	 listener_add(const char *, int64_t, struct listen_opts *);
static int	 metrics_listen(const char *, int64_t);
static int	 listener_resolve(struct listener *, const char *, int);
static int	 sockaddr_equal(const struct sockaddr_storage *,
		    const struct sockaddr_storage *);
static int	 pki_add(struct pki_opts *);
static void	 checker_begin(const char *, int);
static void	 checker_set_type(enum checker_type, const char *);
static void	 checker_end(void);
static void	 checker_policy(enum chain_policy *, int *, const char *,
		    const char *);
static void	 checker_mechanism(const char *);
static void	 kv_option(void);
static void	 oauth_check(struct checker_conf *);
static void	 ldap_check(struct checker_conf *);
static void	 sql_check(struct checker_conf *);
static void	 cache_check(void);
static void	 static_user_add(const char *, const char *, int);
static int	 set_failure_delay(int *, int64_t, const char *);
static int	 netaddr_parse(const char *, struct netaddr *);
static int	 trusted_network_add(const char *);
static int	 proxy_source_add(const char *);
static void	 check_listeners(void);
static void	 check_auth(void);
static void	 words_add(const char *);
static void	 penalty_stmt(void);
static void	 limit_stmt(void);
static void	 state_stmt(void);
static void	 parse_reset(void);
static void	 parse_cleanup(void);
static void	 where_note(const void *, int);
static void	 where_free(void);

static struct portcullis_conf	*conf;
static struct files		 files = TAILQ_HEAD_INITIALIZER(files);
static struct file		*file, *topfile;
static int			 include_depth;
static struct syms		 symhead = TAILQ_HEAD_INITIALIZER(symhead);
static struct string_pool	 string_pool =
				    SLIST_HEAD_INITIALIZER(string_pool);
static struct listener_origin	 origins[CONF_LISTENERS_MAX];
static int			 norigins;
static struct where		*wheres;
static size_t			 nwheres;
static char			*where_file;	/* the top file */
static struct listen_opts	 lopts;
static struct pki_opts		 popts;
static struct checker_opts	 copts;
static int			 ncache_checkers;
static struct setting_origin	 cache_origin;	/* the cache checker */
static struct setting_origin	 fdmax_origin;

static int			 errors;
static char			 errmsg[1024];

/* Lexer state, also read by yyerror() to say what went wrong. */
static int			 expanding;	/* inside a macro's value */
static int			 stmt_start = 1; /* next token starts one */
static int			 lexerr_pending; /* lexer said it already */
static int			 cur_tok;
static int			 prev_is_keyword;
static int			 in_list;	/* inside a list of values */
static char			 cur_text[64], prev_text[64], stmt_keyword[64];
static char			 list_keyword[64];	/* the list's statement */
static char			 block_keyword[BLOCK_DEPTH_MAX][64];
static int			 block_depth;	/* open braces */
static int			 kv_pending;	/* "oauth", "cache" seen */
static int			 kv_depth;	/* >0: in their block */
%}

%token	AUTH AUTHUSER BARENEWLINES CERT CHECKER CHROOT CONSOLE DELIVER
%token	EARLYTALKERS CONTROLSOCKET
%token	FAILUREDELAY FAILUREDELAYMAX FROM GRACEPERIOD HOSTNAME INCLUDE KEY
%token	LISTEN LMDB LOCALDOMAINS MAXAUTHFAILURES MAXERRORS MAXMESSAGESIZE
%token	MAXRECIPIENTS MAXSESSIONS MAXSESSIONSPERADDR MECHANISMS NAME ON
%token	OAUTH CACHE LDAP SQL
%token	METRICS BEARERTOKENFILE
%token	ONFAIL ONTEMPFAIL OPTIONAL PASSWORD PENALTYPREFIX6 PKI PORT
%token	PROXYPROTOCOL RELAY
%token	PENALTY LIMIT STATE
%token	SCRAMITERATIONS PASSWORDLESS
%token	REQUIRE SENDERCHECK SMTPS SPOOL SPOOLMINFREE STATIC TIMEOUT TLS TLSCIPHERS
%token	TLSMINVERSION TLSTICKETS TLSTICKETLIFETIME TO TRUSTEDNETWORKS USER WORKERS
%token	KEYSUSER KEYPROCESSES
%token	ERROR
%token	<v.string>	STRING
%token	<v.number>	NUMBER
%type	<v.string>	address optpath value kvkey word
%type	<v.number>	port duration size relaytls

%%

grammar		: /* empty */
		| grammar '\n'
		| grammar include '\n'
		| grammar varset '\n'
		| grammar main '\n'
		| grammar error '\n'		{ yyerrok; }
		;

include		: INCLUDE STRING		{
			if (include_file($2) == -1)
				YYERROR;
		}
		;

varset		: STRING '=' value	{
			if (!valid_macro_name($1)) {
				conf_error("invalid macro name \"%s\"", $1);
				YYERROR;
			}
			if (symset($1, $3) == -1) {
				conf_error("out of memory");
				YYERROR;
			}
		}
		;

/*
 * "port = 587" is as good as "port = \"587\"", and "tls-min-version 1"
 * gets a better message than a syntax error.
 */
value		: STRING			{ $$ = $1; }
		| NUMBER			{
			char	 buf[32];

			(void)snprintf(buf, sizeof(buf), "%lld", (long long)$1);
			if (($$ = pool_strdup(buf)) == NULL) {
				conf_error("out of memory");
				YYERROR;
			}
		}
		;

main		: HOSTNAME STRING		{
			if (!valid_hostname($2)) {
				conf_error("invalid hostname \"%s\"", $2);
				YYERROR;
			}
			if (copy_value(conf->hostname, sizeof(conf->hostname),
			    $2, "hostname") == -1)
				YYERROR;
		}
		| USER STRING			{
			if (set_user(conf->user, sizeof(conf->user), $2,
			    "user") == -1)
				YYERROR;
			where_note(conf->user, $<lineno>1);
		}
		| AUTHUSER STRING		{
			if (set_user(conf->auth_user, sizeof(conf->auth_user),
			    $2, "auth-user") == -1)
				YYERROR;
			where_note(conf->auth_user, $<lineno>1);
		}
		| KEYSUSER STRING		{
			if (set_user(conf->keys_user, sizeof(conf->keys_user),
			    $2, "keys-user") == -1)
				YYERROR;
			where_note(conf->keys_user, $<lineno>1);
		}
		| CHROOT STRING			{
			if (copy_path(conf->chroot, sizeof(conf->chroot), $2,
			    "chroot") == -1)
				YYERROR;
			where_note(conf->chroot, $<lineno>1);
		}
		| SPOOL STRING			{
			if (copy_path(conf->spool, sizeof(conf->spool), $2,
			    "spool") == -1)
				YYERROR;
		}
		| CONTROLSOCKET STRING		{
			if (copy_path(conf->control_socket,
			    sizeof(conf->control_socket), $2,
			    "control-socket") == -1)
				YYERROR;
		}
		| WORKERS NUMBER		{
			if ($2 < 1 || $2 > WORKERS_MAX) {
				conf_error("workers must be between 1 and %d",
				    WORKERS_MAX);
				YYERROR;
			}
			conf->workers = $2;
		}
		| KEYPROCESSES NUMBER		{
			if ($2 < 1 || $2 > KEY_PROCESSES_MAX) {
				conf_error("key-processes must be between 1 "
				    "and %d", KEY_PROCESSES_MAX);
				YYERROR;
			}
			conf->key_processes = $2;
		}
		| GRACEPERIOD duration		{
			if ($2 % 1000 != 0) {
				conf_error("grace-period must be a whole "
				    "number of seconds");
				YYERROR;
			}
			if ($2 / 1000 > GRACE_PERIOD_MAX) {
				conf_error("grace-period must be between 0s "
				    "and 24h");
				YYERROR;
			}
			conf->grace_period = $2 / 1000;
		}
		| MAXMESSAGESIZE size		{
			conf->max_message_size = $2;
		}
		| LIMIT words			{ limit_stmt(); }
		| STATE words			{ state_stmt(); }
		| SPOOLMINFREE NUMBER		{
			if (set_spool_min_free($2) == -1)
				YYERROR;
		}
		| SPOOLMINFREE STRING		{
			int64_t	 n;

			if ((n = parse_size($2)) == -1) {
				conf_error("invalid size \"%s\"", $2);
				YYERROR;
			}
			if (set_spool_min_free(n) == -1)
				YYERROR;
		}
		| TIMEOUT STRING duration	{
			if (set_timeout($2, $3) == -1)
				YYERROR;
		}
		| MAXRECIPIENTS NUMBER		{
			if (set_number(&conf->max_recipients, $2, 1,
			    MAX_RECIPIENTS_MAX, "max-recipients") == -1)
				YYERROR;
		}
		| MAXSESSIONS NUMBER		{
			if (set_number(&conf->max_sessions, $2, 1,
			    MAX_SESSIONS_MAX, "max-sessions") == -1)
				YYERROR;
		}
		| MAXSESSIONSPERADDR NUMBER	{
			if (set_number(&conf->max_sessions_per_addr, $2, 1,
			    MAX_SESSIONS_MAX, "max-sessions-per-address") == -1)
				YYERROR;
		}
		| MAXERRORS NUMBER		{
			if (set_number(&conf->max_errors, $2, 1,
			    MAX_ERRORS_MAX, "max-errors") == -1)
				YYERROR;
		}
		| EARLYTALKERS value		{
			if (strcmp($2, "reject") == 0)
				conf->early_talkers = EARLY_TALKERS_REJECT;
			else if (strcmp($2, "allow") == 0)
				conf->early_talkers = EARLY_TALKERS_ALLOW;
			else {
				conf_error("invalid early-talkers \"%s\": want "
				    "reject or allow", $2);
				YYERROR;
			}
		}
		| BARENEWLINES value		{
			if (strcmp($2, "reject") == 0)
				conf->bare_newlines = BARE_NEWLINES_REJECT;
			else if (strcmp($2, "normalize") == 0)
				conf->bare_newlines = BARE_NEWLINES_NORMALIZE;
			else {
				conf_error("invalid bare-newlines \"%s\": want "
				    "reject or normalize", $2);
				YYERROR;
			}
		}
		| SENDERCHECK value		{
			if (strcmp($2, "exact") == 0)
				conf->sender_check = SENDER_CHECK_EXACT;
			else if (strcmp($2, "domain") == 0)
				conf->sender_check = SENDER_CHECK_DOMAIN;
			else if (strcmp($2, "off") == 0)
				conf->sender_check = SENDER_CHECK_OFF;
			else {
				conf_error("invalid sender-check \"%s\": want "
				    "exact, domain or off", $2);
				YYERROR;
			}
		}
		| TLSMINVERSION value		{
			if (strcmp($2, "1.2") == 0)
				conf->tls_min_version = TLS1_2_VERSION;
			else if (strcmp($2, "1.3") == 0)
				conf->tls_min_version = TLS1_3_VERSION;
			else {
				conf_error("invalid tls-min-version \"%s\": "
				    "want 1.2 or 1.3", $2);
				YYERROR;
			}
		}
		| TLSTICKETS ON			{ conf->tls_tickets = 1; }
		| TLSTICKETS value		{
			if (strcmp($2, "off") == 0)
				conf->tls_tickets = 0;
			else {
				conf_error("invalid tls-tickets \"%s\": want "
				    "on or off", $2);
				YYERROR;
			}
		}
		| TLSTICKETLIFETIME duration	{
			if ($2 < 1000 || $2 % 1000 != 0 ||
			    $2 / 1000 > TLS_TICKET_LIFETIME_MAX) {
				conf_error("tls-ticket-lifetime: whole seconds "
				    "from 1s to 7d");
				YYERROR;
			}
			conf->tls_ticket_lifetime = (int)($2 / 1000);
		}
		| TLSCIPHERS STRING		{
			if (copy_value(conf->tls_ciphers,
			    sizeof(conf->tls_ciphers), $2, "tls-ciphers") == -1)
				YYERROR;
			if (!valid_cipher_list($2)) {
				conf_error("invalid tls-ciphers \"%s\": "
				    "selects no cipher", $2);
				YYERROR;
			}
		}
		| LOCALDOMAINS '{' nls domainlist sep '}'
		| LOCALDOMAINS '{' nls '}'	{
			conf_error("local-domains: empty list");
			YYERROR;
		}
		| LOCALDOMAINS '{' error '}'	{ yyerrok; }
		| PKI STRING {
			memset(&popts, 0, sizeof(popts));
			popts.name = $2;
			popts.line = $<lineno>1;
		} pkiopts {
			if (pki_add(&popts) == -1)
				YYERROR;
		}
		| LISTEN ON address PORT port {
			memset(&lopts, 0, sizeof(lopts));
		} listenopts {
			if (listener_add($3, $5, &lopts) == -1)
				YYERROR;
		}
		| METRICS LISTEN ON address PORT port {
			if (metrics_listen($4, $6) == -1)
				YYERROR;
		} metricsopts
		| DELIVER TO delivery
		| AUTH '{' authlines '}'
		| AUTH '{' authlines authopt '}'
		| AUTH '{' authlines error '}'	{ yyerrok; }
		;

pkiopts		: /* empty */
		| pkiopts pkiopt
		;

pkiopt		: CERT STRING			{
			if (popts.cert != NULL) {
				conf_error("pki \"%s\": cert given twice",
				    popts.name);
				YYERROR;
			}
			popts.cert = $2;
		}
		| KEY STRING			{
			if (popts.key != NULL) {
				conf_error("pki \"%s\": key given twice",
				    popts.name);
				YYERROR;
			}
			popts.key = $2;
		}
		;

address		: STRING			{ $$ = $1; }
		| '*'				{ $$ = "*"; }
		;

port		: NUMBER			{
			if ($1 < 1 || $1 > 65535) {
				conf_error("port %lld out of range (1-65535)",
				    (long long)$1);
				YYERROR;
			}
			$$ = $1;
		}
		| STRING			{
			struct servent	*se;

			if ((se = getservbyname($1, "tcp")) == NULL) {
				conf_error("unknown port \"%s\"", $1);
				YYERROR;
			}
			$$ = ntohs(se->s_port);
		}
		;

listenopts	: /* empty */
		| listenopts listenopt
		;

metricsopts	: /* empty */
		| BEARERTOKENFILE STRING	{
			if (copy_path(conf->metrics.token_file,
			    sizeof(conf->metrics.token_file), $2,
			    "bearer-token-file") == -1)
				YYERROR;
		}
		;

listenopt	: NAME STRING			{
			if (lopts.name != NULL) {
				conf_error("listen: name given twice");
				YYERROR;
			}
			lopts.name = $2;
		}
		| TLS				{
			lopts.tls = 1;
			lopts.flags |= LISTEN_STARTTLS;
		}
		| TLS REQUIRE			{
			lopts.tls = 1;
			lopts.flags |= LISTEN_STARTTLS | LISTEN_TLS_REQUIRE;
		}
		| SMTPS				{
			lopts.smtps = 1;
			lopts.flags |= LISTEN_SMTPS;
		}
		| PKI STRING			{
			if (lopts.pki != NULL) {
				conf_error("listen: pki given twice");
				YYERROR;
			}
			lopts.pki = $2;
		}
		| AUTH REQUIRE			{
			lopts.auth_require = 1;
			lopts.flags |= LISTEN_AUTH_REQUIRE;
		}
		| AUTH OPTIONAL			{
			lopts.auth_optional = 1;
			lopts.flags |= LISTEN_AUTH_OPTIONAL;
		}
		| PROXYPROTOCOL FROM '{' nls proxylist sep '}' {
			if (lopts.proxy++ > 0) {
				conf_error("listen: proxy-protocol given "
				    "twice");
				YYERROR;
			}
			lopts.flags |= LISTEN_PROXY;
		}
		| PROXYPROTOCOL FROM '{' nls '}' {
			conf_error("proxy-protocol: empty list");
			YYERROR;
		}
		| PROXYPROTOCOL FROM '{' error '}' { yyerrok; }
		;

/*
 * proxy-protocol from { 10.0.0.0/8 "fd00::/8" }: the balancers a
 * listener takes a PROXY protocol header from, as trusted-networks.
 */
proxylist	: proxysource
		| proxylist sep proxysource
		;

proxysource	: value				{
			(void)proxy_source_add($1);
		}
		;

delivery	: SPOOL				{
			conf->deliver = DELIVER_SPOOL;
			conf->relay_url[0] = '\0';
			conf->relay_tls = 0;
		}
		| CONSOLE			{
			conf->deliver = DELIVER_CONSOLE;
			conf->relay_url[0] = '\0';
			conf->relay_tls = 0;
		}
		| RELAY STRING relaytls		{
			if (!valid_relay_url($2)) {
				conf_error("invalid relay URL \"%s\": want "
				    "smtp://host:port or lmtp://host:port", $2);
				YYERROR;
			}
			if (copy_value(conf->relay_url, sizeof(conf->relay_url),
			    $2, "relay URL") == -1)
				YYERROR;
			conf->deliver = DELIVER_RELAY;
			conf->relay_tls = $3;
		}
		;

relaytls	: /* empty */			{ $$ = 0; }
		| TLS				{ $$ = 1; }
		;

/*
 * local-domains { "a.example" "b.example" }: commas between the names
 * are optional, and the list may span lines.  A bad name is reported
 * and the list goes on, so that one run shows every bad name without
 * the rest of the list being taken for statements.
 */
domainlist	: domain
		| domainlist sep domain
		;

domain		: STRING			{
			(void)local_domain_add($1);
		}
		;

sep		: optcomma nls
		;

optcomma	: /* empty */
		| ','
		;

nls		: /* empty */
		| nls '\n'
		;

/*
 * The block's lines end with '\n', except that the last statement may
 * share its line with the closing brace: "auth { failure-delay 2s }".
 */
authlines	: /* empty */
		| authlines '\n'
		| authlines authopt '\n'
		| authlines error '\n'		{ yyerrok; }
		;

authopt		: CHECKER STRING {
			checker_begin($2, $<lineno>1);
		} checkerdef checkeropts {
			checker_end();
		}
		| FAILUREDELAY duration		{
			if (set_failure_delay(&conf->failure_delay, $2,
			    "failure-delay") == -1)
				YYERROR;
		}
		| FAILUREDELAYMAX duration	{
			if (set_failure_delay(&conf->failure_delay_max, $2,
			    "failure-delay-max") == -1)
				YYERROR;
			if ((fdmax_origin.file = pool_strdup(file->name)) ==
			    NULL) {
				conf_error("out of memory");
				YYERROR;
			}
			fdmax_origin.line = $<lineno>1;
		}
		| MAXAUTHFAILURES NUMBER	{
			if (set_number(&conf->max_auth_failures, $2, 1,
			    MAX_AUTH_FAILURES_MAX, "max-auth-failures") == -1)
				YYERROR;
		}
		| PENALTYPREFIX6 NUMBER		{
			if (set_number(&conf->penalty_prefix6, $2,
			    PENALTY_PREFIX6_MIN, PENALTY_PREFIX6_MAX,
			    "penalty-prefix6") == -1)
				YYERROR;
		}
		| PENALTY words			{ penalty_stmt(); }
		| PASSWORDLESS value		{
			/* Accounts whose main login is elsewhere (OAuth). */
			if (strcmp($2, "app-passwords-only") == 0)
				conf->passwordless_app_only = 1;
			else if (strcmp($2, "continue") == 0)
				conf->passwordless_app_only = 0;
			else {
				conf_error("invalid passwordless \"%s\": want "
				    "app-passwords-only or continue", $2);
				YYERROR;
			}
		}
		| SCRAMITERATIONS NUMBER	{
			/* RFC 7677 4: 4096 at least */
			if (set_number(&conf->scram_iterations, $2,
			    SCRAM_ITER_MIN, SCRAM_ITER_MAX,
			    "scram-iterations") == -1)
				YYERROR;
		}
		| TRUSTEDNETWORKS '{' nls netlist sep '}'
		| TRUSTEDNETWORKS '{' nls '}'	{
			conf_error("trusted-networks: empty list");
			YYERROR;
		}
		| TRUSTEDNETWORKS '{' error '}'	{ yyerrok; }
		;

/*
 * checker NAME lmdb [PATH] [option ...]
 * checker NAME static { user NAME password PASSWORD ... } [option ...]
 */
checkerdef	: LMDB optpath			{
			checker_set_type(CHECKER_LMDB, $2);
		}
		| STATIC staticbody		{
			checker_set_type(CHECKER_STATIC, NULL);
		}
		| OAUTH	{
			checker_set_type(CHECKER_OAUTH, NULL);
		} kvbody
		| CACHE optpath {
			checker_set_type(CHECKER_CACHE, $2);
		} optkvbody
		| LDAP	{
			checker_set_type(CHECKER_LDAP, NULL);
		} kvbody
		| SQL {
			checker_set_type(CHECKER_SQL, NULL);
		} kvbody
		| STRING optpath		{
			conf_error("unknown checker type \"%s\"", $1);
			copts.checker = NULL;
		}
		;

optpath		: /* empty */			{ $$ = NULL; }
		| STRING			{ $$ = $1; }
		;

/* Like the auth block: the last user may share the closing brace's line. */
staticbody	: '{' staticlines '}'
		| '{' staticlines staticuser '}'
		;

staticlines	: /* empty */
		| staticlines '\n'
		| staticlines staticuser '\n'
		| staticlines error '\n'	{
			copts.nusers++;		/* no "no users" on top */
			yyerrok;
		}
		;

staticuser	: USER STRING PASSWORD STRING	{
			static_user_add($2, $4, $<lineno>1);
		}
		;

/*
 * The blocks of oauth and cache checkers: one "option value ..." per
 * line, checked by kv_option() against the checker's own table.
 */
optkvbody	: /* empty */
		| kvbody
		;

/* After an error, the closing brace ends the block as well as a '\n'. */
kvbody		: '{' kvlines '}'
		| '{' kvlines kvline '}'
		| '{' kvlines error '}'		{
			memset(&kv, 0, sizeof(kv));
			copts.kv_bad = 1;
			yyerrok;
		}
		;

kvlines		: /* empty */
		| kvlines '\n'
		| kvlines kvline '\n'
		| kvlines error '\n'		{
			memset(&kv, 0, sizeof(kv));
			copts.kv_bad = 1;
			yyerrok;
		}
		;

kvline		: kvkey kvvalues		{
			kv.key = $1;
			kv.line = $<lineno>1;
			kv_option();
			memset(&kv, 0, sizeof(kv));
		}
		;

kvkey		: STRING			{ $$ = $1; }
		| TIMEOUT			{ $$ = "timeout"; }
		| PASSWORD			{ $$ = "password"; }
		;

kvvalues	: kvvalue
		| kvvalues kvvalue
		;

kvvalue		: value				{
			if (kv.n == KV_VALUES_MAX) {
				conf_error("too many values");
				YYERROR;
			}
			kv.v[kv.n++] = $1;
		}
		| PASSWORD			{
			/* PostfixAdmin's column: password-column password */
			if (kv.n == KV_VALUES_MAX) {
				conf_error("too many values");
				YYERROR;
			}
			kv.v[kv.n++] = "password";
		}
		;

checkeropts	: /* empty */
		| checkeropts checkeropt
		;

checkeropt	: ONFAIL value			{
			checker_policy(copts.checker != NULL ?
			    &copts.checker->on_fail : NULL, &copts.on_fail,
			    "on-fail", $2);
		}
		| ONTEMPFAIL value		{
			checker_policy(copts.checker != NULL ?
			    &copts.checker->on_tempfail : NULL,
			    &copts.on_tempfail, "on-tempfail", $2);
		}
		| MECHANISMS {
			if (copts.mechanisms++ > 0)
				conf_error("checker \"%s\": mechanisms given "
				    "twice", copts.name);
		} mechlist
		;

mechlist	: mechanism
		| mechlist mechanism
		;

mechanism	: STRING			{ checker_mechanism($1); }
		;

/*
 * trusted-networks { 10.0.0.0/8 ::1 }: the separators and the lines of
 * local-domains, and the same recovery.
 */
netlist		: network
		| netlist sep network
		;

network		: value				{
			(void)trusted_network_add($1);
		}
		;

words		: word				{
			memset(&stmtw, 0, sizeof(stmtw));
			words_add($1);
		}
		| words word			{ words_add($2); }
		;

word		: value				{ $$ = $1; }
		| TIMEOUT			{ $$ = "timeout"; }
		;

/* In milliseconds; a bare number is seconds. */
duration	: NUMBER			{
			if ($1 < 0 || $1 > INT64_MAX / 1000) {
				conf_error("invalid duration \"%lld\"",
				    (long long)$1);
				YYERROR;
			}
			$$ = $1 * 1000;
		}
		| STRING			{
			if (($$ = parse_duration($1)) == -1) {
				conf_error("invalid duration \"%s\"", $1);
				YYERROR;
			}
		}
		;

/* In octets; K, M and G multiply by 1024, 1024^2 and 1024^3. */
size		: NUMBER			{
			if ($1 < 1 || (uint64_t)$1 > MSG_SIZE_MAX) {
				conf_error("max-message-size must be between "
				    "1 and 4G");
				YYERROR;
			}
			$$ = $1;
		}
		| STRING			{
			if (($$ = parse_size($1)) == -1) {
				conf_error("invalid size \"%s\"", $1);
				YYERROR;
			}
			if ($$ < 1 || (uint64_t)$$ > MSG_SIZE_MAX) {
				conf_error("max-message-size must be between "
				    "1 and 4G");
				YYERROR;
			}
		}
		;

%%

struct keyword {
	const char	*name;
	int		 token;
};

/* Sorted by strcmp(3): lookup() uses bsearch(3). */
static const struct keyword keywords[] = {
	{ "auth",		AUTH },
	{ "auth-user",		AUTHUSER },
	{ "bare-newlines",	BARENEWLINES },
	{ "bearer-token-file",	BEARERTOKENFILE },
	{ "cache",		CACHE },
	{ "cert",		CERT },
	{ "checker",		CHECKER },
	{ "chroot",		CHROOT },
	{ "console",		CONSOLE },
	{ "control-socket",	CONTROLSOCKET },
	{ "deliver",		DELIVER },
	{ "early-talkers",	EARLYTALKERS },
	{ "failure-delay",	FAILUREDELAY },
	{ "failure-delay-max",	FAILUREDELAYMAX },
	{ "from",		FROM },
	{ "grace-period",	GRACEPERIOD },
	{ "hostname",		HOSTNAME },
	{ "include",		INCLUDE },
	{ "key",		KEY },
	{ "key-processes",	KEYPROCESSES },
	{ "keys-user",		KEYSUSER },
	{ "ldap",		LDAP },
	{ "limit",		LIMIT },
	{ "listen",		LISTEN },
	{ "lmdb",		LMDB },
	{ "local-domains",	LOCALDOMAINS },
	{ "max-auth-failures",	MAXAUTHFAILURES },
	{ "max-errors",		MAXERRORS },
	{ "max-message-size",	MAXMESSAGESIZE },
	{ "max-recipients",	MAXRECIPIENTS },
	{ "max-sessions",	MAXSESSIONS },
	{ "max-sessions-per-address", MAXSESSIONSPERADDR },
	{ "mechanisms",		MECHANISMS },
	{ "metrics",		METRICS },
	{ "name",		NAME },
	{ "oauth",		OAUTH },
	{ "on",			ON },
	{ "on-fail",		ONFAIL },
	{ "on-tempfail",	ONTEMPFAIL },
	{ "optional",		OPTIONAL },
	{ "password",		PASSWORD },
	{ "passwordless",	PASSWORDLESS },
	{ "penalty",		PENALTY },
	{ "penalty-prefix6",	PENALTYPREFIX6 },
	{ "pki",		PKI },
	{ "port",		PORT },
	{ "proxy-protocol",	PROXYPROTOCOL },
	{ "relay",		RELAY },
	{ "require",		REQUIRE },
	{ "scram-iterations",	SCRAMITERATIONS },
	{ "sender-check",	SENDERCHECK },
	{ "smtps",		SMTPS },
	{ "spool",		SPOOL },
	{ "spool-min-free",	SPOOLMINFREE },
	{ "sql",		SQL },
	{ "state",		STATE },
	{ "static",		STATIC },
	{ "timeout",		TIMEOUT },
	{ "tls",		TLS },
	{ "tls-ciphers",	TLSCIPHERS },
	{ "tls-min-version",	TLSMINVERSION },
	{ "tls-ticket-lifetime", TLSTICKETLIFETIME },
	{ "tls-tickets",	TLSTICKETS },
	{ "to",			TO },
	{ "trusted-networks",	TRUSTEDNETWORKS },
	{ "user",		USER },
	{ "workers",		WORKERS },
};

static int
keyword_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct keyword *)e)->name);
}

static int
lookup(const char *s)
{
	const struct keyword	*kw;

	kw = bsearch(s, keywords, sizeof(keywords) / sizeof(keywords[0]),
	    sizeof(keywords[0]), keyword_cmp);
	return kw != NULL ? kw->token : STRING;
}

/*
 * Errors.  The first of a parse is kept for config_errmsg(): master
 * shows it to the administrator who asked for a reload, while the log
 * has them all.
 */
static void
conf_verror(const char *name, int line, const char *fmt, va_list ap)
{
	char	 msg[1024], full[1200];

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (name == NULL)
		(void)snprintf(full, sizeof(full), "%s", msg);
	else if (line <= 0)
		(void)snprintf(full, sizeof(full), "%s: %s", name, msg);
	else
		(void)snprintf(full, sizeof(full), "%s:%d: %s", name, line,
		    msg);
	log_warnx("%s", full);
	if (errors++ == 0)
		(void)strlcpy(errmsg, full, sizeof(errmsg));
}

static void
conf_error_at(const char *name, int line, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror(name, line, fmt, ap);
	va_end(ap);
}

/* An error on the line being parsed. */
static void
conf_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror(file->name, yylval.lineno, fmt, ap);
	va_end(ap);
}

/*
 * The lexer reports its own errors and returns ERROR, which the
 * grammar cannot shift: the "syntax error" that follows says nothing
 * new, so yyerror() drops it.
 */
static void
lex_error(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	conf_verror(file->name, yylval.lineno, fmt, ap);
	va_end(ap);
	lexerr_pending = 1;
}

/*
 * Called by the generated parser only.  A bare "syntax error" helps
 * nobody, so say what was missing or where the parse stopped.
 */
static void
yyerror(const char *msg)
{
	if (lexerr_pending) {
		lexerr_pending = 0;
		return;
	}
	if (strcmp(msg, "syntax error") != 0) {
		conf_error("%s", msg);
		return;
	}
	/* The end, or a keyword, where a value was due: the list is open. */
	if (in_list && cur_tok == 0) {
		conf_error("%s: missing \"}\"", list_keyword);
		return;
	}
	if (in_list && cur_tok > 255 && cur_tok != STRING &&
	    cur_tok != NUMBER && cur_tok != ERROR) {
		conf_error("%s: missing \"}\" before \"%s\"", list_keyword,
		    cur_text);
		return;
	}
	if ((cur_tok == '\n' || cur_tok == 0) && stmt_keyword[0] != '\0') {
		if (prev_is_keyword && strcmp(prev_text, stmt_keyword) != 0)
			conf_error("%s: missing value after \"%s\"",
			    stmt_keyword, prev_text);
		else
			conf_error("%s: missing value", stmt_keyword);
	} else if (cur_tok == '\n')
		conf_error("syntax error at end of line");
	else if (cur_tok == 0)
		conf_error("syntax error at end of file");
	else
		conf_error("syntax error near \"%s\"", cur_text);
}

/*
 * The input.  Each file has its own pushback so that an include can
 * start the new file with a '\n' of its own (the parser wants one
 * after "include FILE") while the including file keeps what it had
 * pushed back.
 */
static int
file_getc(void)
{
	int	 c;

	if ((c = getc(file->stream)) == EOF) {
		/* A last line without '\n' still ends its statement. */
		if (file->lastc != '\n' && !ferror(file->stream)) {
			file->lastc = '\n';
			return '\n';
		}
		return EOF;
	}
	file->lastc = c;
	return c;
}

static int
lgetc(int quotec)
{
	int	 c, next;

 again:
	while (file->ungetlen > 0) {
		c = file->ungetbuf[--file->ungetlen];
		if (c != MACRO_END)
			return c;
		expanding--;
	}

	c = file_getc();
	if (quotec != 0)
		return c;

	/* A backslash at the end of a line continues it. */
	while (c == '\\') {
		if ((next = file_getc()) != '\n') {
			lungetc(next);
			break;
		}
		file->lineno++;
		c = file_getc();
	}

	if (c == EOF && file != topfile) {
		popfile();
		goto again;
	}
	return c;
}

static int
lungetc(int c)
{
	if (c == EOF)
		return EOF;
	if (file->ungetlen >= UNGET_MAX)
		return EOF;
	file->ungetbuf[file->ungetlen++] = c;
	return c;
}

/* Skip to the end of the line, and leave the '\n' for the grammar. */
static int
findeol(void)
{
	int	 c;

	while ((c = lgetc(0)) != EOF) {
		if (c == '\n') {
			lungetc(c);
			break;
		}
	}
	return ERROR;
}

/*
 * A bare word that starts a statement and is no keyword is either a
 * macro definition ("name = value") or a typo: look past the blanks
 * for the '='.
 */
static int
followed_by_equal(void)
{
	int	 c;

	while ((c = lgetc(0)) == ' ' || c == '\t')
		;
	lungetc(c);
	return c == '=';
}

static int
expand_macro(void)
{
	char		 name[LEX_MAX];
	const char	*val;
	size_t		 len = 0, i;
	int		 c;

	while ((c = lgetc(0)) != EOF && (isalnum(c) || c == '_')) {
		if (len + 1 >= sizeof(name)) {
			lex_error("macro name too long");
			return -1;
		}
		name[len++] = c;
	}
	lungetc(c);
	name[len] = '\0';

	if ((val = symget(name)) == NULL) {
		lex_error("macro \"%s\" not defined", name);
		return -1;
	}
	if (file->ungetlen + strlen(val) + 1 > UNGET_MAX) {
		lex_error("macro \"%s\" too long", name);
		return -1;
	}
	/* Its value is read as it is: a macro in it is not expanded. */
	lungetc(MACRO_END);
	expanding++;
	for (i = strlen(val); i > 0; i--)
		lungetc((unsigned char)val[i - 1]);
	return 0;
}

#define allowed_to_end_number(x) \
	(isspace(x) || x == ')' || x == ',' || x == '/' || x == '}' || \
	x == '=' || x == '#')

#define allowed_in_string(x) \
	(isalnum(x) || (ispunct(x) && x != '(' && x != ')' && \
	x != '{' && x != '}' && x != '<' && x != '>' && \
	x != '!' && x != '=' && x != '#' && x != ',' && x != ';' && \
	x != '"' && x != '\''))

static int
lex_quoted(int quotec)
{
	char	 buf[LEX_MAX];
	char	*p = buf;
	int	 c, next;

	for (;;) {
		c = lgetc(quotec);
		if (c == EOF || c == '\n') {
			lungetc(c);
			lex_error("unterminated quoted string");
			return ERROR;
		}
		if (c == '\\') {
			next = lgetc(quotec);
			if (next == quotec || next == '\\')
				c = next;
			else if (next == '\n') {
				file->lineno++;
				continue;
			} else
				lungetc(next);
		} else if (c == quotec)
			break;
		if (p + 1 >= buf + sizeof(buf)) {
			lex_error("string too long");
			return findeol();
		}
		*p++ = c;
	}
	*p = '\0';
	yylval.v.string = pool_strdup(buf);
	explicit_bzero(buf, p - buf);	/* it may be a password */
	if (yylval.v.string == NULL) {
		lex_error("out of memory");
		return findeol();
	}
	return STRING;
}

/* Digits make a NUMBER unless more follows: "30s" is a STRING. */
static int
lex_number(int c)
{
	char		 buf[LEX_MAX];
	char		*p = buf;
	const char	*errstr;

	do {
		*p++ = c;
		if ((size_t)(p - buf) >= sizeof(buf)) {
			lex_error("string too long");
			return findeol();
		}
	} while ((c = lgetc(0)) != EOF && isdigit(c));
	lungetc(c);
	if (!(p == buf + 1 && buf[0] == '-') &&
	    (c == EOF || allowed_to_end_number(c))) {
		*p = '\0';
		yylval.v.number = strtonum(buf, LLONG_MIN, LLONG_MAX, &errstr);
		if (errstr != NULL) {
			lex_error("invalid number \"%s\": %s", buf, errstr);
			return findeol();
		}
		return NUMBER;
	}
	/* Not a number: give the characters back to the word lexer. */
	while (p > buf)
		lungetc((unsigned char)*--p);
	return -1;
}

static int
lex_word(int c)
{
	char	 buf[LEX_MAX];
	char	*p = buf;
	int	 token;

	do {
		*p++ = c;
		if ((size_t)(p - buf) >= sizeof(buf)) {
			lex_error("string too long");
			return findeol();
		}
	} while ((c = lgetc(0)) != EOF && allowed_in_string(c));
	lungetc(c);
	*p = '\0';

	if ((token = lookup(buf)) != STRING)
		return token;
	/* The options of oauth and cache blocks are checked by name. */
	if (stmt_start && kv_depth > 0 && block_depth == kv_depth)
		(void)strlcpy(stmt_keyword, buf, sizeof(stmt_keyword));
	else if (stmt_start && !followed_by_equal()) {
		lex_error("unknown keyword \"%s\"", buf);
		return findeol();
	}
	yylval.v.string = pool_strdup(buf);
	explicit_bzero(buf, p - buf);	/* it may be a password */
	if (yylval.v.string == NULL) {
		lex_error("out of memory");
		return findeol();
	}
	return STRING;
}

static int
lex_token(void)
{
	int	 c, token;

 top:
	while ((c = lgetc(0)) == ' ' || c == '\t')
		;
	yylval.lineno = file->lineno;
	if (c == '#')
		while ((c = lgetc(0)) != '\n' && c != EOF)
			;
	if (c == '$' && !expanding) {
		if (expand_macro() == -1)
			return findeol();
		goto top;
	}

	switch (c) {
	case '\'':
	case '"':
		return lex_quoted(c);
	case '\n':
		file->lineno++;
		return c;
	case EOF:
		/* The file ended with '\n': the last line is the one before. */
		if (file->lineno > 1)
			yylval.lineno = file->lineno - 1;
		return 0;
	}

	if (c == '-' || isdigit(c)) {
		if ((token = lex_number(c)) != -1)
			return token;
		c = lgetc(0);
		if (c == '-')
			return c;
	}
	if (isalnum(c) || c == ':' || c == '_' || c == '/' || c == '.')
		return lex_word(c);
	return c;
}

/* Remembers enough of the last two tokens for yyerror(). */
int
yylex(void)
{
	int	 tok;

	if (stmt_start) {
		lexerr_pending = 0;
		stmt_keyword[0] = '\0';
	}

	tok = lex_token();

	(void)strlcpy(prev_text, cur_text, sizeof(prev_text));
	prev_is_keyword = cur_tok > 255 && cur_tok != STRING &&
	    cur_tok != NUMBER && cur_tok != ERROR;
	cur_tok = tok;
	if (tok == STRING)
		(void)strlcpy(cur_text, yylval.v.string, sizeof(cur_text));
	else if (tok == NUMBER)
		(void)snprintf(cur_text, sizeof(cur_text), "%lld",
		    (long long)yylval.v.number);
	else if (tok > 255 && tok != ERROR) {
		const struct keyword	*kw;

		cur_text[0] = '\0';
		for (kw = keywords; kw < keywords +
		    sizeof(keywords) / sizeof(keywords[0]); kw++)
			if (kw->token == tok)
				(void)strlcpy(cur_text, kw->name,
				    sizeof(cur_text));
		if (stmt_start)
			(void)strlcpy(stmt_keyword, cur_text,
			    sizeof(stmt_keyword));
	} else
		(void)snprintf(cur_text, sizeof(cur_text), "%c",
		    tok > 0 && tok < 256 ? tok : '?');

	/*
	 * The names of a local-domains or trusted-networks list are
	 * values, not statements, even at the start of a line:
	 * "example.org" is no unknown keyword.
	 */
	if (tok == '{' && (strcmp(stmt_keyword, "local-domains") == 0 ||
	    strcmp(stmt_keyword, "trusted-networks") == 0)) {
		in_list = 1;
		(void)strlcpy(list_keyword, stmt_keyword,
		    sizeof(list_keyword));
	} else if (tok == '{' && strcmp(prev_text, "from") == 0) {
		/* listen on ... proxy-protocol from { ... } */
		in_list = 1;
		(void)strlcpy(list_keyword, "proxy-protocol",
		    sizeof(list_keyword));
	} else if (tok == '}')
		in_list = 0;

	/*
	 * A closing brace gives the statement its block belongs to back:
	 * "} on-fail" is still the checker's line.
	 */
	if (tok == OAUTH || tok == CACHE || tok == LDAP || tok == SQL)
		kv_pending = 1;
	else if (tok == '\n')
		kv_pending = 0;
	if (tok == '{' && kv_pending) {
		kv_pending = 0;
		kv_depth = block_depth + 1;
	} else if (tok == '}' && block_depth == kv_depth)
		kv_depth = 0;
	if (tok == '{') {
		if (block_depth < BLOCK_DEPTH_MAX)
			(void)strlcpy(block_keyword[block_depth], stmt_keyword,
			    sizeof(block_keyword[block_depth]));
		block_depth++;
	} else if (tok == '}' && block_depth > 0) {
		if (--block_depth < BLOCK_DEPTH_MAX)
			(void)strlcpy(stmt_keyword, block_keyword[block_depth],
			    sizeof(stmt_keyword));
	}
	stmt_start = !in_list && (tok == '\n' || tok == '{');
	return tok;
}

/*
 * Files.  The configuration names the users and the files that master
 * opens as root: whoever can write it owns the daemon.  It holds no
 * secret, unless a static checker keeps passwords in it.
 */
static const char *
file_secrecy(int fd)
{
	struct stat	 st;

	if (fstat(fd, &st) == -1)
		return strerror(errno);
	if (S_ISDIR(st.st_mode))
		return "is a directory";
	if (st.st_uid != 0 && st.st_uid != getuid())
		return "refusing to read: not owned by root or the current "
		    "user";
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return "refusing to read: group or world writable";
	return NULL;
}

static struct file *
pushfile(const char *name, char *err, size_t errlen)
{
	struct file	*nfile;
	const char	*secrecy;

	if ((nfile = calloc(1, sizeof(*nfile))) == NULL) {
		errbuf_set(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if ((nfile->name = strdup(name)) == NULL) {
		errbuf_set(err, errlen, "%s", strerror(errno));
		free(nfile);
		return NULL;
	}
	if ((nfile->stream = fopen(nfile->name, "r")) == NULL) {
		errbuf_set(err, errlen, "%s", strerror(errno));
		free(nfile->name);
		free(nfile);
		return NULL;
	}
	if ((secrecy = file_secrecy(fileno(nfile->stream))) != NULL) {
		errbuf_set(err, errlen, "%s", secrecy);
		fclose(nfile->stream);
		free(nfile->name);
		free(nfile);
		return NULL;
	}
	/* An included file starts with a '\n' of ours: see include_file(). */
	nfile->lineno = TAILQ_EMPTY(&files) ? 1 : 0;
	nfile->lastc = '\n';
	TAILQ_INSERT_TAIL(&files, nfile, entry);
	return nfile;
}

static void
popfile(void)
{
	struct file	*prev;

	prev = TAILQ_PREV(file, files, entry);
	while (file->ungetlen > 0)
		if (file->ungetbuf[--file->ungetlen] == MACRO_END)
			expanding--;
	TAILQ_REMOVE(&files, file, entry);
	fclose(file->stream);
	free(file->name);
	free(file);
	if (file == topfile)
		topfile = NULL;
	file = prev;
	if (include_depth > 0)
		include_depth--;
}

/*
 * A relative name is taken from the including file's directory, so a
 * configuration and its parts can move together.
 */
static int
include_file(const char *name)
{
	struct file	*nfile;
	const char	*slash;
	char		 why[128];
	char		 path[PATH_MAX];
	int		 len;

	if (include_depth >= INCLUDE_DEPTH_MAX) {
		conf_error("include \"%s\": nested too deeply", name);
		return -1;
	}
	if (name[0] != '/' && (slash = strrchr(file->name, '/')) != NULL)
		len = snprintf(path, sizeof(path), "%.*s/%s",
		    (int)(slash - file->name), file->name, name);
	else
		len = snprintf(path, sizeof(path), "%s", name);
	if (len < 0 || (size_t)len >= sizeof(path)) {
		conf_error("include \"%s\": path too long", name);
		return -1;
	}
	if ((nfile = pushfile(path, why, sizeof(why))) == NULL) {
		conf_error("include \"%s\": %s", name, why);
		return -1;
	}
	include_depth++;
	file = nfile;
	/* The grammar wants "include FILE" to end with '\n'. */
	lungetc('\n');
	return 0;
}

/* Macros. */
static int
symset(const char *name, const char *value)
{
	struct sym	*sym;
	char		*v;

	TAILQ_FOREACH(sym, &symhead, entry)
		if (strcmp(sym->name, name) == 0)
			break;
	if (sym != NULL) {
		if ((v = strdup(value)) == NULL)
			return -1;
		freezero(sym->value, strlen(sym->value) + 1);
		sym->value = v;
		return 0;
	}
	if ((sym = calloc(1, sizeof(*sym))) == NULL)
		return -1;
	if ((sym->name = strdup(name)) == NULL ||
	    (sym->value = strdup(value)) == NULL) {
		free(sym->name);
		free(sym);
		return -1;
	}
	TAILQ_INSERT_TAIL(&symhead, sym, entry);
	return 0;
}

static const char *
symget(const char *name)
{
	struct sym	*sym;

	TAILQ_FOREACH(sym, &symhead, entry)
		if (strcmp(sym->name, name) == 0)
			return sym->value;
	return NULL;
}

static void
symfree(void)
{
	struct sym	*sym;

	while ((sym = TAILQ_FIRST(&symhead)) != NULL) {
		TAILQ_REMOVE(&symhead, sym, entry);
		free(sym->name);
		freezero(sym->value, strlen(sym->value) + 1);
		free(sym);
	}
}

static char *
pool_strdup(const char *s)
{
	struct pooled_string	*ps;
	size_t			 len = strlen(s) + 1;

	if ((ps = malloc(sizeof(*ps) + len)) == NULL)
		return NULL;
	memcpy(ps->s, s, len);
	SLIST_INSERT_HEAD(&string_pool, ps, entry);
	return ps->s;
}

static void
pool_free(void)
{
	struct pooled_string	*ps;

	/* A static checker's passwords are among them. */
	while ((ps = SLIST_FIRST(&string_pool)) != NULL) {
		SLIST_REMOVE_HEAD(&string_pool, entry);
		freezero(ps, sizeof(*ps) + strlen(ps->s) + 1);
	}
}

/* Values. */
static int
copy_value(char *dst, size_t size, const char *src, const char *what)
{
	if (src[0] == '\0') {
		conf_error("%s: empty value", what);
		return -1;
	}
	if (strlcpy(dst, src, size) >= size) {
		conf_error("%s: too long (max %zu)", what, size - 1);
		return -1;
	}
	return 0;
}

/* master may chdir("/") before it opens anything: insist on "/". */
static int
copy_path(char *dst, size_t size, const char *src, const char *what)
{
	if (src[0] != '/') {
		conf_error("%s: \"%s\" is not an absolute path", what, src);
		return -1;
	}
	return copy_value(dst, size, src, what);
}

static int
valid_macro_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

/*
 * It goes into EHLO and Received:, and a local domain is compared with
 * the domain of addresses: dot-separated labels of letters, digits and
 * '-' (RFC 1123 2.1), none empty, none longer than 63 characters, none
 * starting or ending with '-'.
 */
static int
valid_hostname(const char *s)
{
	size_t	 len;

	if (strlen(s) > 253)
		return 0;
	for (;;) {
		for (len = 0; isalnum((unsigned char)s[len]) ||
		    s[len] == '-'; len++)
			;
		if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
			return 0;
		s += len;
		if (*s == '\0')
			return 1;
		if (*s++ != '.')
			return 0;
	}
}

/* smtp://host:port or lmtp://host:port; an IPv6 host is bracketed. */
static int
valid_relay_url(const char *url)
{
	const char	*host, *end, *p;
	char		 addr[INET6_ADDRSTRLEN];
	struct in6_addr	 in6;
	size_t		 len;

	if (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "lmtp://", 7) != 0)
		return 0;
	host = url + 7;
	if (*host == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return 0;
		len = end - host - 1;
		if (len == 0 || len >= sizeof(addr))
			return 0;
		memcpy(addr, host + 1, len);
		addr[len] = '\0';
		if (inet_pton(AF_INET6, addr, &in6) != 1)
			return 0;
		p = end + 1;
	} else {
		for (p = host; *p != '\0' && *p != ':'; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' &&
			    *p != '.' && *p != '_')
				return 0;
		if (p == host)
			return 0;
	}
	if (*p++ != ':')
		return 0;
	for (len = 0; isdigit((unsigned char)p[len]); len++)
		;
	if (len == 0 || len > 5 || p[len] != '\0')
		return 0;
	return atoi(p) >= 1 && atoi(p) <= 65535;
}

/* An integer setting: its bounds are in the message. */
static int
set_number(int *dst, int64_t n, int64_t min, int64_t max, const char *what)
{
	if (n < min || n > max) {
		conf_error("%s must be between %lld and %lld", what,
		    (long long)min, (long long)max);
		return -1;
	}
	*dst = n;
	return 0;
}

/* "timeout command|data|session|proxy DURATION": whole seconds, 1s to 24h. */
static int
set_timeout(const char *kind, int64_t ms)
{
	int	*dst;

	if (strcmp(kind, "command") == 0)
		dst = &conf->timeout_command;
	else if (strcmp(kind, "data") == 0)
		dst = &conf->timeout_data;
	else if (strcmp(kind, "session") == 0)
		dst = &conf->timeout_session;
	else if (strcmp(kind, "proxy") == 0)
		dst = &conf->timeout_proxy;
	else {
		conf_error("unknown timeout \"%s\": want command, data, "
		    "session or proxy", kind);
		return -1;
	}
	if (ms % 1000 != 0) {
		conf_error("timeout %s must be a whole number of seconds",
		    kind);
		return -1;
	}
	if (ms < 1000 || ms / 1000 > TIMEOUT_MAX) {
		conf_error("timeout %s must be between 1s and 24h", kind);
		return -1;
	}
	*dst = ms / 1000;
	return 0;
}

/*
 * Stored in lower case, as the domains of addresses are compared
 * without regard to case (RFC 5321 2.4).
 */
static int
local_domain_add(const char *name)
{
	struct local_domain	*d, *o;
	char			*p;

	if (!valid_hostname(name)) {
		conf_error("invalid local domain \"%s\"", name);
		return -1;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		conf_error("out of memory");
		return -1;
	}
	if (copy_value(d->name, sizeof(d->name), name, "local domain") == -1) {
		free(d);
		return -1;
	}
	for (p = d->name; *p != '\0'; p++)
		*p = tolower((unsigned char)*p);
	TAILQ_FOREACH(o, &conf->local_domains, entry)
		if (strcmp(o->name, d->name) == 0) {
			conf_error("duplicate local domain \"%s\"", d->name);
			free(d);
			return -1;
		}
	TAILQ_INSERT_TAIL(&conf->local_domains, d, entry);
	return 0;
}

/*
 * The workers hand the list to SSL_CTX_set_cipher_list(3), which fails
 * only when nothing at all is selected: say so now, not when a worker
 * starts.  It is the list of TLS 1.2; TLS 1.3 suites are not in it.
 * The workers add "!kRSA" (no RSA key exchange: worker/tls.c), so a
 * list of only such ciphers selects nothing either.
 */
static int
valid_cipher_list(const char *list)
{
	SSL_CTX	*ctx;
	char	 full[CONF_CIPHERS_MAX + 16];
	int	 ok;

	if ((ctx = SSL_CTX_new(TLS_method())) == NULL) {
		ERR_clear_error();
		return 1;	/* the worker will tell */
	}
	(void)snprintf(full, sizeof(full), "%s:!kRSA", list);
	ok = SSL_CTX_set_cipher_list(ctx, full) == 1;
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return ok;
}

/* Digits then a unit; -1 if malformed or too large. */
static int64_t
parse_unit(const char *s, const char **unit)
{
	int64_t	 n = 0;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++) {
		if (n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (*s - '0');
	}
	*unit = s;
	return n;
}

static int64_t
parse_duration(const char *s)
{
	const char	*unit;
	int64_t		 n, mult;

	if ((n = parse_unit(s, &unit)) == -1)
		return -1;
	if (strcmp(unit, "ms") == 0)
		mult = 1;
	else if (strcmp(unit, "s") == 0 || *unit == '\0')
		mult = 1000;
	else if (strcmp(unit, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(unit, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(unit, "d") == 0)
		mult = 86400 * 1000;
	else
		return -1;
	if (n > INT64_MAX / mult)
		return -1;
	return n * mult;
}

static int64_t
parse_size(const char *s)
{
	const char	*unit;
	int64_t		 n, mult;

	if ((n = parse_unit(s, &unit)) == -1)
		return -1;
	if (*unit == '\0')
		mult = 1;
	else if (unit[1] != '\0')
		return -1;
	else if (*unit == 'K' || *unit == 'k')
		mult = 1024;
	else if (*unit == 'M' || *unit == 'm')
		mult = 1024 * 1024;
	else if (*unit == 'G' || *unit == 'g')
		mult = 1024 * 1024 * 1024;
	else
		return -1;
	if (n > INT64_MAX / mult)
		return -1;
	return n * mult;
}

/*
 * The spool's free-space floor: 0 (none) up to SPOOL_MIN_FREE_MAX; like
 * Postfix's queue_minfree, it keeps room for messages already accepted
 * and for everything else on that file system.
 */
static int
set_spool_min_free(int64_t n)
{
	if (n < 0 || (uint64_t)n > SPOOL_MIN_FREE_MAX) {
		conf_error("spool-min-free must be between 0 and 1024G");
		return -1;
	}
	conf->spool_min_free = (uint64_t)n;
	return 0;
}

/* Privileges are dropped to this user: a typo must not wait for it. */
static int
set_user(char *dst, size_t size, const char *name, const char *what)
{
	if (copy_value(dst, size, name, what) == -1)
		return -1;
	if (getpwnam(name) == NULL) {
		conf_error("unknown user \"%s\"", name);
		return -1;
	}
	return 0;
}

/*
 * Numeric addresses only, besides "localhost" and "*": a name that
 * resolves differently tomorrow must not move a listening socket.
 */
static int
listener_resolve(struct listener *l, const char *address, int port)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&l->ss;
	struct addrinfo		 hints, *res;
	char			 portstr[8];

	if (strcmp(address, "*") == 0)
		address = "0.0.0.0";
	else if (strcmp(address, "localhost") == 0)
		address = "127.0.0.1";

	memset(&l->ss, 0, sizeof(l->ss));
	if (strchr(address, ':') == NULL) {
		/* inet_pton: getaddrinfo would take "127.1" too. */
		if (inet_pton(AF_INET, address, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		l->sslen = sizeof(*sin);
		return 0;
	}

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET6;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	(void)snprintf(portstr, sizeof(portstr), "%d", port);
	if (getaddrinfo(address, portstr, &hints, &res) != 0)
		return -1;
	if (res->ai_addrlen > sizeof(l->ss)) {
		freeaddrinfo(res);
		return -1;
	}
	memcpy(&l->ss, res->ai_addr, res->ai_addrlen);
	l->sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int
sockaddr_equal(const struct sockaddr_storage *a,
    const struct sockaddr_storage *b)
{
	const struct sockaddr_in	*a4, *b4;
	const struct sockaddr_in6	*a6, *b6;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET) {
		a4 = (const struct sockaddr_in *)a;
		b4 = (const struct sockaddr_in *)b;
		return a4->sin_port == b4->sin_port &&
		    a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	}
	a6 = (const struct sockaddr_in6 *)a;
	b6 = (const struct sockaddr_in6 *)b;
	return a6->sin6_port == b6->sin6_port &&
	    a6->sin6_scope_id == b6->sin6_scope_id &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
}

/* metrics listen on: once, its own address, not an SMTP listener's. */
static int
metrics_listen(const char *address, int64_t port)
{
	struct listener	*l = &conf->metrics.listener, *o;

	if (conf->metrics.enabled) {
		conf_error("metrics listen given twice");
		return -1;
	}
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	(void)strlcpy(l->name, "metrics", sizeof(l->name));
	if (listener_resolve(l, address, (int)port) == -1) {
		conf_error("invalid metrics listen address \"%s\"", address);
		return -1;
	}
	TAILQ_FOREACH(o, &conf->listeners, entry)
		if (sockaddr_equal(&o->ss, &l->ss)) {
			conf_error("metrics listen on %s port %d: an SMTP "
			    "listener's address", listener_address(l),
			    listener_port(l));
			return -1;
		}
	conf->metrics.enabled = 1;
	return 0;
}

static int
listener_add(const char *address, int64_t port, struct listen_opts *lo)
{
	struct listener		*l, *o;
	char			 name[CONF_NAME_MAX];

	if ((l = calloc(1, sizeof(*l))) == NULL) {
		conf_error("out of memory");
		return -1;
	}
	l->fd = -1;
	l->flags = lo->flags;
	if (listener_resolve(l, address, port) == -1) {
		conf_error("invalid listen address \"%s\"", address);
		goto fail;
	}
	if (lo->name != NULL) {
		if (copy_value(l->name, sizeof(l->name), lo->name,
		    "listener name") == -1)
			goto fail;
	} else {
		if (l->ss.ss_family == AF_INET6)
			(void)snprintf(name, sizeof(name), "[%s]:%d",
			    listener_address(l), listener_port(l));
		else
			(void)snprintf(name, sizeof(name), "%s:%d",
			    listener_address(l), listener_port(l));
		(void)strlcpy(l->name, name, sizeof(l->name));
	}
	if (lo->pki != NULL && copy_value(l->pki, sizeof(l->pki), lo->pki,
	    "listener pki") == -1)
		goto fail;
	l->proxy_nfrom = lo->proxy_nfrom;
	memcpy(l->proxy_from, lo->proxy_from, sizeof(l->proxy_from));

	if (lo->tls && lo->smtps) {
		conf_error("listener \"%s\": tls and smtps are mutually "
		    "exclusive", l->name);
		goto fail;
	}
	if (lo->auth_require && lo->auth_optional) {
		conf_error("listener \"%s\": auth require and auth optional "
		    "are mutually exclusive", l->name);
		goto fail;
	}
	if (conf->metrics.enabled &&
	    sockaddr_equal(&conf->metrics.listener.ss, &l->ss)) {
		conf_error("listener on %s port %d: the metrics address",
		    listener_address(l), listener_port(l));
		goto fail;
	}
	TAILQ_FOREACH(o, &conf->listeners, entry) {
		if (sockaddr_equal(&o->ss, &l->ss)) {
			conf_error("duplicate listener on %s port %d",
			    listener_address(l), listener_port(l));
			goto fail;
		}
		if (strcmp(o->name, l->name) == 0) {
			conf_error("duplicate listener name \"%s\"", l->name);
			goto fail;
		}
	}
	if (norigins >= CONF_LISTENERS_MAX) {
		conf_error("too many listeners (max %d)", CONF_LISTENERS_MAX);
		goto fail;
	}
	if ((origins[norigins].file = strdup(file->name)) == NULL) {
		conf_error("out of memory");
		goto fail;
	}
	origins[norigins].listener = l;
	origins[norigins].line = yylval.lineno;
	norigins++;
	TAILQ_INSERT_TAIL(&conf->listeners, l, entry);
	return 0;

 fail:
	free(l);
	return -1;
}

static int
pki_add(struct pki_opts *po)
{
	struct pki	*p, *o;

	TAILQ_FOREACH(o, &conf->pkis, entry)
		if (strcmp(o->name, po->name) == 0) {
			conf_error("duplicate pki \"%s\"", po->name);
			return -1;
		}
	if (po->cert == NULL) {
		conf_error("pki \"%s\": missing cert", po->name);
		return -1;
	}
	if (po->key == NULL) {
		conf_error("pki \"%s\": missing key", po->name);
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		conf_error("out of memory");
		return -1;
	}
	if (copy_value(p->name, sizeof(p->name), po->name, "pki name") == -1 ||
	    copy_path(p->cert_file, sizeof(p->cert_file), po->cert,
	    "cert") == -1 ||
	    copy_path(p->key_file, sizeof(p->key_file), po->key,
	    "key") == -1) {
		free(p);
		return -1;
	}
	TAILQ_INSERT_TAIL(&conf->pkis, p, entry);
	where_note(p, po->line);
	return 0;
}

/*
 * "checker NAME": the checker joins the list now, at the line of its
 * name, whatever follows; an error leaves copts.checker NULL.
 */
static void
checker_begin(const char *name, int line)
{
	struct checker_conf	*c, *o;
	int			 n = 0;

	memset(&copts, 0, sizeof(copts));
	copts.name = name;
	copts.line = line;
	TAILQ_FOREACH(o, &conf->checkers, entry) {
		if (strcmp(o->name, name) == 0) {
			conf_error_at(file->name, line,
			    "duplicate checker \"%s\"", name);
			return;
		}
		n++;
	}
	if (n >= CONF_CHECKERS_MAX) {
		conf_error_at(file->name, line, "too many checkers (max %d)",
		    CONF_CHECKERS_MAX);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		conf_error_at(file->name, line, "out of memory");
		return;
	}
	if (copy_value(c->name, sizeof(c->name), name, "checker name") == -1) {
		free(c);
		return;
	}
	c->on_fail = CHAIN_CONTINUE;
	c->on_tempfail = CHAIN_CONTINUE;
	c->mechanisms = 0;		/* every one its type can verify */
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);
	copts.checker = c;
}

static void
checker_set_type(enum checker_type type, const char *path)
{
	copts.type = type;
	if (copts.checker == NULL)
		return;
	copts.checker->type = type;
	if (type == CHECKER_OAUTH) {
		struct oauth_conf	*o = &copts.checker->oauth;

		o->client_auth = OAUTH_CLIENT_BASIC;
		o->algorithms = JWT_ALG_RS256 | JWT_ALG_ES256 | JWT_ALG_EDDSA;
		o->leeway = DEFAULT_OAUTH_LEEWAY;
		o->timeout = DEFAULT_OAUTH_TIMEOUT;
		o->connect_timeout = DEFAULT_OAUTH_CONNECT_TIMEOUT;
		o->max_requests = DEFAULT_OAUTH_MAX_REQUESTS;
		o->breaker = DEFAULT_OAUTH_BREAKER;
		o->breaker_time = DEFAULT_OAUTH_BREAKER_TIME;
		o->jwks_refresh = DEFAULT_OAUTH_JWKS_REFRESH;
		o->jwks_interval = DEFAULT_OAUTH_JWKS_INTERVAL;
		o->jwks_max_age = DEFAULT_OAUTH_JWKS_MAX_AGE;
		o->discovery = -1;	/* oauth_check() decides */
		return;
	}
	if (type == CHECKER_LDAP) {
		struct ldap_conf	*l = &copts.checker->ldap;

		l->timeout = DEFAULT_LDAP_TIMEOUT;
		l->connections = DEFAULT_LDAP_CONNECTIONS;
		(void)strlcpy(l->filter, DEFAULT_LDAP_FILTER,
		    sizeof(l->filter));
		(void)strlcpy(l->password_attr, "userPassword",
		    sizeof(l->password_attr));
		return;
	}
	if (type == CHECKER_SQL) {
		struct sql_conf	*s;

		if ((s = calloc(1, sizeof(*s))) == NULL) {
			conf_error("out of memory");
			copts.checker = NULL;
			return;
		}
		(void)strlcpy(s->password_column, "password",
		    sizeof(s->password_column));
		s->connections = DEFAULT_SQL_CONNECTIONS;
		s->timeout = DEFAULT_SQL_TIMEOUT;
		s->statement_timeout = DEFAULT_SQL_STATEMENT_TIMEOUT;
		s->queue = DEFAULT_SQL_QUEUE;
		copts.checker->sql = s;
		return;
	}
	if (type == CHECKER_CACHE)
		copts.checker->cache.ttl = DEFAULT_CACHE_TTL;
	if (type != CHECKER_LMDB && type != CHECKER_CACHE)
		return;
	if (path == NULL)
		path = PORTCULLIS_DB;
	if (copy_path(copts.checker->path, sizeof(copts.checker->path), path,
	    type == CHECKER_LMDB ? "lmdb" : "cache") == -1)
		copts.checker = NULL;
}

static void
checker_end(void)
{
	if (copts.type == CHECKER_STATIC && copts.nusers == 0)
		conf_error_at(file->name, copts.line,
		    "checker \"%s\": no users", copts.name);
	/* With an option in error, what is missing follows from it. */
	if (copts.type == CHECKER_OAUTH && copts.checker != NULL &&
	    !copts.kv_bad)
		oauth_check(copts.checker);
	if (copts.type == CHECKER_LDAP && copts.checker != NULL &&
	    !copts.kv_bad)
		ldap_check(copts.checker);
	if (copts.type == CHECKER_SQL && copts.checker != NULL &&
	    !copts.kv_bad)
		sql_check(copts.checker);
	if (copts.type == CHECKER_CACHE && ncache_checkers++ > 0)
		conf_error_at(file->name, copts.line,
		    "checker \"%s\": only one cache checker may be "
		    "configured", copts.name);
	else if (copts.type == CHECKER_CACHE && copts.checker != NULL) {
		/* A miss is a fail: the provider must be asked next. */
		if (copts.checker->on_fail == CHAIN_STOP)
			conf_error_at(file->name, copts.line, "checker \"%s\": "
			    "a cache cannot take on-fail stop: a miss would "
			    "end the chain", copts.name);
		/* cache_check(), at the end, speaks of this line. */
		if ((cache_origin.file = pool_strdup(file->name)) == NULL)
			conf_error("out of memory");
		cache_origin.line = copts.line;
	}
	memset(&copts, 0, sizeof(copts));
}

/* on-fail and on-tempfail; dst is NULL when the checker is in error. */
static void
checker_policy(enum chain_policy *dst, int *given, const char *what,
    const char *value)
{
	enum chain_policy	 policy;

	if ((*given)++ > 0) {
		conf_error("checker \"%s\": %s given twice", copts.name, what);
		return;
	}
	if (strcmp(value, "continue") == 0)
		policy = CHAIN_CONTINUE;
	else if (strcmp(value, "stop") == 0)
		policy = CHAIN_STOP;
	else {
		conf_error("invalid %s \"%s\": want continue or stop", what,
		    value);
		return;
	}
	if (dst != NULL)
		*dst = policy;
}

/* The kinds of checker: their names and what they can verify. */
static const struct checker_kind {
	enum checker_type	 type;
	const char		*name;
	uint32_t		 kinds;		/* CRED_* */
} checker_kinds[] = {
	{ CHECKER_LMDB,		"lmdb",		CRED_PASSWORD | CRED_SCRAM },
	{ CHECKER_STATIC,	"static",	CRED_PASSWORD },
	{ CHECKER_OAUTH,	"oauth",	CRED_PASSWORD | CRED_TOKEN },
	{ CHECKER_CACHE,	"cache",	CRED_PASSWORD | CRED_TOKEN },
	{ CHECKER_LDAP,		"ldap",		CRED_PASSWORD },
	{ CHECKER_SQL,		"sql",		CRED_PASSWORD },
};

static const struct checker_kind *
checker_kind(enum checker_type type)
{
	size_t	 i;

	for (i = 0; i < sizeof(checker_kinds) / sizeof(checker_kinds[0]); i++)
		if (checker_kinds[i].type == type)
			return &checker_kinds[i];
	return NULL;
}

/* The mechanisms a type of checker can verify. */
static uint32_t
checker_can_verify(enum checker_type type)
{
	const struct checker_kind	*k = checker_kind(type);

	return k != NULL ? mech_of_kinds(k->kinds) : 0;
}

/*
 * What a configured checker verifies: as configured, or all its type
 * can (the worker's view, for EHLO; authd asks its checker table).
 */
uint32_t
conf_checker_mechanisms(const struct checker_conf *c)
{
	/*
	 * SCRAM only when named: msmtp and gsasl take the strongest
	 * mechanism offered and do not fall back, so offering it to a
	 * store whose users have no SCRAM keys yet (imported hashes, a
	 * store just upgraded) would lock them out.
	 */
	return c->mechanisms != 0 ? c->mechanisms :
	    checker_can_verify(c->type) & ~SASL_SCRAM_MECHS;
}

static const char *
checker_type_name(enum checker_type type)
{
	const struct checker_kind	*k = checker_kind(type);

	return k != NULL ? k->name : "?";
}

static void
checker_mechanism(const char *name)
{
	const struct sasl_mech	*m;

	if ((m = mech_by_name(name)) == NULL) {
		conf_error("unknown mechanism \"%s\"", name);
		return;
	}
	if (m->bit == 0) {
		conf_error("mechanism \"%s\" not supported yet", m->name);
		return;
	}
	if (copts.type != 0 && (checker_can_verify(copts.type) & m->bit) == 0) {
		conf_error("checker \"%s\" (%s) cannot verify %s",
		    copts.name, checker_type_name(copts.type), m->name);
		return;
	}
	if (copts.checker == NULL)
		return;
	if (copts.checker->mechanisms & m->bit) {
		conf_error("checker \"%s\": mechanism %s given twice",
		    copts.name, m->name);
		return;
	}
	copts.checker->mechanisms |= m->bit;
}

/*
 * The options of oauth and cache blocks.  Each takes a fixed number of
 * values; a duplicate is an error, as everywhere else.
 */
enum kv_kind {
	KV_URL,			/* https://, or http:// to loopback */
	KV_STRING,
	KV_DOMAIN,		/* as hostname */
	KV_SCOPE,		/* one scope-token, RFC 6749 3.3 */
	KV_FILE,		/* an absolute path */
	KV_DURATION_MS,
	KV_DURATION_S,
	KV_NUMBER,
	KV_SPECIAL,		/* handled by name */
};

struct kv_option {
	const char	*name;
	enum kv_kind	 kind;
	size_t		 off;		/* in struct checker_conf */
	size_t		 size;		/* strings: of the field */
	int64_t		 min, max;	/* numbers and durations */
};

#define OA(f)	offsetof(struct checker_conf, oauth.f), \
		sizeof(((struct checker_conf *)0)->oauth.f)
#define CA(f)	offsetof(struct checker_conf, cache.f), \
		sizeof(((struct checker_conf *)0)->cache.f)
#define LA(f)	offsetof(struct checker_conf, ldap.f), \
		sizeof(((struct checker_conf *)0)->ldap.f)

static const struct kv_option oauth_options[] = {
	{ "algorithms",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "allowed-clients",	KV_SPECIAL,	0, 0, 0, 0 },
	{ "audience",		KV_STRING,	OA(audience), 0, 0 },
	{ "ca-file",		KV_FILE,	OA(ca_file), 0, 0 },
	{ "circuit-breaker",	KV_SPECIAL,	0, 0, 0, 0 },
	{ "client-auth",	KV_SPECIAL,	0, 0, 0, 0 },
	{ "client-id",		KV_STRING,	OA(client_id), 0, 0 },
	{ "client-id-claim",	KV_STRING,	OA(client_claim), 0, 0 },
	{ "client-secret-file",	KV_FILE,	OA(secret_file), 0, 0 },
	{ "connect-timeout",	KV_DURATION_MS,	OA(connect_timeout), 100,
	    60 * 1000 },
	{ "discovery",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "domain",		KV_DOMAIN,	OA(domain), 0, 0 },
	{ "introspection-url",	KV_URL,		OA(introspection_url), 0, 0 },
	{ "issuer",		KV_STRING,	OA(issuer), 0, 0 },
	{ "jwks-interval",	KV_DURATION_S,	OA(jwks_interval), 1, 86400 },
	{ "jwks-max-age",	KV_DURATION_S,	OA(jwks_max_age), 1,
	    30 * 86400 },
	{ "jwks-refresh",	KV_DURATION_S,	OA(jwks_refresh), 1, 86400 },
	{ "jwks-url",		KV_URL,		OA(jwks_url), 0, 0 },
	{ "jwt-typ",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "leeway",		KV_DURATION_S,	OA(leeway), 0, 600 },
	{ "max-requests",	KV_NUMBER,	OA(max_requests), 1, 1024 },
	{ "scope",		KV_SCOPE,	OA(scope), 0, 0 },
	{ "timeout",		KV_DURATION_MS,	OA(timeout), 100, 120 * 1000 },
	{ "token-url",		KV_URL,		OA(token_url), 0, 0 },
	{ "user-claim",		KV_STRING,	OA(user_claim), 0, 0 },
};

#define SQ(f)	offsetof(struct sql_conf, f), \
		sizeof(((struct sql_conf *)0)->f)

/* Offsets in struct sql_conf (kv_base()). */
static const struct kv_option sql_options[] = {
	{ "address-query",	KV_STRING,	SQ(address_query), 0, 0 },
	{ "addresses-column",	KV_STRING,	SQ(addresses_column), 0, 0 },
	{ "conninfo",		KV_STRING,	SQ(conninfo), 0, 0 },
	{ "connections",	KV_NUMBER,	SQ(connections), 1, 64 },
	{ "enabled-column",	KV_STRING,	SQ(enabled_column), 0, 0 },
	{ "password-column",	KV_STRING,	SQ(password_column), 0, 0 },
	{ "password-file",	KV_FILE,	SQ(password_file), 0, 0 },
	{ "query",		KV_STRING,	SQ(query), 0, 0 },
	{ "queue",		KV_NUMBER,	SQ(queue), 1, 65536 },
	{ "statement-timeout",	KV_DURATION_MS,	SQ(statement_timeout), 10,
	    120 * 1000 },
	{ "timeout",		KV_DURATION_MS,	SQ(timeout), 100, 120 * 1000 },
	{ "user-column",	KV_STRING,	SQ(user_column), 0, 0 },
};

static const struct kv_option cache_options[] = {
	{ "key-file",		KV_FILE,	CA(key_file), 0, 0 },
	{ "negative-ttl",	KV_DURATION_S,	CA(negative_ttl), 0, 3600 },
	{ "stale-if-error",	KV_DURATION_S,	CA(stale_if_error), 0,
	    30 * 86400 },
	{ "ttl",		KV_DURATION_S,	CA(ttl), 1, 30 * 86400 },
};

static const struct kv_option ldap_options[] = {
	{ "base",		KV_STRING,	LA(base), 0, 0 },
	{ "bind-dn",		KV_STRING,	LA(bind_dn), 0, 0 },
	{ "bind-password-file",	KV_FILE,	LA(bind_password_file), 0, 0 },
	{ "ca-file",		KV_FILE,	LA(ca_file), 0, 0 },
	{ "connections",	KV_NUMBER,	LA(connections), 1, 64 },
	{ "disabled-attribute",	KV_STRING,	LA(disabled_attr), 0, 0 },
	{ "disabled-filter",	KV_STRING,	LA(disabled_filter), 0, 0 },
	{ "filter",		KV_STRING,	LA(filter), 0, 0 },
	{ "mail-attributes",	KV_SPECIAL,	0, 0, 0, 0 },
	{ "password",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "password-attribute",	KV_STRING,	LA(password_attr), 0, 0 },
	{ "scope",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "starttls",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "timeout",		KV_DURATION_MS,	LA(timeout), 100, 120 * 1000 },
	{ "url",		KV_SPECIAL,	0, 0, 0, 0 },
	{ "user-attribute",	KV_STRING,	LA(user_attr), 0, 0 },
};

/*
 * An identity provider's URL: TLS, unless it is on this host.  NULL if
 * it is good, else what is wrong with it.
 */
static const char *
oauth_url_problem(const char *u)
{
	static const char *const loopback[] = {
		"http://127.0.0.1", "http://[::1]", "http://localhost",
	};
	static const char	 nottls[] = "not an https URL (http is "
				    "allowed to this host only)";
	const char		*p;
	size_t			 i, n;

	for (p = u; *p != '\0'; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return "blanks or control characters in a URL";
	if (strncasecmp(u, "https://", 8) == 0)
		return u[8] != '\0' && u[8] != '/' ? NULL : "no host";
	/*
	 * The host ends at a port, a path or the end: in
	 * "http://127.0.0.1:80@example.org/", 127.0.0.1:80 is a user name
	 * and the password, and example.org the host.
	 */
	for (i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
		n = strlen(loopback[i]);
		if (strncasecmp(u, loopback[i], n) != 0)
			continue;
		p = u + n;
		if (*p == ':' && isdigit((unsigned char)p[1]))
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if (*p == '/' || *p == '\0')
			return NULL;
	}
	return nottls;
}

/* "1h", "100ms", "30d": the largest unit that says it exactly. */
static const char *
kv_duration_str(int64_t ms, char *buf, size_t size)
{
	static const struct {
		const char	*unit;
		int64_t		 ms;
	} units[] = {
		{ "d", 86400 * 1000 }, { "h", 3600 * 1000 },
		{ "m", 60 * 1000 }, { "s", 1000 },
	};
	size_t	 i;

	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (ms % units[i].ms == 0) {
			(void)snprintf(buf, size, "%lld%s",
			    (long long)(ms / units[i].ms),
			    ms == 0 ? "s" : units[i].unit);
			return buf;
		}
	(void)snprintf(buf, size, "%lldms", (long long)ms);
	return buf;
}

/* allowed-clients ID ...: client ids, kept space-separated */
static int
kv_clients(struct checker_conf *c)
{
	struct oauth_conf	*o = &c->oauth;
	size_t			 n;
	int			 i;

	o->clients[0] = '\0';
	for (i = 0; i < kv.n; i++) {
		/* a scope-token's characters: no blank, quote or control */
		if (!scope_token_valid(kv.v[i])) {
			conf_error("checker \"%s\": allowed-clients: invalid "
			    "client id \"%s\"", c->name, kv.v[i]);
			return -1;
		}
		n = strlen(o->clients);
		if ((size_t)snprintf(o->clients + n, sizeof(o->clients) - n,
		    "%s%s", n > 0 ? " " : "", kv.v[i]) >=
		    sizeof(o->clients) - n) {
			conf_error("checker \"%s\": allowed-clients: too long",
			    c->name);
			return -1;
		}
	}
	return 0;
}

static int
kv_nvalues(struct checker_conf *c)
{
	conf_error("checker \"%s\": %s: wrong number of values", c->name,
	    kv.key);
	return -1;
}

/* The options that take one word of a fixed set. */
struct kv_word {
	const char	*word;
	int		 value;
};

static int
kv_one_of(struct checker_conf *c, const struct kv_word *words, int *dst)
{
	const struct kv_word	*w;
	char			 want[128] = "";

	if (kv.n != 1)
		return kv_nvalues(c);
	for (w = words; w->word != NULL; w++)
		if (strcmp(kv.v[0], w->word) == 0) {
			*dst = w->value;
			return 0;
		}
	for (w = words; w->word != NULL; w++) {
		if (w != words)
			(void)strlcat(want, w[1].word != NULL ? ", " : " or ",
			    sizeof(want));
		(void)strlcat(want, w->word, sizeof(want));
	}
	conf_error("checker \"%s\": invalid %s \"%s\": want %s", c->name,
	    kv.key, kv.v[0], want);
	return -1;
}

static int
kv_algorithms(struct checker_conf *c)
{
	static const struct kv_word	 algs[] = {
		{ "RS256",	JWT_ALG_RS256 },
		{ "ES256",	JWT_ALG_ES256 },
		{ "EdDSA",	JWT_ALG_EDDSA },
		{ NULL,		0 }
	};
	const struct kv_word		*w;
	int				 i;

	c->oauth.algorithms = 0;
	for (i = 0; i < kv.n; i++) {
		for (w = algs; w->word != NULL; w++)
			if (strcmp(kv.v[i], w->word) == 0)
				break;
		if (w->word == NULL) {
			conf_error("checker \"%s\": unsupported algorithm "
			    "\"%s\": want RS256, ES256 or EdDSA", c->name,
			    kv.v[i]);
			return -1;
		}
		c->oauth.algorithms |= (uint32_t)w->value;
	}
	return 0;
}

/* circuit-breaker off | circuit-breaker COUNT DURATION */
static int
kv_breaker(struct checker_conf *c)
{
	struct oauth_conf	*o = &c->oauth;
	int64_t			 ms;
	char			*end;
	long			 k;

	if (kv.n == 1 && strcmp(kv.v[0], "off") == 0) {
		o->breaker = 0;
		return 0;
	}
	if (kv.n != 2)
		return kv_nvalues(c);
	errno = 0;
	k = strtol(kv.v[0], &end, 10);
	if (errno != 0 || *end != '\0' || k < 1 || k > 1000) {
		conf_error("checker \"%s\": circuit-breaker: the count must "
		    "be between 1 and 1000", c->name);
		return -1;
	}
	if ((ms = parse_duration(kv.v[1])) < 1000 || ms > 3600 * 1000 ||
	    ms % 1000 != 0) {
		conf_error("checker \"%s\": circuit-breaker: the time must "
		    "be whole seconds between 1s and 1h", c->name);
		return -1;
	}
	o->breaker = (int)k;
	o->breaker_time = (int)(ms / 1000);
	return 0;
}

/*
 * What follows ldap://: a host and port, or for ldapi:// a socket path
 * percent-encoded (RFC 4516 2; ldapi's usage); no DN, no extensions.
 */
static int
ldap_url_rest_ok(const char *rest)
{
	const char	*p;

	for (p = rest; *p != '\0' && *p != '/'; p++)
		if (!isalnum((unsigned char)*p) && strchr(".-_:[]%", *p) == NULL)
			return 0;
	return *p == '\0' || strcmp(p, "/") == 0;
}

/* url URL ...: ldap://, ldaps:// or ldapi://, tried in this order. */
static int
kv_ldap_urls(struct checker_conf *c)
{
	static const char *const schemes[] = {
		"ldap://", "ldaps://", "ldapi://",
	};
	struct ldap_conf	*l = &c->ldap;
	size_t			 j;
	int			 i;

	if (kv.n > CONF_LDAP_URLS_MAX) {
		conf_error("checker \"%s\": url: more than %d URLs", c->name,
		    CONF_LDAP_URLS_MAX);
		return -1;
	}
	for (i = 0; i < kv.n; i++) {
		for (j = 0; j < sizeof(schemes) / sizeof(schemes[0]); j++)
			if (strncasecmp(kv.v[i], schemes[j],
			    strlen(schemes[j])) == 0)
				break;
		if (j == sizeof(schemes) / sizeof(schemes[0]) ||
		    !ldap_url_rest_ok(kv.v[i] + strlen(schemes[j]))) {
			conf_error("checker \"%s\": url: \"%s\": want "
			    "ldap://, ldaps:// or ldapi://HOST[:PORT]", c->name,
			    kv.v[i]);
			return -1;
		}
		if (copy_value(l->urls[i], sizeof(l->urls[i]), kv.v[i],
		    "url") == -1)
			return -1;
	}
	l->nurls = kv.n;
	return 0;
}

/* mail-attributes ATTR ...: the addresses the user may send as. */
static int
kv_ldap_mail(struct checker_conf *c)
{
	struct ldap_conf	*l = &c->ldap;
	int			 i;

	if (kv.n > CONF_LDAP_MAIL_ATTRS_MAX) {
		conf_error("checker \"%s\": mail-attributes: more than %d",
		    c->name, CONF_LDAP_MAIL_ATTRS_MAX);
		return -1;
	}
	for (i = 0; i < kv.n; i++)
		if (copy_value(l->mail_attrs[i], sizeof(l->mail_attrs[i]),
		    kv.v[i], "mail-attributes") == -1)
			return -1;
	l->nmail_attrs = kv.n;
	return 0;
}

static int
kv_ldap_special(struct checker_conf *c)
{
	static const struct kv_word	 yesno[] = {
		{ "yes", 1 }, { "no", 0 }, { NULL, 0 }
	}, scopes[] = {
		{ "sub", LDAP_SCOPE_CONF_SUB }, { "one", LDAP_SCOPE_CONF_ONE },
		{ "base", LDAP_SCOPE_CONF_BASE }, { NULL, 0 }
	}, methods[] = {
		{ "bind", LDAP_METHOD_BIND },
		{ "attribute", LDAP_METHOD_ATTRIBUTE }, { NULL, 0 }
	};
	struct ldap_conf		*l = &c->ldap;
	int				 v;

	if (strcmp(kv.key, "url") == 0)
		return kv_ldap_urls(c);
	if (strcmp(kv.key, "mail-attributes") == 0)
		return kv_ldap_mail(c);
	if (strcmp(kv.key, "starttls") == 0)
		return kv_one_of(c, yesno, &l->starttls);
	if (strcmp(kv.key, "scope") == 0) {
		if (kv_one_of(c, scopes, &v) == -1)
			return -1;
		l->scope = (enum ldap_scope_conf)v;
		return 0;
	}
	if (kv_one_of(c, methods, &v) == -1)
		return -1;
	l->method = (enum ldap_method)v;
	return 0;
}

static int
kv_special(struct checker_conf *c)
{
	static const struct kv_word	 typs[] = {
		{ "strict", 0 }, { "relaxed", 1 }, { NULL, 0 }
	}, yesno[] = {
		{ "yes", 1 }, { "no", 0 }, { NULL, 0 }
	}, auths[] = {
		{ "basic", OAUTH_CLIENT_BASIC }, { "post", OAUTH_CLIENT_POST },
		{ NULL, 0 }
	};
	struct oauth_conf		*o = &c->oauth;
	int				 v;

	if (c->type == CHECKER_LDAP)
		return kv_ldap_special(c);
	if (strcmp(kv.key, "algorithms") == 0)
		return kv_algorithms(c);
	if (strcmp(kv.key, "jwt-typ") == 0)
		return kv_one_of(c, typs, &o->jwt_typ_relaxed);
	if (strcmp(kv.key, "discovery") == 0)
		return kv_one_of(c, yesno, &o->discovery);
	if (strcmp(kv.key, "allowed-clients") == 0)
		return kv_clients(c);
	if (strcmp(kv.key, "client-auth") == 0) {
		if (kv_one_of(c, auths, &v) == -1)
			return -1;
		o->client_auth = (enum oauth_client_auth)v;
		return 0;
	}
	return kv_breaker(c);
}

/* Where the offsets of a checker's option table start. */
static char *
kv_base(struct checker_conf *c)
{
	if (c->type == CHECKER_SQL)
		return (char *)c->sql;
	return (char *)c;
}

static int
kv_set(struct checker_conf *c, const struct kv_option *opt)
{
	char		*dst = kv_base(c) + opt->off;
	char		 what[CONF_NAME_MAX + 64], lo[32], hi[32];
	int64_t		 n, scale;
	char		*end;
	const char	*why;

	(void)snprintf(what, sizeof(what), "checker \"%s\": %s", c->name,
	    opt->name);
	if (opt->kind == KV_SPECIAL)
		return kv_special(c);
	if (kv.n != 1) {
		conf_error("%s: wrong number of values", what);
		return -1;
	}
	switch (opt->kind) {
	case KV_URL:
		if ((why = oauth_url_problem(kv.v[0])) != NULL) {
			conf_error("%s: \"%s\": %s", what, kv.v[0], why);
			return -1;
		}
		return copy_value(dst, opt->size, kv.v[0], what);
	case KV_STRING:
		return copy_value(dst, opt->size, kv.v[0], what);
	case KV_DOMAIN:
		if (!valid_hostname(kv.v[0])) {
			conf_error("%s: invalid domain \"%s\"", what, kv.v[0]);
			return -1;
		}
		return copy_value(dst, opt->size, kv.v[0], what);
	case KV_SCOPE:
		/* one scope-token (RFC 6749 3.3), as portcullis.conf(5) says */
		if (!scope_token_valid(kv.v[0])) {
			conf_error("%s: invalid scope \"%s\": one scope, "
			    "without blanks or quotes", what, kv.v[0]);
			return -1;
		}
		return copy_value(dst, opt->size, kv.v[0], what);
	case KV_FILE:
		return copy_path(dst, opt->size, kv.v[0], what);
	case KV_DURATION_MS:
	case KV_DURATION_S:
		if ((n = parse_duration(kv.v[0])) == -1) {
			conf_error("%s: invalid duration \"%s\"", what,
			    kv.v[0]);
			return -1;
		}
		scale = opt->kind == KV_DURATION_S ? 1000 : 1;
		if (n % scale != 0) {
			conf_error("%s must be a whole number of seconds",
			    what);
			return -1;
		}
		if (n < opt->min * scale || n > opt->max * scale) {
			conf_error("%s must be between %s and %s", what,
			    kv_duration_str(opt->min * scale, lo, sizeof(lo)),
			    kv_duration_str(opt->max * scale, hi, sizeof(hi)));
			return -1;
		}
		n /= scale;
		break;
	case KV_NUMBER:
		errno = 0;
		n = strtoll(kv.v[0], &end, 10);
		if (errno != 0 || *end != '\0' || end == kv.v[0]) {
			conf_error("%s: invalid number \"%s\"", what, kv.v[0]);
			return -1;
		}
		break;
	default:
		return -1;
	}
	return set_number((int *)(void *)dst, n, opt->min, opt->max, what);
}

static void
kv_option(void)
{
	const struct kv_option	*table, *opt = NULL;
	size_t			 i, n;

	if (copts.type == CHECKER_OAUTH) {
		table = oauth_options;
		n = sizeof(oauth_options) / sizeof(oauth_options[0]);
	} else if (copts.type == CHECKER_LDAP) {
		table = ldap_options;
		n = sizeof(ldap_options) / sizeof(ldap_options[0]);
	} else if (copts.type == CHECKER_SQL) {
		table = sql_options;
		n = sizeof(sql_options) / sizeof(sql_options[0]);
	} else {
		table = cache_options;
		n = sizeof(cache_options) / sizeof(cache_options[0]);
	}
	for (i = 0; i < n; i++)
		if (strcmp(kv.key, table[i].name) == 0)
			opt = &table[i];
	if (opt == NULL) {
		conf_error_at(file->name, kv.line, "checker \"%s\": unknown "
		    "%s option \"%s\"", copts.name,
		    checker_type_name(copts.type), kv.key);
		copts.kv_bad = 1;
		return;
	}
	if (copts.given & (1U << (opt - table))) {
		conf_error_at(file->name, kv.line, "checker \"%s\": %s given "
		    "twice", copts.name, opt->name);
		copts.kv_bad = 1;
		return;
	}
	copts.given |= 1U << (opt - table);
	if (copts.checker != NULL && kv_set(copts.checker, opt) == -1)
		copts.kv_bad = 1;
}

/*
 * With issuer alone, the URLs come from the provider's metadata (RFC
 * 8414, OpenID Connect Discovery), which authd fetches when it starts:
 * what the checker verifies cannot wait for it, so the configuration
 * says it (mechanisms), and is tokens (XOAUTH2, OAUTHBEARER) unless it
 * does.  A mechanism the metadata then cannot serve fails temporarily,
 * and the log says why.
 */
static void
oauth_check_discovery(struct checker_conf *c, uint32_t can)
{
	struct oauth_conf	*o = &c->oauth;
	const char		*why;

	o->discovery = 1;
	if ((why = oauth_url_problem(o->issuer)) != NULL) {
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "issuer \"%s\", for discovery: %s", c->name, o->issuer,
		    why);
		return;
	}
	if (c->mechanisms == 0)
		c->mechanisms = can | SASL_TOKEN_MECHS;
	/* RFC 9068 4: a resource server checks aud. */
	if ((c->mechanisms & SASL_TOKEN_MECHS) != 0 && o->audience[0] == '\0')
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "tokens need audience", c->name);
	if ((c->mechanisms & SASL_PASSWORD_MECHS) != 0 &&
	    o->client_id[0] == '\0')
		conf_error_at(file->name, copts.line, "checker \"%s\": %s "
		    "needs client-id", c->name,
		    mech_name(c->mechanisms & SASL_PASSWORD_MECHS));
}

/*
 * What an oauth checker can verify follows from its URLs: tokens with
 * a JWKS or an introspection endpoint, passwords with a token endpoint
 * (RFC 6749 4.3).  Each needs what the provider will ask for.
 */
static void
oauth_check(struct checker_conf *c)
{
	struct oauth_conf	*o = &c->oauth;
	uint32_t		 can = 0;

	if (o->jwks_max_age < o->jwks_interval)
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "jwks-max-age is shorter than jwks-interval", c->name);
	if (o->jwks_url[0] != '\0' || o->introspection_url[0] != '\0')
		can |= SASL_TOKEN_MECHS;
	if (o->token_url[0] != '\0')
		can |= SASL_PASSWORD_MECHS;
	/* by default, with issuer alone */
	if (o->discovery == -1)
		o->discovery = can == 0 && o->issuer[0] != '\0';
	if (o->discovery && o->issuer[0] == '\0') {
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "discovery needs issuer", c->name);
		return;
	}
	if (o->discovery) {
		oauth_check_discovery(c, can);
		return;
	}
	if (can == 0) {
		conf_error_at(file->name, copts.line, "checker \"%s\": oauth "
		    "needs issuer (discovery), introspection-url, jwks-url or "
		    "token-url", c->name);
		return;
	}
	/* RFC 9068 4: a resource server checks iss and aud. */
	if (o->jwks_url[0] != '\0' && (o->issuer[0] == '\0' ||
	    o->audience[0] == '\0'))
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "jwks-url needs issuer and audience", c->name);
	if (o->introspection_url[0] != '\0' && (o->client_id[0] == '\0' ||
	    o->secret_file[0] == '\0'))
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "introspection-url needs client-id and client-secret-file",
		    c->name);
	if (o->token_url[0] != '\0' && o->client_id[0] == '\0')
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "token-url needs client-id", c->name);
	if (o->jwks_url[0] != '\0' && o->algorithms == 0)
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "no algorithms", c->name);
	if (c->mechanisms == 0)
		c->mechanisms = can;
	else if ((c->mechanisms & ~can & SASL_PASSWORD_MECHS) != 0)
		conf_error_at(file->name, copts.line, "checker \"%s\": %s "
		    "needs token-url", c->name,
		    mech_name(c->mechanisms & ~can));
	else if ((c->mechanisms & ~can) != 0)
		conf_error_at(file->name, copts.line, "checker \"%s\": %s "
		    "needs jwks-url or introspection-url", c->name,
		    mech_name(c->mechanisms & ~can));
}

/*
 * An ldap checker needs a directory, a base, and a filter that names
 * the login exactly once; a service password needs its DN.
 */
static void
ldap_check(struct checker_conf *c)
{
	struct ldap_conf	*l = &c->ldap;
	const char		*p;
	int			 n = 0;

	if (l->nurls == 0)
		conf_error_at(file->name, copts.line, "checker \"%s\": ldap "
		    "needs url", c->name);
	if (l->base[0] == '\0')
		conf_error_at(file->name, copts.line, "checker \"%s\": ldap "
		    "needs base", c->name);
	for (p = l->filter; (p = strstr(p, "%u")) != NULL; p += 2)
		n++;
	if (n != 1 || l->filter[0] != '(')
		conf_error_at(file->name, copts.line, "checker \"%s\": filter "
		    "must be in parentheses and hold %%u once", c->name);
	if (l->disabled_filter[0] != '\0' && l->disabled_filter[0] != '(')
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "disabled-filter must be in parentheses", c->name);
	if ((l->bind_password_file[0] != '\0') != (l->bind_dn[0] != '\0'))
		conf_error_at(file->name, copts.line, "checker \"%s\": bind-dn "
		    "and bind-password-file go together", c->name);
	if (l->nmail_attrs == 0) {
		(void)strlcpy(l->mail_attrs[0], "mail",
		    sizeof(l->mail_attrs[0]));
		(void)strlcpy(l->mail_attrs[1], "mailAlternateAddress",
		    sizeof(l->mail_attrs[1]));
		l->nmail_attrs = 2;
	}
	if (c->mechanisms == 0)
		c->mechanisms = SASL_PASSWORD_MECHS;
}

/*
 * An sql checker needs a database and a query that takes the login as
 * its parameter $1: a bound parameter, never text pasted into SQL.
 */
static void
sql_check(struct checker_conf *c)
{
	struct sql_conf	*s = c->sql;

	if (s->conninfo[0] == '\0' || s->query[0] == '\0') {
		conf_error_at(file->name, copts.line, "checker \"%s\": sql "
		    "needs conninfo and query", c->name);
		return;
	}
	if (strstr(s->query, "$1") == NULL)
		conf_error_at(file->name, copts.line, "checker \"%s\": query "
		    "must take the login as $1", c->name);
	if (s->address_query[0] != '\0' &&
	    strstr(s->address_query, "$1") == NULL)
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "address-query must take the user as $1", c->name);
	if (s->password_column[0] == '\0')
		conf_error_at(file->name, copts.line, "checker \"%s\": "
		    "password-column is empty", c->name);
	if (c->mechanisms == 0)
		c->mechanisms = SASL_PASSWORD_MECHS;
}

/* The checkers that ask a remote service: the cache answers for them. */
static int
checker_is_remote(enum checker_type type)
{
	return type == CHECKER_OAUTH || type == CHECKER_LDAP ||
	    type == CHECKER_SQL;
}

/* A cache answers for the remote checkers, with their mechanisms. */
static void
cache_check(void)
{
	struct checker_conf	*c, *cache = NULL;
	uint32_t		 m = 0;

	TAILQ_FOREACH(c, &conf->checkers, entry) {
		if (checker_is_remote(c->type))
			m |= c->mechanisms;
		if (c->type == CHECKER_CACHE)
			cache = c;
	}
	if (cache == NULL || cache_origin.file == NULL)
		return;
	if (m == 0) {
		conf_error_at(cache_origin.file, cache_origin.line,
		    "checker \"%s\": a cache needs a remote checker (oauth, "
		    "ldap, sql)",
		    cache->name);
		return;
	}
	if (cache->mechanisms == 0)
		cache->mechanisms = m;
	else if ((cache->mechanisms & ~m) != 0)
		conf_error_at(cache_origin.file, cache_origin.line,
		    "checker \"%s\": no remote checker verifies %s",
		    cache->name, mech_name(cache->mechanisms & ~m));
	if (cache->cache.key_file[0] == '\0' &&
	    (size_t)snprintf(cache->cache.key_file,
	    sizeof(cache->cache.key_file), "%s/cache.key", cache->path) >=
	    sizeof(cache->cache.key_file))
		conf_error_at(cache_origin.file, cache_origin.line,
		    "checker \"%s\": key-file: too long", cache->name);
}

/*
 * A user of a static checker.  The name is compared as the client
 * gives it, except that the domain, after the last '@', is lower case
 * (RFC 5321 2.4); the password is kept as it is, hash or plain text.
 */
static void
static_user_add(const char *name, const char *password, int line)
{
	struct static_user	*u, *o;
	const char		*p, *at;
	char			*q;

	copts.nusers++;
	/* authd refuses such a name from a client: it could never log in. */
	for (p = name; *p != '\0'; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			break;
	if (*p != '\0' || name[0] == '\0' || name[0] == '@' ||
	    ((at = strrchr(name, '@')) != NULL && at[1] == '\0')) {
		conf_error_at(file->name, line,
		    "checker \"%s\": invalid user name \"%s\"", copts.name,
		    name);
		return;
	}
	if (strlen(name) >= CONF_AUTH_NAME_MAX) {
		conf_error_at(file->name, line, "checker \"%s\": user name "
		    "too long (max %d)", copts.name, CONF_AUTH_NAME_MAX - 1);
		return;
	}
	if (password[0] == '\0') {
		conf_error_at(file->name, line, "checker \"%s\": user \"%s\": "
		    "empty password", copts.name, name);
		return;
	}
	if (strlen(password) >= CONF_HASH_MAX) {
		conf_error_at(file->name, line, "checker \"%s\": user \"%s\": "
		    "password too long (max %d)", copts.name, name,
		    CONF_HASH_MAX - 1);
		return;
	}
	if (copts.checker == NULL)
		return;

	if ((u = calloc(1, sizeof(*u))) == NULL) {
		conf_error_at(file->name, line, "out of memory");
		return;
	}
	(void)strlcpy(u->checker, copts.checker->name, sizeof(u->checker));
	(void)strlcpy(u->name, name, sizeof(u->name));
	(void)strlcpy(u->password, password, sizeof(u->password));
	if ((q = strrchr(u->name, '@')) != NULL)
		for (q++; *q != '\0'; q++)
			*q = tolower((unsigned char)*q);
	TAILQ_FOREACH(o, &conf->static_users, entry)
		if (strcmp(o->checker, u->checker) == 0 &&
		    strcmp(o->name, u->name) == 0) {
			conf_error_at(file->name, line,
			    "checker \"%s\": duplicate user \"%s\"",
			    copts.name, u->name);
			explicit_bzero(u->password, sizeof(u->password));
			free(u);
			return;
		}
	TAILQ_INSERT_TAIL(&conf->static_users, u, entry);
}

static int
set_failure_delay(int *dst, int64_t ms, const char *what)
{
	if (ms > FAILURE_DELAY_MAX) {
		conf_error("%s must be between 0 and 60s", what);
		return -1;
	}
	*dst = ms;
	return 0;
}

/*
 * ADDRESS or ADDRESS/PREFIXLEN, numeric IPv4 or IPv6; a bare address
 * is a host.  The bits past the prefix are cleared: 10.1.2.3/8 is
 * 10.0.0.0/8.
 */
static int
netaddr_parse(const char *s, struct netaddr *n)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)&n->ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&n->ss;
	char			 addr[INET6_ADDRSTRLEN];
	const char		*slash;
	uint8_t			*bytes;
	size_t			 len;
	int			 max, bits, i;

	memset(&n->ss, 0, sizeof(n->ss));
	len = (slash = strchr(s, '/')) != NULL ? (size_t)(slash - s) :
	    strlen(s);
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, s, len);
	addr[len] = '\0';
	if (strchr(addr, ':') != NULL) {
		if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
			return -1;
		sin6->sin6_family = AF_INET6;
		bytes = sin6->sin6_addr.s6_addr;
		max = 128;
	} else {
		/* inet_pton: inet_aton(3) would take "10.1" too. */
		if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
			return -1;
		sin->sin_family = AF_INET;
		bytes = (uint8_t *)&sin->sin_addr.s_addr;
		max = 32;
	}
	bits = max;
	if (slash != NULL) {
		s = slash + 1;
		for (len = 0; isdigit((unsigned char)s[len]); len++)
			;
		if (len == 0 || len > 3 || s[len] != '\0')
			return -1;
		if ((bits = atoi(s)) > max)
			return -1;
	}
	n->prefixlen = bits;
	for (i = bits; i < max; i++)
		bytes[i / 8] &= ~(0x80 >> (i % 8));
	return 0;
}

static const char *
netaddr_str(const struct netaddr *n, char *buf, size_t size)
{
	const void	*a;
	char		 addr[INET6_ADDRSTRLEN];

	if (n->ss.ss_family == AF_INET)
		a = &((const struct sockaddr_in *)&n->ss)->sin_addr;
	else
		a = &((const struct sockaddr_in6 *)&n->ss)->sin6_addr;
	if (inet_ntop(n->ss.ss_family, a, addr, sizeof(addr)) == NULL)
		(void)strlcpy(addr, "?", sizeof(addr));
	(void)snprintf(buf, size, "%s/%d", addr, n->prefixlen);
	return buf;
}

static int
trusted_network_add(const char *s)
{
	struct netaddr	*n, *o;
	char		 a[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];

	if ((n = calloc(1, sizeof(*n))) == NULL) {
		conf_error("out of memory");
		return -1;
	}
	if (netaddr_parse(s, n) == -1) {
		conf_error("invalid trusted network \"%s\"", s);
		free(n);
		return -1;
	}
	(void)netaddr_str(n, a, sizeof(a));
	TAILQ_FOREACH(o, &conf->trusted_networks, entry)
		if (strcmp(netaddr_str(o, b, sizeof(b)), a) == 0) {
			conf_error("duplicate trusted network \"%s\"", a);
			free(n);
			return -1;
		}
	TAILQ_INSERT_TAIL(&conf->trusted_networks, n, entry);
	return 0;
}

/*
 * A balancer's network for the listener being parsed.  A listener
 * with proxy-protocol serves its balancers only: a host in the list
 * that is not a balancer could claim any client address.
 */
static int
proxy_source_add(const char *s)
{
	struct netaddr		 n;
	struct netprefix	*p;
	const void		*bytes;
	int			 i;

	if (netaddr_parse(s, &n) == -1) {
		conf_error("invalid proxy-protocol source \"%s\"", s);
		return -1;
	}
	if (lopts.proxy_nfrom == CONF_PROXY_FROM_MAX) {
		conf_error("proxy-protocol: more than %d sources",
		    CONF_PROXY_FROM_MAX);
		return -1;
	}
	p = &lopts.proxy_from[lopts.proxy_nfrom];
	memset(p, 0, sizeof(*p));
	p->family = n.ss.ss_family;
	p->prefixlen = n.prefixlen;
	if (p->family == AF_INET)
		bytes = &((struct sockaddr_in *)&n.ss)->sin_addr;
	else
		bytes = &((struct sockaddr_in6 *)&n.ss)->sin6_addr;
	memcpy(p->addr, bytes, p->family == AF_INET ? 4 : 16);
	for (i = 0; i < lopts.proxy_nfrom; i++)
		if (memcmp(&lopts.proxy_from[i], p, sizeof(*p)) == 0) {
			conf_error("proxy-protocol: duplicate source \"%s\"",
			    s);
			return -1;
		}
	lopts.proxy_nfrom++;
	return 0;
}

static struct pki *
pki_find(const char *name)
{
	struct pki	*p;

	TAILQ_FOREACH(p, &conf->pkis, entry)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

/*
 * Made at the end because a pki may be declared after the listener
 * that uses it, and the hostname after both.  A TLS listener leaves
 * with the name of its pki filled in, so nobody has to guess again.
 */
static void
check_listeners(void)
{
	struct listener_origin	*lo;
	struct listener		*l;
	struct pki		*p;
	int			 i;

	for (i = 0; i < norigins; i++) {
		lo = &origins[i];
		l = lo->listener;
		if ((l->flags & (LISTEN_STARTTLS | LISTEN_SMTPS)) == 0) {
			if (l->pki[0] != '\0')
				conf_error_at(lo->file, lo->line,
				    "listener \"%s\": pki without tls or "
				    "smtps", l->name);
		} else if (l->pki[0] != '\0') {
			if (pki_find(l->pki) == NULL)
				conf_error_at(lo->file, lo->line,
				    "listener \"%s\": unknown pki \"%s\"",
				    l->name, l->pki);
		} else if ((p = pki_find(conf->hostname)) != NULL ||
		    ((p = TAILQ_FIRST(&conf->pkis)) != NULL &&
		    TAILQ_NEXT(p, entry) == NULL))
			(void)strlcpy(l->pki, p->name, sizeof(l->pki));
		else if (TAILQ_EMPTY(&conf->pkis))
			conf_error_at(lo->file, lo->line,
			    "listener \"%s\": tls requires a pki", l->name);
		else
			conf_error_at(lo->file, lo->line,
			    "listener \"%s\": several pkis and none named "
			    "\"%s\": choose one with \"pki NAME\"", l->name,
			    conf->hostname);

		if ((l->flags & (LISTEN_AUTH_REQUIRE | LISTEN_AUTH_OPTIONAL)) &&
		    TAILQ_EMPTY(&conf->checkers))
			conf_error_at(lo->file, lo->line,
			    "listener \"%s\": auth needs a checker in the "
			    "auth block", l->name);
	}
}

/* "2s", or "1500ms" when it is no whole number of seconds. */
static const char *
duration_str(int ms, char *buf, size_t size)
{
	if (ms % 1000 == 0)
		(void)snprintf(buf, size, "%ds", ms / 1000);
	else
		(void)snprintf(buf, size, "%dms", ms);
	return buf;
}

/*
 * Made at the end because failure-delay may follow failure-delay-max.
 * Without failure-delay-max, the maximum grows to a longer
 * failure-delay: such a file was good before the maximum existed.
 */
static void
check_auth(void)
{
	char	 max[32], delay[32];

	if (conf->failure_delay_max >= conf->failure_delay)
		return;
	if (fdmax_origin.line == 0) {
		conf->failure_delay_max = conf->failure_delay;
		return;
	}
	conf_error_at(fdmax_origin.file, fdmax_origin.line,
	    "failure-delay-max (%s) must not be less than failure-delay (%s)",
	    duration_str(conf->failure_delay_max, max, sizeof(max)),
	    duration_str(conf->failure_delay, delay, sizeof(delay)));
}

/* Out of memory only costs the line number in a later message. */
static void
where_note(const void *what, int line)
{
	struct where	*w;
	char		*text;

	if ((w = reallocarray(wheres, nwheres + 1, sizeof(*w))) == NULL)
		return;
	wheres = w;
	if (asprintf(&text, "%s:%d", file->name, line) == -1)
		return;
	wheres[nwheres].what = what;
	wheres[nwheres].text = text;
	nwheres++;
}

static void
where_free(void)
{
	for (size_t i = 0; i < nwheres; i++)
		free(wheres[i].text);
	free(wheres);
	wheres = NULL;
	nwheres = 0;
	free(where_file);
	where_file = NULL;
}

/*
 * "file:line" of the statement of the last parse that set what (a
 * member of the configuration it returned, or one of its pkis); the
 * file's name alone for a default.
 */
const char *
config_where(const void *what)
{
	for (size_t i = 0; i < nwheres; i++)
		if (wheres[i].what == what)
			return wheres[i].text;
	return where_file != NULL ? where_file : "portcullis.conf";
}

static void
parse_reset(void)
{
	where_free();
	errors = 0;
	errmsg[0] = '\0';
	file = topfile = NULL;
	include_depth = 0;
	norigins = 0;
	expanding = 0;
	stmt_start = 1;
	lexerr_pending = 0;
	cur_tok = '\n';
	prev_is_keyword = 0;
	in_list = 0;
	ncache_checkers = 0;
	memset(&cache_origin, 0, sizeof(cache_origin));
	kv_pending = kv_depth = 0;
	cur_text[0] = prev_text[0] = stmt_keyword[0] = '\0';
	list_keyword[0] = '\0';
	block_depth = 0;
	memset(&lopts, 0, sizeof(lopts));
	memset(&popts, 0, sizeof(popts));
	memset(&copts, 0, sizeof(copts));
	memset(&fdmax_origin, 0, sizeof(fdmax_origin));
	/* A parse that stopped inside an option line left its values. */
	memset(&kv, 0, sizeof(kv));
}

static void
parse_cleanup(void)
{
	int	 i;

	while ((file = TAILQ_LAST(&files, files)) != NULL)
		popfile();
	topfile = NULL;
	for (i = 0; i < norigins; i++)
		free(origins[i].file);
	norigins = 0;
	symfree();
	pool_free();
	memset(&lopts, 0, sizeof(lopts));
	memset(&popts, 0, sizeof(popts));
	memset(&copts, 0, sizeof(copts));
	memset(&fdmax_origin, 0, sizeof(fdmax_origin));
	memset(&cache_origin, 0, sizeof(cache_origin));
	/* They may hold the last words of a password. */
	explicit_bzero(cur_text, sizeof(cur_text));
	explicit_bzero(prev_text, sizeof(prev_text));
}

struct portcullis_conf *
parse_config(const char *filename)
{
	struct portcullis_conf	*result;
	char			 why[128];
	int			 lastline;

	parse_reset();
	where_file = strdup(filename);
	if ((conf = config_new_empty()) == NULL) {
		conf_error_at(filename, 0, "%s", strerror(errno));
		return NULL;
	}
	if ((file = pushfile(filename, why, sizeof(why))) == NULL) {
		conf_error_at(filename, 0, "%s", why);
		config_free(conf);
		conf = NULL;
		return NULL;
	}
	topfile = file;

	if (yyparse() != 0 && errors == 0)
		conf_error_at(filename, 0, "cannot parse");
	if (topfile != NULL && ferror(topfile->stream))
		conf_error_at(filename, 0, "read error");
	lastline = topfile != NULL && topfile->lineno > 1 ?
	    topfile->lineno - 1 : 1;

	if (errors == 0) {
		check_listeners();
		check_auth();
		cache_check();
	}
	if (errors == 0 && TAILQ_EMPTY(&conf->listeners))
		conf_error_at(filename, lastline, "no listener configured");

	parse_cleanup();
	result = conf;
	conf = NULL;
	if (errors != 0) {
		config_free(result);
		return NULL;
	}
	return result;
}

const char *
config_errmsg(void)
{
	return errmsg;
}

/*
 * penalty, limit and state: their words are read here rather than by
 * the grammar, so that "account", "messages" or "redis" do not become
 * keywords everywhere else (a user or a checker option of that name).
 */
static void
words_add(const char *w)
{
	if (stmtw.n == WORDS_MAX) {
		stmtw.over = 1;
		return;
	}
	stmtw.v[stmtw.n++] = w;
}

/* A duration in whole seconds between min and max; -1 after the error. */
static int
words_seconds(const char *what, const char *w, int min, int max)
{
	int64_t	 ms;

	if ((ms = parse_duration(w)) == -1 || ms % 1000 != 0) {
		conf_error("%s: invalid duration \"%s\" (whole seconds)",
		    what, w);
		return -1;
	}
	if (ms / 1000 < min || ms / 1000 > max) {
		conf_error("%s must be between %ds and %dd", what, min,
		    max / 86400);
		return -1;
	}
	return (int)(ms / 1000);
}

static int
words_number(const char *what, const char *w, int min, int max)
{
	const char	*errstr;
	long long	 n;

	n = strtonum(w, min, max, &errstr);
	if (errstr != NULL) {
		conf_error("%s must be a number between %d and %d", what,
		    min, max);
		return -1;
	}
	return (int)n;
}

#define WINDOW_MAX	(30 * 86400)

/*
 * penalty address forget DURATION
 * penalty account NUMBER per DURATION [known DURATION]
 * penalty repeats NUMBER
 */
static void
penalty_stmt(void)
{
	struct penalty_conf	*p = &conf->penalty;
	const char		**w = stmtw.v;
	int			 n = stmtw.n;

	if (stmtw.over)
		n = 0;
	if (n == 3 && strcmp(w[0], "address") == 0 &&
	    strcmp(w[1], "forget") == 0) {
		int	 v = words_seconds("penalty address forget", w[2], 1,
		    WINDOW_MAX);
		if (v != -1)
			p->forget = v;
		return;
	}
	if ((n == 4 || n == 6) && strcmp(w[0], "account") == 0 &&
	    strcmp(w[2], "per") == 0 && (n == 4 || strcmp(w[4], "known") ==
	    0)) {
		int	 max, win, known = p->known_for;

		max = words_number("penalty account", w[1], 0, 1000000);
		win = words_seconds("penalty account per", w[3], 1,
		    WINDOW_MAX);
		if (n == 6)
			known = words_seconds("penalty account known", w[5],
			    1, 365 * 86400);
		if (max == -1 || win == -1 || known == -1)
			return;
		p->account_max = max;
		p->account_window = win;
		p->known_for = known;
		return;
	}
	if (n == 2 && strcmp(w[0], "repeats") == 0) {
		int	 v = words_number("penalty repeats", w[1], 0,
		    PENALTY_REPEATS_MAX);
		if (v != -1)
			p->repeats = v;
		return;
	}
	conf_error("penalty: want \"address forget DURATION\", \"account "
	    "NUMBER per DURATION [known DURATION]\" or \"repeats NUMBER\"");
}

#define LIMIT_WANT	"limit: want \"messages NUMBER per DURATION\" " \
			    "and/or \"recipients NUMBER per DURATION\" " \
			    "(or none), then [lock-after NUMBER for DURATION]"

/* messages|recipients NUMBER per DURATION | none: the words it took. */
static int
limit_kind(struct limit_conf *l, const char **w, int n)
{
	int	*count, *window, v, win;

	if (strcmp(w[0], "messages") == 0) {
		count = &l->messages;
		window = &l->messages_window;
	} else if (strcmp(w[0], "recipients") == 0) {
		count = &l->recipients;
		window = &l->recipients_window;
	} else {
		conf_error("limit: unknown kind \"%s\": want messages or "
		    "recipients", w[0]);
		return -1;
	}
	if (n >= 2 && strcmp(w[1], "none") == 0) {
		*count = 0;
		return 2;
	}
	if (n < 4 || strcmp(w[2], "per") != 0) {
		conf_error("limit %s: want NUMBER per DURATION, or none", w[0]);
		return -1;
	}
	if ((v = words_number("limit", w[1], 0, 100000000)) == -1 ||
	    (win = words_seconds("limit per", w[3], 1, WINDOW_MAX)) == -1)
		return -1;
	*count = v;
	*window = win;
	return 4;
}

/*
 * limit [messages NUMBER per DURATION | messages none]
 *     [recipients NUMBER per DURATION | recipients none]
 *     [lock-after NUMBER for DURATION]
 *
 * Any limit statement turns limits on: workers ask authd at every
 * recipient and message of an authenticated session, and authd applies
 * a user's own values from the store ("none" as a default leaves only
 * those).  lock-after: the NUMBERth refusal of an account by its own
 * limit within that limit's window locks it for DURATION.
 */
static void
limit_stmt(void)
{
	struct limit_conf	 l = conf->limit;
	const char		**w = stmtw.v;
	int			 i, n = stmtw.n, took, v, win, kinds = 0;

	if (stmtw.over || n == 0) {
		conf_error(LIMIT_WANT);
		return;
	}
	for (i = 0; i < n; i += took) {
		if (strcmp(w[i], "lock-after") == 0) {
			if (n - i != 4 || strcmp(w[i + 2], "for") != 0) {
				conf_error(LIMIT_WANT);
				return;
			}
			if ((v = words_number("limit lock-after", w[i + 1], 1,
			    1000000)) == -1 || (win = words_seconds(
			    "limit lock-after for", w[i + 3], 1,
			    365 * 86400)) == -1)
				return;
			l.lock_after = v;
			l.lock_for = win;
			took = 4;
			continue;
		}
		if ((took = limit_kind(&l, w + i, n - i)) == -1)
			return;
		kinds++;
	}
	if (kinds == 0) {
		conf_error("limit lock-after: needs messages or recipients");
		return;
	}
	l.on = 1;
	conf->limit = l;
}

/* "unix:/absolute/path", or a numeric address and a port. */
static int
valid_redis_address(const char *a)
{
	struct addrinfo	 hints, *res;
	char		 host[INET6_ADDRSTRLEN + 2];
	const char	*colon;
	const char	*errstr;
	size_t		 len;

	if (strncmp(a, "unix:", 5) == 0)
		return a[5] == '/';
	if ((colon = strrchr(a, ':')) == NULL)
		return 0;
	(void)strtonum(colon + 1, 1, 65535, &errstr);
	if (errstr != NULL)
		return 0;
	len = (size_t)(colon - a);
	if (len >= 2 && a[0] == '[' && a[len - 1] == ']') {
		a++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(host))
		return 0;
	memcpy(host, a, len);
	host[len] = '\0';
	/* Numeric only: authd's loop must never wait for a resolver. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return 0;
	freeaddrinfo(res);
	return 1;
}

/*
 * state local
 * state redis ADDRESS [password-file PATH] [fail-closed] [timeout DURATION]
 */
static void
state_stmt(void)
{
	struct state_conf	 st;
	const char		**w = stmtw.v;
	int			 i;
	int64_t			 ms;

	memset(&st, 0, sizeof(st));
	st.timeout = DEFAULT_STATE_TIMEOUT;
	if (!stmtw.over && stmtw.n == 1 && strcmp(w[0], "local") == 0) {
		conf->state = st;
		return;
	}
	if (stmtw.over || stmtw.n < 2 || strcmp(w[0], "redis") != 0) {
		conf_error("state: want \"local\" or \"redis ADDRESS "
		    "[password-file PATH] [fail-closed] [timeout DURATION]\"");
		return;
	}
	if (!valid_redis_address(w[1])) {
		conf_error("state redis: invalid address \"%s\": want "
		    "\"unix:/path\" or a numeric address and a port", w[1]);
		return;
	}
	st.type = STATE_REDIS;
	if (copy_value(st.redis, sizeof(st.redis), w[1], "state redis") ==
	    -1)
		return;
	for (i = 2; i < stmtw.n; i++) {
		if (strcmp(w[i], "fail-closed") == 0)
			st.fail_closed = 1;
		else if (strcmp(w[i], "password-file") == 0 &&
		    i + 1 < stmtw.n) {
			if (copy_path(st.password_file,
			    sizeof(st.password_file), w[++i],
			    "password-file") == -1)
				return;
		} else if (strcmp(w[i], "timeout") == 0 && i + 1 < stmtw.n) {
			if ((ms = parse_duration(w[++i])) < 10 ||
			    ms > 10000) {
				conf_error("state redis timeout must be "
				    "between 10ms and 10s");
				return;
			}
			st.timeout = (int)ms;
		} else {
			conf_error("state redis: unknown option \"%s\"", w[i]);
			return;
		}
	}
	conf->state = st;
}
