-- 011_write_cost.sql - indexes that earn their write cost (issue 13).  Every index is
-- written on every insert and on every update of its columns; these three are weighed
-- against the queries kleepd and analysts run.

-- orders (updated_at) served no query: export filters on it while it walks the orders
-- by id, and the sync never asks.  Each changed order moved an entry in it.
DROP INDEX orders_updated;

-- Every order and return line looks up its product by the shop's id (line_refs): with
-- product_id in the index the look-up is answered from it, without reading the row.
DROP INDEX products_source_id;
CREATE INDEX products_source_id ON products (source_id, product_id);

-- A stream's live record count (status, after each window that wrote) from indexes
-- alone: all of the stream's records, less its deleted ones, which are few.  Only a
-- record marked deleted writes an entry here.
CREATE INDEX records_deleted ON records (stream) WHERE deleted <> 0;
