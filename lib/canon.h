/* canon.h - the canonical tables (DESIGN.md §4): typed rows from any source, latest wins. */
#ifndef KLEEP_CANON_H
#define KLEEP_CANON_H

#include <stdbool.h>

#include "store.h"

enum canon_table {
	CANON_PRODUCTS,
	CANON_VARIANTS,
	CANON_DEPARTMENTS,
	CANON_ATTRIBUTES,
	CANON_SIZES,
	CANON_LABELS,
	CANON_ORDERS,
	CANON_ORDER_LINES,
	CANON_RETURNS,
	CANON_RETURN_LINES,
	CANON_RETURN_REASONS,
	CANON_DIMENSIONS,
	CANON_TABLE_COUNT
};

#define CANON_COLS_MAX 12

/* Column positions, in the order canon_put takes values (source is separate). */
enum { P_PRODUCT_ID, P_SOURCE_ID, P_PARENT_REFERENCE, P_TITLE, P_DESCRIPTION, P_URL, P_IMAGES,
       P_CATEGORY, P_DEPARTMENT_ID, P_UPDATED_AT, P_DEACTIVATED, P_COUNT };
enum { V_VARIANT_ID, V_PRODUCT_ID, V_SKU, V_EAN, V_SIZE_ID, V_SIZE_LABEL, V_STOCK, V_COUNT };
enum { D_DEPARTMENT_ID, D_PARENT_ID, D_LABEL, D_COUNT };
enum { A_ATTRIBUTE_ID, A_CODE, A_LABEL, A_COUNT };
enum { S_SIZE_ID, S_LABEL, S_COUNT };
enum { L_ENTITY, L_ENTITY_ID, L_LANG, L_FIELD, L_VALUE, L_COUNT };
enum { O_ORDER_ID, O_REFERENCE, O_STATUS, O_ORDERED_AT, O_UPDATED_AT, O_CURRENCY, O_CUSTOMER_HASH,
       O_COUNT };
enum { OL_ORDER_ID, OL_LINE_NO, OL_PRODUCT_ID, OL_VARIANT_ID, OL_SKU, OL_SIZE_LABEL, OL_QUANTITY,
       OL_UNIT_PRICE_MINOR, OL_CURRENCY, OL_COUNT };
enum { R_RETURN_ID, R_ORDER_ID, R_RETURNED_AT, R_UPDATED_AT, R_COUNT };
enum { RL_RETURN_ID, RL_LINE_NO, RL_ORDER_ID, RL_PRODUCT_ID, RL_VARIANT_ID, RL_SKU, RL_SIZE_LABEL,
       RL_QUANTITY, RL_REASON_ID, RL_COMMENT, RL_ORDER_LINE_NO, RL_COUNT };
enum { RR_REASON_ID, RR_CODE, RR_LABEL, RR_COUNT };
enum { DM_KEY_KIND, DM_KEY_ID, DM_MEASUREMENT, DM_PRODUCT_ID, DM_VARIANT_ID, DM_VALUE, DM_UNIT,
       DM_UPDATED_AT, DM_COUNT };

/* The table's SQL name and its columns' names (NULL-terminated). */
const char *canon_table_name(enum canon_table t);
const char *const *canon_columns(enum canon_table t);
int canon_column_count(enum canon_table t);

/*
 * Insert or update one row: values[i] is column i as text (NULL for SQL
 * NULL; integer columns take their text form).  For products, orders and
 * returns an existing row with a newer updated_at is kept (DESIGN.md §4: the
 * newer source modification time wins, a tie or an unknown time goes to this
 * later write); *applied (may be NULL) says whether the row was written.
 * Returns 0 or -EIO.  The caller holds a transaction.
 */
int canon_put(struct store *st, enum canon_table t, const char *const *values, const char *source,
	      bool *applied);

/*
 * canon_put for a row most likely stored already (its record was): when the
 * stored row has the same values in every indexed column, one UPDATE of the
 * other columns, which leaves the indexes alone (SQLite rewrites an index
 * entry whenever a statement sets one of its columns, even to the same
 * value); else canon_put.  The same outcome, *applied alike.
 */
int canon_put_stored(struct store *st, enum canon_table t, const char *const *values,
		     const char *source, bool *applied);

/*
 * Delete the child rows of one parent, before writing its new set
 * (DOMAIN.md §1: an updated record replaces its child rows wholesale):
 * CANON_VARIANTS of a product, CANON_ORDER_LINES of an order,
 * CANON_RETURN_LINES of a return, or CANON_LABELS of (entity, id).
 * entity is used for labels only.  0 or -EIO.
 */
int canon_delete_children(struct store *st, enum canon_table child, const char *entity,
			  const char *parent_id);

/* Delete one row by its key (first column; labels and lines are not keyed here).  0 or -EIO. */
int canon_delete(struct store *st, enum canon_table t, const char *key);

#endif
