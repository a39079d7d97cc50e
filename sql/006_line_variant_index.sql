-- 006_line_variant_index.sql - find order and return lines by variant: a product update
-- re-projects the lines whose variant changed, or that came before their variant did.
CREATE INDEX order_lines_variant ON order_lines (variant_id);
CREATE INDEX return_lines_variant ON return_lines (variant_id);
