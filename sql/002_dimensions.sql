-- 002_dimensions.sql - garment measurements from SFTP misc/dimensions_*.csv.
-- A row is keyed by its variant when it names one, else by its product
-- (DOMAIN.md §3): key_kind says which, key_id holds that id.
CREATE TABLE dimensions (
	key_kind    TEXT NOT NULL CHECK (key_kind IN ('variant', 'product')),
	key_id      TEXT NOT NULL,
	measurement TEXT NOT NULL,
	product_id  TEXT,
	variant_id  TEXT,
	value       REAL NOT NULL,
	unit        TEXT,
	source      TEXT NOT NULL,
	updated_at  TEXT,
	PRIMARY KEY (key_kind, key_id, measurement)
);
