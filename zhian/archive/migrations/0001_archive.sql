-- The evidence archive: every sealed run (and, later, every monitor segment) of many communities,
-- kept for six years (4.9) and re-verifiable from these tables alone.

-- Content-addressed bytes: every file of every pushed directory, stored once per sha256.
-- Small ones in the row; large ones as PostgreSQL large objects (outside the row, streamed).
CREATE TABLE blobs (
    sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size bigint NOT NULL CHECK (size >= 0),
    data bytea,
    large_object oid,
    CHECK ((data IS NULL) <> (large_object IS NULL))
);

CREATE TABLE communities (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    operator text NOT NULL DEFAULT '',
    address text NOT NULL DEFAULT ''
);

-- One sealed directory: a `zhian run` (kind 'run') or a monitor segment (kind 'segment', whose
-- `graded_run` names the run it watches). Identified by the sha256 of its exact manifest bytes, so
-- pushing the same seal twice stores it once, and a re-sealed run (a report added) is a new version.
-- Text columns are for queries and pages; the sealed bytes (run.json, score.json, ...) are in blobs.
CREATE TABLE runs (
    id bigserial PRIMARY KEY,
    manifest_sha256 text NOT NULL UNIQUE CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$'),
    kind text NOT NULL CHECK (kind IN ('run', 'segment')),
    run_id text NOT NULL,
    community_id bigint NOT NULL REFERENCES communities (id),
    graded_run bigint REFERENCES runs (id),
    level_applied text,
    grade text,
    threshold text,
    interrupted boolean NOT NULL DEFAULT false,
    started_at timestamptz,
    finished_at timestamptz,
    sealed_at timestamptz NOT NULL,
    awarded_on date,
    graded_by text CHECK (graded_by IN ('evaluator', 'machine')),
    manifest bytea NOT NULL,
    signature text NOT NULL,
    signer text NOT NULL,
    pushed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_community_sealed ON runs (community_id, sealed_at DESC);
CREATE INDEX runs_run_id ON runs (run_id);
CREATE INDEX runs_graded_run ON runs (graded_run) WHERE graded_run IS NOT NULL;

-- The ledger's records exactly as hashed: the chain re-verifies from `body` alone.
CREATE TABLE records (
    run bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    id text NOT NULL,
    kind text NOT NULL,
    probe text,
    device text,
    started_at text,
    body bytea NOT NULL,
    hash text NOT NULL,
    prev_hash text NOT NULL,
    PRIMARY KEY (run, seq)
);

CREATE TABLE findings (
    run bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    n integer NOT NULL,
    probe text NOT NULL,
    device text NOT NULL,
    status text NOT NULL,
    reason text NOT NULL,
    detail text NOT NULL,
    indicators text[] NOT NULL,
    evidence text[] NOT NULL,
    PRIMARY KEY (run, n)
);

-- The final status of every indicator in score.json: what the portfolio and "degraded since" read.
CREATE TABLE verdicts (
    run bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    indicator text NOT NULL,
    level text NOT NULL,
    status text NOT NULL,
    awarded numeric,
    max numeric,
    PRIMARY KEY (run, indicator)
);
CREATE INDEX verdicts_failing ON verdicts (run) WHERE status IN ('fail', 'partial');

-- Every file the manifest covers, by path, pointing at its bytes.
CREATE TABLE run_files (
    run bigint NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path text NOT NULL,
    sha256 text NOT NULL REFERENCES blobs (sha256),
    PRIMARY KEY (run, path)
);
CREATE INDEX run_files_sha256 ON run_files (sha256);
