-- Monitor segments (kind 'segment'): the monitor they belong to, their place in its chain and the
-- hash their first record follows (the previous segment's head; a run starts from the genesis).
ALTER TABLE runs ADD COLUMN monitor_id text;
ALTER TABLE runs ADD COLUMN segment_index integer;
ALTER TABLE runs ADD COLUMN chain_start text CHECK (chain_start ~ '^[0-9a-f]{64}$');
ALTER TABLE runs ADD CONSTRAINT runs_segment_place CHECK ((kind = 'segment') = (segment_index IS NOT NULL));
CREATE INDEX runs_monitor_segment ON runs (monitor_id, segment_index) WHERE kind = 'segment';

-- Since when an indicator holds its status (a segment's monitor knows it; a run leaves it NULL).
ALTER TABLE verdicts ADD COLUMN since timestamptz;

-- Large files as 1 MiB rows of `blob_parts` instead of PostgreSQL large objects: still outside the
-- `blobs` row and streamed, but ordinary rows, so a reader role granted SELECT on the tables reads
-- them (a large object is readable only by its owner unless granted one by one), and deleting a
-- blob deletes its parts.
CREATE TABLE blob_parts (
    sha256 text NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
    part integer NOT NULL CHECK (part >= 0),
    data bytea NOT NULL,
    PRIMARY KEY (sha256, part)
);
INSERT INTO blob_parts (sha256, part, data)
SELECT b.sha256, p, lo_get(b.large_object, p::bigint * 1048576, 1048576)
FROM blobs b CROSS JOIN LATERAL generate_series(0, ((b.size - 1) / 1048576)::integer) p
WHERE b.large_object IS NOT NULL;
SELECT lo_unlink(large_object) FROM blobs WHERE large_object IS NOT NULL;
ALTER TABLE blobs DROP COLUMN large_object;

-- lz4 (PostgreSQL 14 and newer, built with it) compresses the record bodies and file parts several
-- times faster than the default pglz, the largest share of a push's time in the database.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE blob_parts ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE blobs ALTER COLUMN data SET COMPRESSION lz4';
    EXECUTE 'ALTER TABLE records ALTER COLUMN body SET COMPRESSION lz4';
EXCEPTION WHEN syntax_error OR feature_not_supported OR invalid_parameter_value THEN
    NULL;  -- an older or other build: pglz, slower but the same bytes
END
$$;

-- The portfolio reads each community's graded run with one index probe.
CREATE INDEX runs_graded ON runs (community_id, awarded_on DESC, sealed_at DESC, id DESC)
    WHERE kind = 'run' AND grade IS NOT NULL AND awarded_on IS NOT NULL AND NOT interrupted;

-- The role a read-only portfolio (`zhian archive serve`, `verify`, `export`, `list`) logs in under,
-- or is granted: made here when this user may make roles, else by the administrator
-- (CREATE ROLE zhian_reader NOLOGIN). Each push grants it SELECT on the archive's tables.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zhian_reader')
       AND (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
        CREATE ROLE zhian_reader NOLOGIN;
    END IF;
END
$$;
