-- 012_unfilled_lines.sql - the lines that wait for their variant's sku or size (issue 13).
-- Every product written looks for the order and return lines of its variants that came
-- before it without a sku or a size label, to project them again (late_lines in
-- lib/project_catalog.c).  Through *_lines_variant that read every line of each of the
-- product's variants from its table, about fifteen scattered pages a product, to find
-- almost always none: a seventh of the database pages a 5 %-changed sync read, and a
-- bestseller's thousands of lines at each of its updates.  These hold only the waiting
-- lines, which are few; an SFTP row never enters them.
CREATE INDEX order_lines_unfilled ON order_lines (variant_id)
	WHERE source = 'api' AND (sku IS NULL OR size_label IS NULL);
CREATE INDEX return_lines_unfilled ON return_lines (variant_id)
	WHERE source = 'api' AND (sku IS NULL OR size_label IS NULL);
