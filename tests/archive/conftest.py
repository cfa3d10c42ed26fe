"""A real PostgreSQL server for the archive tests (one per session), a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.archive.helpers import archive, graded_run, sealed_run, trusted
from tests.postgres import Cluster, NoPostgres, cluster

_NAMES = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    try:
        with cluster() as server:
            yield server
    except NoPostgres as exc:
        pytest.skip(str(exc))


@pytest.fixture
def db_url(pg: Cluster) -> Iterator[str]:
    name = f"archive_{next(_NAMES)}"
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg.url(name)
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def two_communities(tmp_path: Path, db_url: str) -> str:
    """Community 测试小区: a run graded C on 2026-12-01, then a later machine run; 另一小区: one run."""
    graded = graded_run(tmp_path, "graded", "2026-12-01")
    later = sealed_run(tmp_path, "later", run_id="r2")
    other = sealed_run(tmp_path, "other", community="另一小区", run_id="r3")
    assert archive("push", str(graded), str(later), str(other), "--db", db_url, *trusted(tmp_path)) == 0
    return db_url
