-- 008_source_binding.sql - where a mirror's data came from (DESIGN.md §4 source binding):
-- the environment, the API's scheme, host and base path (never user-info) and the SFTP
-- host, port and root.  One row, written when the mirror is first used, by `kleepctl
-- rebind` and by `kleepctl golive`; a configuration that points elsewhere stops the
-- merchant's syncs, so preprod and production data never end up in one mirror.
CREATE TABLE source_binding (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	environment TEXT NOT NULL,            -- production | preprod
	api_scheme  TEXT,                     -- http | https; NULL without [wshop]
	api_host    TEXT,                     -- lower case, ":port" unless the scheme's default
	api_path    TEXT,                     -- base path without a trailing '/'
	sftp_host   TEXT,                     -- NULL without [sftp]
	sftp_port   INTEGER,
	sftp_root   TEXT,                     -- as configured, without a trailing '/'
	bound_at    TEXT NOT NULL,            -- UTC
	bound_by    TEXT NOT NULL             -- first_use | rebind | golive
);
