/*
 * pki.c -- master reads the certificates and keys, with root's rights,
 * before any worker exists.
 *
 * For each pki of a configuration pki_load() reads the certificate
 * file (leaf first, then its chain) and the key file whole into the
 * configuration (cert_pem, key_pem: len + 1 bytes, NUL-terminated),
 * and checks at once that they parse and that the key belongs to the
 * certificate: a bad file is an error at startup or reload, where the
 * administrator sees it, not a crash loop of workers.
 *
 * The certificate stays in master's configuration for as long as
 * that configuration runs: master sends it to every worker it
 * respawns.  The key does not: master hands it to the key process and
 * wipes it (keyproc.c, pki_keys_wipe()); a restarted key process gets
 * the file read again (pki_keys_reread()) and checks it against the
 * certificate itself.  Nothing here logs key material or a
 * passphrase; encrypted keys are refused, never prompted for.
 */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "log.h"
#include "master.h"
#include "proto.h"

#define PKI_ERRBUF	512

static void	pki_warn(const struct pki *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	pki_warnx(const struct pki *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));
static void	pki_vwarn(int, const struct pki *, const char *, va_list)
		    __attribute__((__format__ (printf, 3, 0)));

/*
 * Every message names the pki statement by its file and line, so that
 * portcullisd -n and the log lead the administrator to it.
 */
static void
pki_vwarn(int with_errno, const struct pki *p, const char *fmt, va_list ap)
{
	char	 msg[1024];
	int	 saved_errno = errno;

	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno)
		log_warnx("%s: pki \"%s\": %s: %s", config_where(p), p->name,
		    msg, strerror(saved_errno));
	else
		log_warnx("%s: pki \"%s\": %s", config_where(p), p->name, msg);
	errno = saved_errno;
}

static void
pki_warn(const struct pki *p, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	pki_vwarn(1, p, fmt, ap);
	va_end(ap);
}

static void
pki_warnx(const struct pki *p, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	pki_vwarn(0, p, fmt, ap);
	va_end(ap);
}

static int
pki_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf; (void)size; (void)rwflag; (void)arg;
	return 0;
}

/* OpenSSL's reasons, oldest first, in one line. */
static const char *
pki_ssl_errors(char *buf, size_t len)
{
	const char	*reason;
	unsigned long	 e;

	buf[0] = '\0';
	while ((e = ERR_get_error()) != 0) {
		if ((reason = ERR_reason_error_string(e)) == NULL)
			reason = "unknown error";
		if (buf[0] != '\0')
			(void)strlcat(buf, "; ", len);
		(void)strlcat(buf, reason, len);
	}
	return buf[0] == '\0' ? "invalid PEM" : buf;
}

static int
pki_read_all(int fd, char *buf, size_t size, size_t *lenp)
{
	size_t	 len = 0;
	ssize_t	 n;
	char	 extra;

	while (len < size) {
		n = read(fd, buf + len, size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			return -1;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	/* A file that grew while we read it is not the one we checked. */
	while ((n = read(fd, &extra, 1)) == -1 && errno == EINTR)
		;
	if (n == -1)
		return -1;
	if (n > 0) {
		errno = EAGAIN;
		return -1;
	}
	*lenp = len;
	return 0;
}

/*
 * Read a whole PEM file into a new buffer of len + 1 bytes ending in
 * NUL.  The caller owns the buffer (and wipes it: it may be a key).
 */
static int
pki_read_file(const struct pki *p, const char *file, int is_key,
    char **bufp, size_t *lenp)
{
	struct stat	 st;
	char		*buf;
	size_t		 size, len;
	int		 fd, saved;

	/* O_NONBLOCK: a FIFO in place of the file must not hang master. */
	if ((fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY |
	    O_NONBLOCK)) == -1) {
		pki_warn(p, "%s", file);
		return -1;
	}
	if (fstat(fd, &st) == -1) {
		pki_warn(p, "%s", file);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		pki_warnx(p, "%s: not a regular file", file);
		close(fd);
		return -1;
	}
	if (st.st_size <= 0 || st.st_size > PKI_PEM_MAX) {
		pki_warnx(p, "%s: %s", file,
		    st.st_size <= 0 ? "empty file" : "file too large");
		close(fd);
		return -1;
	}
	if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO)))
		pki_warnx(p, "%s: the private key is open to %s (mode %04o)",
		    file, (st.st_mode & S_IRWXO) ? "everyone" : "its group",
		    (unsigned int)(st.st_mode & 07777));
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		pki_warn(p, "%s", file);
		close(fd);
		return -1;
	}
	if (pki_read_all(fd, buf, size, &len) == -1) {
		saved = errno;
		freezero(buf, size + 1);
		close(fd);
		if (saved == EAGAIN)
			pki_warnx(p, "%s: file changed while being read", file);
		else {
			errno = saved;
			pki_warn(p, "%s", file);
		}
		return -1;
	}
	close(fd);
	if (len == 0) {
		pki_warnx(p, "%s: empty file", file);
		freezero(buf, size + 1);
		return -1;
	}
	/*
	 * If it shrank while read, the tail was never written; freezero()
	 * of len + 1 bytes later is still within the allocation.
	 */
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/* Every certificate behind the leaf must parse too. */
static int
pki_check_chain(BIO *bio)
{
	X509		*x;
	unsigned long	 e;

	while ((x = PEM_read_bio_X509(bio, NULL, pki_no_passphrase,
	    NULL)) != NULL)
		X509_free(x);
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		return -1;
	ERR_clear_error();
	return 0;
}

