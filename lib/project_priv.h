/* project_priv.h - what the files of the projection share; not for use outside lib/project*.c. */
#ifndef KLEEP_PROJECT_PRIV_H
#define KLEEP_PROJECT_PRIV_H

#include <stdbool.h>
#include <stdlib.h>

#include "canon.h"
#include "project.h"

#define SCRATCH_SLOTS 24
#define SCRATCH_LEN 160

/* Text forms of numbers and looked-up values, alive for one record. */
struct scratch {
	char slot[SCRATCH_SLOTS][SCRATCH_LEN];
	int used;
};

static inline char *scratch_take(struct scratch *sc)
{
	/* Each record takes a fixed number of slots (one per column at most);
	 * running out is a programming error, never silently reused memory. */
	if (sc->used == SCRATCH_SLOTS)
		abort();
	return sc->slot[sc->used++];
}

static inline json_t *get(const struct project_ctx *c, json_t *obj, const char *name)
{
	return json_object_get(obj, profile_field(c->p, name));
}

/* project.c: values, look-ups and parent rows */
/* A JSON scalar as canonical text: strings as they are ("" is NULL), numbers in JSON form. */
const char *project_text(struct scratch *sc, json_t *v);
/* A shop-local time field as UTC text, or NULL when it is absent or does not parse. */
const char *project_field_time(const struct project_ctx *c, struct scratch *sc, json_t *obj,
			       const char *name);
/* A looked-up column copied to scratch (the statement's text goes stale at its reset). */
const char *project_column_copy(struct scratch *sc, sqlite3_stmt *s, int i);
/* Rows of a query with one text parameter, cols strdup'd texts per row, appended to *out. */
int project_collect(const struct project_ctx *c, const char *sql, const char *param, int cols,
		    char ***out, size_t *n);
/* Free what project_collect gathered. */
void project_collected_free(char **v, size_t n);
/*
 * A parent's child rows written over the stored ones leave over only those
 * its record no longer has: count_sql counts the stored ones (?1 an entity,
 * labels only; ?2 the parent's id), and when they are more than the written
 * ones, prune_sql deletes those whose key is not in kept (?3, a JSON array).
 * project_children_count gives the count; project_children_prune deletes.
 * 0 or -EIO.
 */
int project_children_count(const struct project_ctx *c, const char *count_sql,
			   const char *entity, const char *id, sqlite3_int64 *count);
int project_children_prune(const struct project_ctx *c, const char *prune_sql,
			   const char *entity, const char *id, const char *kept);
/* canon_put of a parent row; *fresh when it was inserted rather than updated.  0 or -EIO. */
int project_put_parent(const struct project_ctx *c, enum canon_table t, const char *const *row,
		       bool *applied, bool *fresh);

static inline const char *field_text(const struct project_ctx *c, struct scratch *sc, json_t *obj,
				     const char *name)
{
	return project_text(sc, get(c, obj, name));
}

/* project_catalog.c: products, variants, labels and reference streams */
/* 0, -EINVAL (err says why) or -EIO. */
int project_product(const struct project_ctx *c, json_t *rec, char *err, size_t errlen);
/* Sizes, departments, attributes and return reasons: one row and its labels.  0, -EINVAL or -EIO. */
int project_reference(const struct project_ctx *c, enum stream s, json_t *rec);

/* project_orders.c: orders, returns and their lines */
/* 0 or -EIO. */
int project_order(const struct project_ctx *c, json_t *rec);
int project_return(const struct project_ctx *c, json_t *rec);
/* Project an order or return again from its raw record, so its lines see the catalog now. */
int project_reproject(const struct project_ctx *c, enum stream s, const char *id);

#endif
