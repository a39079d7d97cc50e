-- 004_product_groups.sql - colour siblings: products sharing a parent reference form a group
-- (DOMAIN.md §2), a product without one is a group of its own.  One row per group, with
-- its products and the size range they share (every size label of the group's variants,
-- in size order).
CREATE VIEW product_groups AS
WITH members AS (
	SELECT coalesce(parent_reference, product_id) AS group_id, product_id
	FROM products
),
sized AS (
	SELECT DISTINCT m.group_id, v.size_label, v.size_id
	FROM members m JOIN variants v USING (product_id)
	WHERE v.size_label IS NOT NULL
)
SELECT g.group_id,
       count(*) AS products,
       (SELECT group_concat(product_id, ',') FROM
               (SELECT product_id FROM members WHERE group_id = g.group_id ORDER BY product_id))
               AS product_ids,
       (SELECT group_concat(size_label, ',') FROM
               (SELECT size_label, min(CAST(size_id AS INTEGER)) AS o FROM sized
                WHERE group_id = g.group_id GROUP BY size_label ORDER BY o, size_label))
               AS size_range
FROM members g
GROUP BY g.group_id;
