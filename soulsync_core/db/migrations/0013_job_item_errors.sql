-- The one outcome rule of every job (soulsync_core/jobs.py): a job that did some of its items
-- but not all ends `completed` with `partial` set and the errors of the items it could not do.
ALTER TABLE jobs ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN item_errors TEXT NOT NULL DEFAULT '[]';