static X509 *
pki_check_cert(const struct pki *p)
{
	char	 errbuf[PKI_ERRBUF];
	BIO	*bio;
	X509	*x = NULL;

	if ((bio = BIO_new_mem_buf(p->cert_pem, (int)p->cert_len)) == NULL ||
	    (x = PEM_read_bio_X509_AUX(bio, NULL, pki_no_passphrase,
	    NULL)) == NULL || pki_check_chain(bio) == -1) {
		pki_warnx(p, "%s: bad certificate: %s",
		    p->cert_file, pki_ssl_errors(errbuf, sizeof(errbuf)));
		X509_free(x);
		BIO_free(bio);
		return NULL;
	}
	BIO_free(bio);
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		pki_warnx(p, "%s: the certificate has expired", p->cert_file);
	else if (X509_cmp_current_time(X509_get0_notBefore(x)) > 0)
		pki_warnx(p, "%s: the certificate is not valid yet",
		    p->cert_file);
	return x;
}

static int
pki_check_key(const struct pki *p, X509 *x)
{
	char		 errbuf[PKI_ERRBUF];
	BIO		*bio;
	EVP_PKEY	*key;
	int		 ret = -1;

	/* A read-only BIO over the buffer: no copy of the key to wipe. */
	if ((bio = BIO_new_mem_buf(p->key_pem, (int)p->key_len)) == NULL) {
		pki_warnx(p, "%s: %s", p->key_file,
		    pki_ssl_errors(errbuf, sizeof(errbuf)));
		return -1;
	}
	key = PEM_read_bio_PrivateKey(bio, NULL, pki_no_passphrase, NULL);
	BIO_free(bio);
	if (key == NULL) {
		if (strstr(p->key_pem, "PRIVATE KEY-----") == NULL) {
			ERR_clear_error();
			pki_warnx(p, "%s: no private key in the file",
			    p->key_file);
		} else if (strstr(p->key_pem, "ENCRYPTED") != NULL) {
			ERR_clear_error();
			pki_warnx(p, "%s: encrypted private keys are not "
			    "supported", p->key_file);
		} else
			pki_warnx(p, "%s: bad private key: %s", p->key_file,
			    pki_ssl_errors(errbuf, sizeof(errbuf)));
		return -1;
	}
	if (X509_check_private_key(x, key) != 1) {
		ERR_clear_error();
		pki_warnx(p, "%s does not match the certificate in %s",
		    p->key_file, p->cert_file);
	} else
		ret = 0;
	EVP_PKEY_free(key);
	return ret;
}

/*
 * The check parses the key, and OpenSSL's decoders leave pieces of it
 * in memory they free without wiping.  master must hold no key after
 * start-up (the key process does), so the parse runs in a child that
 * exits at once, taking its address space with it.
 */
static int
pki_check_key_apart(const struct pki *p, X509 *x)
{
	pid_t	 pid;
	int	 status;

	switch ((pid = fork())) {
	case -1:
		pki_warn(p, "fork");
		return -1;
	case 0:
		_exit(pki_check_key(p, x) == 0 ? 0 : 1);
	}
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR) {
			pki_warn(p, "waitpid");
			return -1;
		}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int
pki_load_one(struct pki *p)
{
	X509	*x;
	int	 ret;

	pki_pem_wipe(p);
	if (pki_read_file(p, p->cert_file, 0, &p->cert_pem,
	    &p->cert_len) == -1 ||
	    pki_read_file(p, p->key_file, 1, &p->key_pem, &p->key_len) == -1)
		return -1;
	if ((x = pki_check_cert(p)) == NULL)
		return -1;
	ret = pki_check_key_apart(p, x);
	X509_free(x);
	return ret;
}

/*
 * Load every pki of conf.  Each error is logged; on any, no PEM is
 * left in conf and -1 is returned.
 */
int
pki_load(struct portcullis_conf *conf)
{
	struct pki	*p;
	int		 ret = 0;

	ERR_clear_error();
	TAILQ_FOREACH(p, &conf->pkis, entry)
		if (pki_load_one(p) == -1)
			ret = -1;
	if (ret == -1)
		TAILQ_FOREACH(p, &conf->pkis, entry)
			pki_pem_wipe(p);
	ERR_clear_error();
	return ret;
}

/*
 * master keeps no private key: once the key process has them (or
 * whenever it is not running to take them), they are wiped here.
 */
void
pki_keys_wipe(struct portcullis_conf *conf)
{
	struct pki	*p;

	TAILQ_FOREACH(p, &conf->pkis, entry) {
		if (p->key_pem != NULL)
			freezero(p->key_pem, p->key_len + 1);
		p->key_pem = NULL;
		p->key_len = 0;
	}
}

/*
 * The key files again, for a key process that was restarted: read,
 * not parsed (the key process checks each against its certificate).
 * A file that cannot be read is logged and its pki left without a key.
 */
void
pki_keys_reread(struct portcullis_conf *conf)
{
	struct pki	*p;

	TAILQ_FOREACH(p, &conf->pkis, entry)
		if (p->key_pem == NULL && pki_read_file(p, p->key_file, 1,
		    &p->key_pem, &p->key_len) == -1) {
			p->key_pem = NULL;
			p->key_len = 0;
		}
}
