-- 001_init.sql - the mirror of one merchant: raw records, canonical tables, bookkeeping.
-- Timestamps are UTC text YYYY-MM-DDTHH:MM:SSZ; ids are text, as the source sends them.

-- Raw layer: every record of every source, kept whole, so a mapping fixed later
-- needs no re-sync.  last_run lets a complete full read mark what it did not see.
CREATE TABLE records (
	stream            TEXT NOT NULL,
	id                TEXT NOT NULL,
	source            TEXT NOT NULL CHECK (source IN ('api', 'sftp')),
	source_updated_at TEXT,
	first_seen        TEXT NOT NULL,
	last_seen         TEXT NOT NULL,
	last_run          INTEGER,
	deleted           INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
	json              TEXT NOT NULL,
	UNIQUE (stream, id)
);

-- Canonical layer, named after the data template (DOMAIN.md §2).
-- source_id is the record's natural id at its source (the WSHOP id), kept so
-- that product_id_field can change and the tables be rebuilt from records.
CREATE TABLE products (
	product_id       TEXT PRIMARY KEY,
	source_id        TEXT,
	parent_reference TEXT,
	title            TEXT,
	description      TEXT,
	url              TEXT,
	images           TEXT,
	category         TEXT,
	department_id    TEXT,
	updated_at       TEXT,
	deactivated      INTEGER NOT NULL DEFAULT 0 CHECK (deactivated IN (0, 1)),
	source           TEXT NOT NULL
);
CREATE INDEX products_source_id ON products (source_id);
CREATE INDEX products_parent ON products (parent_reference);

CREATE TABLE variants (
	variant_id TEXT PRIMARY KEY,
	product_id TEXT NOT NULL REFERENCES products (product_id) ON DELETE CASCADE ON UPDATE CASCADE,
	sku        TEXT,
	ean        TEXT,
	size_id    TEXT,
	size_label TEXT,
	stock      INTEGER,
	source     TEXT NOT NULL
);
CREATE INDEX variants_product ON variants (product_id);
CREATE INDEX variants_sku ON variants (sku);

CREATE TABLE departments (
	department_id TEXT PRIMARY KEY,
	parent_id     TEXT,
	label         TEXT,
	source        TEXT NOT NULL
);

CREATE TABLE attributes (
	attribute_id TEXT PRIMARY KEY,
	code         TEXT,
	label        TEXT,
	source       TEXT NOT NULL
);

CREATE TABLE sizes (
	size_id TEXT PRIMARY KEY,
	label   TEXT,
	source  TEXT NOT NULL
);

-- Every per-language text: entity product (name, description, url), department,
-- attribute, size, return_reason (label).
CREATE TABLE labels (
	entity    TEXT NOT NULL,
	entity_id TEXT NOT NULL,
	lang      TEXT NOT NULL,
	field     TEXT NOT NULL,
	value     TEXT NOT NULL,
	source    TEXT NOT NULL,
	PRIMARY KEY (entity, entity_id, lang, field)
) WITHOUT ROWID;

CREATE TABLE orders (
	order_id      TEXT PRIMARY KEY,
	reference     TEXT,
	status        TEXT,
	ordered_at    TEXT,
	updated_at    TEXT,
	currency      TEXT,
	customer_hash TEXT,
	source        TEXT NOT NULL
);
CREATE INDEX orders_updated ON orders (updated_at);

CREATE TABLE order_lines (
	order_id   TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
	line_no    INTEGER NOT NULL,
	product_id TEXT,
	variant_id TEXT,
	sku        TEXT,
	size_label TEXT,
	quantity   INTEGER,
	price      TEXT,
	source     TEXT NOT NULL,
	PRIMARY KEY (order_id, line_no)
);
CREATE INDEX order_lines_product ON order_lines (product_id);

CREATE TABLE returns (
	return_id   TEXT PRIMARY KEY,
	order_id    TEXT,
	returned_at TEXT,
	updated_at  TEXT,
	source      TEXT NOT NULL
);

CREATE TABLE return_lines (
	return_id  TEXT NOT NULL REFERENCES returns (return_id) ON DELETE CASCADE,
	line_no    INTEGER NOT NULL,
	order_id   TEXT,
	product_id TEXT,
	variant_id TEXT,
	sku        TEXT,
	size_label TEXT,
	quantity   INTEGER,
	reason_id  TEXT,
	comment    TEXT,
	source     TEXT NOT NULL,
	PRIMARY KEY (return_id, line_no)
);
CREATE INDEX return_lines_product ON return_lines (product_id);

CREATE TABLE return_reasons (
	reason_id TEXT PRIMARY KEY,
	code      TEXT,
	label     TEXT,
	source    TEXT NOT NULL
);

-- Bookkeeping.  The cursor (cursor_time, cursor_id) only moves with the data it
-- covers.  window_* describe a date window being read page by page: a run that
-- dies inside it resumes at window_page + 1 of the same window (DESIGN.md §5).
-- window_run is the run that opened the window: records it (and the runs that
-- resume it) see carry it in records.last_run, so a complete full read can tell
-- what it did not see.
CREATE TABLE sync_state (
	stream        TEXT PRIMARY KEY,
	cursor_time   TEXT,
	cursor_id     TEXT,
	window_from   TEXT,
	window_to     TEXT,
	window_page   INTEGER NOT NULL DEFAULT 0,
	window_run    INTEGER,
	window_max_time TEXT,
	window_max_id TEXT,
	last_success  TEXT,
	last_attempt  TEXT,
	last_error    TEXT,
	error_class   TEXT CHECK (error_class IS NULL OR error_class IN
	              ('config', 'auth', 'unauthorized', 'transient', 'bad_reply')),
	unauthorized  INTEGER NOT NULL DEFAULT 0,
	endpoint      TEXT,
	rows_total    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE sync_runs (
	run_id        INTEGER PRIMARY KEY AUTOINCREMENT,
	stream        TEXT NOT NULL,
	started       TEXT NOT NULL,
	finished      TEXT,
	outcome       TEXT NOT NULL DEFAULT 'running'
	              CHECK (outcome IN ('running', 'success', 'failed', 'interrupted')),
	pages         INTEGER NOT NULL DEFAULT 0,
	rows_in       INTEGER NOT NULL DEFAULT 0,
	rows_changed  INTEGER NOT NULL DEFAULT 0,
	http_requests INTEGER NOT NULL DEFAULT 0,
	bytes         INTEGER NOT NULL DEFAULT 0,
	error         TEXT,
	error_class   TEXT
);
CREATE INDEX sync_runs_stream ON sync_runs (stream, run_id);

-- The SFTP ledger: one row per remote file ever seen, by path.  seen_* hold
-- what the previous scan saw, to tell a settled file from a growing one.
CREATE TABLE sftp_files (
	path       TEXT PRIMARY KEY,
	kind       TEXT,
	size       INTEGER,
	mtime      TEXT,
	sha256     TEXT,
	first_seen TEXT NOT NULL,
	seen_size  INTEGER,
	seen_mtime TEXT,
	applied_at TEXT,
	outcome    TEXT CHECK (outcome IS NULL OR outcome IN
	           ('pending', 'applied', 'applied_with_rejects', 'rejected', 'ignored', 'failed')),
	rows       INTEGER NOT NULL DEFAULT 0,
	rejects    INTEGER NOT NULL DEFAULT 0,
	reason     TEXT
);

CREATE TABLE csv_rejects (
	path   TEXT NOT NULL,
	line   INTEGER NOT NULL,
	reason TEXT NOT NULL
);
CREATE INDEX csv_rejects_path ON csv_rejects (path, line);
