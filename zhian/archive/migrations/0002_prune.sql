-- Pruning (4.9: nothing younger than six years) deletes runs by their seal date; a monitor segment
-- outlives the graded run it watched, losing only the link.
CREATE INDEX runs_sealed_at ON runs (sealed_at);
ALTER TABLE runs DROP CONSTRAINT runs_graded_run_fkey;
ALTER TABLE runs ADD CONSTRAINT runs_graded_run_fkey FOREIGN KEY (graded_run) REFERENCES runs (id) ON DELETE SET NULL;
