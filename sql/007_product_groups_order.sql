-- 007_product_groups_order.sql - product_groups, mended: a product without a parent is a
-- group of its own even when its id equals another group's parent reference, and sizes
-- without a size id (SFTP rows) are ordered as sizes are worn, not alphabetically:
-- numbers by value, letters XXS..XXXL, anything else after them by name.
DROP VIEW product_groups;
CREATE VIEW product_groups AS
WITH members AS (
	SELECT CASE WHEN parent_reference IS NULL THEN 'product:' || product_id
	            ELSE 'parent:' || parent_reference END AS grp,
	       coalesce(parent_reference, product_id) AS group_id, product_id
	FROM products
),
sized AS (
	SELECT m.grp, v.size_label,
	       coalesce(CAST(v.size_id AS INTEGER),
	                CASE WHEN v.size_label GLOB '[0-9]*' THEN CAST(v.size_label AS REAL) END,
	                1000000 + nullif(instr('|XXS|XS|S|M|L|XL|XXL|XXXL|', '|' || upper(v.size_label) || '|'), 0),
	                2000000) AS o
	FROM members m JOIN variants v USING (product_id)
	WHERE v.size_label IS NOT NULL
)
SELECT min(g.group_id) AS group_id,
       count(*) AS products,
       (SELECT group_concat(product_id, ',') FROM
               (SELECT product_id FROM members WHERE grp = g.grp ORDER BY product_id))
               AS product_ids,
       (SELECT group_concat(size_label, ',') FROM
               (SELECT size_label, min(o) AS o FROM sized
                WHERE grp = g.grp GROUP BY size_label ORDER BY o, size_label))
               AS size_range
FROM members g
GROUP BY g.grp;
