/*
 * fuzz_parse_config.c -- the configuration parser (common/parse.y).
 *
 * Input: a portcullis.conf.  It is written to a file of the fuzzer's
 * own (mode 0600, so the secrecy checks pass) and parsed; a result is
 * freed with config_free().  LeakSanitizer runs with libFuzzer: every
 * error path must give back what the parse took.  Properties: the
 * parse of the same file twice gives the same answer (no state left
 * over from the first), a refusal comes with a message, and a
 * configuration that passes has a listener.
 *
 * "include" may name any file; those under /dev, /proc and /sys could
 * block or never end, so an input naming them is skipped.
 */

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

static char	 path[64];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_init(0, LOG_MAIL);
	openlog("fuzz_parse_config", LOG_PERROR, LOG_MAIL);
	setlogmask(LOG_UPTO(LOG_CRIT));
	(void)snprintf(path, sizeof(path), "/tmp/fuzz_parse_config.%d.conf",
	    (int)getpid());
	return 0;
}

static int
names_special_file(const uint8_t *data, size_t size)
{
	static const char	*bad[] = { "dev", "proc", "sys", "fd/" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (memmem(data, size, bad[i], strlen(bad[i])) != NULL)
			return 1;
	return 0;
}

static void
write_conf(const uint8_t *data, size_t size)
{
	size_t	 off = 0;
	ssize_t	 n;
	int	 fd;

	(void)unlink(path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_TRUNC, 0600)) ==
	    -1)
		abort();
	while (off < size) {
		if ((n = write(fd, data + off, size - off)) <= 0)
			abort();
		off += (size_t)n;
	}
	if (close(fd) == -1)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct portcullis_conf	*a, *b;
	char			 err[1024];

	if (names_special_file(data, size))
		return 0;
	write_conf(data, size);
	a = parse_config(path);
	if (a == NULL) {
		strlcpy(err, config_errmsg(), sizeof(err));
		FUZZ_ASSERT(err[0] != '\0');
	} else
		FUZZ_ASSERT(!TAILQ_EMPTY(&a->listeners));
	b = parse_config(path);
	FUZZ_ASSERT((a == NULL) == (b == NULL));
	if (a == NULL && strcmp(err, config_errmsg()) != 0) {
		fprintf(stderr, "first parse: %s\nsecond parse: %s\n", err,
		    config_errmsg());
		FUZZ_ASSERT(!"the same file parsed twice, two errors");
	}
	config_free(a);
	config_free(b);
	(void)unlink(path);
	return 0;
}
