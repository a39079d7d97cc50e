-- 005_full_read.sql - when each stream was last read whole.  Incremental streams are
-- re-read whole every [defaults] full_every: the API's date filter cannot tell a
-- deleted record, and a record deleted while pages are read shifts later pages.
ALTER TABLE sync_state ADD COLUMN last_full TEXT;
