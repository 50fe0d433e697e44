/*
 * store_int.h -- what the parts of the store share and nobody else
 * sees: the struct behind struct store, the transactions of env.c,
 * the name rules of name.c, and the codecs' helpers.  Not installed,
 * not included outside store/.
 */
#ifndef PORTCULLIS_STORE_INT_H
#define PORTCULLIS_STORE_INT_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "store.h"

#define RECORD_HEADER	19	/* version, flags, created, changed, H */
#define CACHE_HEADER	50	/* version, flags, created, expires,
				   verifier */

struct store {
	MDB_env			*env;
	MDB_dbi			 meta;
	MDB_dbi			 users;
	MDB_dbi			 cache;		/* if has_cache */
	int			 has_cache;
	int			 layout;	/* 1, 2 or 3 */
	int			 flags;
	pthread_rwlock_t	 maplock;
	char			 dir[PATH_MAX];
};

/* env.c */
void	store_lmdb_error(const struct store *, const char *what, int rc,
	    char *err, size_t errlen);
/*
 * Transactions hold the map lock for reading: end each with abort or
 * commit, in the thread that began it.
 */
int	store_txn_begin(struct store *, int rdonly, MDB_txn **, char *err,
	    size_t errlen);
void	store_txn_abort(struct store *, MDB_txn *);
int	store_txn_commit(struct store *, MDB_txn *, char *err,
	    size_t errlen);

/* name.c */
int	store_text_ok(const unsigned char *s, size_t len, int space_ok,
	    char *err, size_t errlen);
void	store_name_error(const char *name, const char *why, char *err,
	    size_t errlen);

/* record.c */
int	store_record_created(const MDB_val *, int64_t *created);

/* cache_record.c */
int	store_cache_kind_ok(int kind);
int	store_cache_key(const struct store_cache_entry *, unsigned char *buf,
	    size_t buflen, char *user, char *err, size_t errlen);
void	store_cache_record_clear(struct store_cache_entry *);

/* Integers in records: int64, little-endian. */
static inline void
put_i64(unsigned char *p, int64_t v)
{
	uint64_t	 u = (uint64_t)v;
	int		 i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

static inline void
put_u32(unsigned char *p, uint32_t v)
{
	int	 i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static inline int64_t
get_i64(const unsigned char *p)
{
	uint64_t	 u = 0;
	int		 i;

	for (i = 7; i >= 0; i--)
		u = u << 8 | p[i];
	return (int64_t)u;
}

#endif /* PORTCULLIS_STORE_INT_H */
