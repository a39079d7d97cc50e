-- 008_storage_class.sql - the error class 'storage' (issue 10): a disk that is full, read-only or damaged is
-- not the shop's fault.  SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE sync_state_new (
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
	              ('config', 'auth', 'unauthorized', 'transient', 'bad_reply', 'storage')),
	unauthorized  INTEGER NOT NULL DEFAULT 0,
	endpoint      TEXT,
	rows_total    INTEGER NOT NULL DEFAULT 0,
	last_full     TEXT
);
INSERT INTO sync_state_new (stream, cursor_time, cursor_id, window_from, window_to, window_page,
	window_run, window_max_time, window_max_id, last_success, last_attempt, last_error,
	error_class, unauthorized, endpoint, rows_total, last_full)
SELECT stream, cursor_time, cursor_id, window_from, window_to, window_page,
	window_run, window_max_time, window_max_id, last_success, last_attempt, last_error,
	error_class, unauthorized, endpoint, rows_total, last_full
FROM sync_state;
DROP TABLE sync_state;
ALTER TABLE sync_state_new RENAME TO sync_state;
