-- 003_sftp_ledger.sql - the SFTP ledger tells the version of a file it last processed
-- from the state of the version the latest scan saw.
-- size, mtime, sha256, rows, rejects, applied_at and done_outcome describe the version
-- last processed (applied or rejected), so that it is never applied twice and a changed
-- file is; outcome and reason say how the latest scan left the file (pending, failed,
-- ignored, or the processed version's outcome).
ALTER TABLE sftp_files ADD COLUMN done_outcome TEXT CHECK (done_outcome IS NULL OR done_outcome IN
	('applied', 'applied_with_rejects', 'rejected'));
