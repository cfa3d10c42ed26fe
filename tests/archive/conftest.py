"""A real PostgreSQL server for the archive tests (one per session), a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from tests.postgres import Cluster, cluster

_NAMES = itertools.count(1)


@pytest.fixture(scope="session")
def pg() -> Iterator[Cluster]:
    with cluster() as server:
        yield server


@pytest.fixture
def db_url(pg: Cluster) -> Iterator[str]:
    name = f"archive_{next(_NAMES)}"
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield pg.url(name)
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
