/*
 * driver.c -- replays files through a fuzz target without libFuzzer.
 *
 *	fuzz_TARGET path ...
 *
 * Each path is a file, or a directory whose files (not recursively, in
 * name order) are each one input.  Every input is passed once to
 * LLVMFuzzerTestOneInput(); a crash or a failed property ends the run,
 * as under libFuzzer.  make check builds every target with this main()
 * and the usual compiler, and replays tests/fuzz/corpus/TARGET and
 * tests/fuzz/regress/TARGET: a crash found once stays a test.
 */

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static int
run_file(const char *path)
{
	FILE	*f;
	uint8_t	*buf = NULL, *nbuf, *exact;
	size_t	 len = 0, cap = 0, n;

	if ((f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			if ((nbuf = realloc(buf, cap)) == NULL) {
				fprintf(stderr, "%s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nbuf;
		}
		if ((n = fread(buf + len, 1, cap - len, f)) == 0)
			break;
		len += n;
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	/* The exact length, so that ASan sees a read past the input. */
	if ((exact = malloc(len ? len : 1)) == NULL) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	(void)LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
run_dir(const char *dir, int *count)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		**names = NULL, **nn, path[4096];
	size_t		 n = 0, cap = 0;
	int		 rv = 0;

	if ((d = opendir(dir)) == NULL) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nn = realloc(names, cap * sizeof(*nn))) == NULL) {
				rv = -1;
				break;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rv = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		if (rv == 0 && (size_t)snprintf(path, sizeof(path), "%s/%s",
		    dir, names[i]) < sizeof(path) && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (run_file(path) == -1)
				rv = -1;
			else
				(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rv;
}

int
main(int argc, char *argv[])
{
	struct stat	 st;
	int		 count = 0, rv = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s file|directory ...\n", argv[0]);
		return 2;
	}
	(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			/* A target without reproducers yet has no directory. */
			if (errno == ENOENT)
				continue;
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			rv = 1;
		} else if (S_ISDIR(st.st_mode)) {
			if (run_dir(argv[i], &count) == -1)
				rv = 1;
		} else if (run_file(argv[i]) == -1)
			rv = 1;
		else
			count++;
	}
	printf("%s: %d input(s) replayed\n", argv[0], count);
	return rv;
}
