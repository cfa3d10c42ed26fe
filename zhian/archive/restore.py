"""A stored run back as its sealed directory, byte for byte, so the ordinary tools (`zhian verify`,
the evidence pack and its viewer) work on it as on the original: `zhian archive export` and the
portfolio's download link."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath

from zhian.archive import blobs
from zhian.archive.blobs import Conn
from zhian.errors import UsageError
from zhian.evidence.export import Pack, export_pack
from zhian.evidence.manifest import MANIFEST, SIGNATURE


def restore(conn: Conn, run: int, dest: Path) -> None:
    """Write run `run` into the empty folder `dest`: every stored file, the manifest and its signature."""
    stored = conn.execute("SELECT manifest, signature FROM runs WHERE id = %s", (run,)).fetchone()
    if stored is None:
        raise UsageError(f"archive: no stored run {run}")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / MANIFEST).write_bytes(bytes(stored[0]))  # type: ignore[call-overload]
    (dest / SIGNATURE).write_text(f"{stored[1]}\n", encoding="ascii")  # as `seal` writes it
    files = conn.execute("SELECT path, sha256 FROM run_files WHERE run = %s ORDER BY path", (run,)).fetchall()
    for name, digest in files:
        relative = PurePosixPath(str(name))
        if relative.is_absolute() or ".." in relative.parts:
            raise UsageError(f"archive: run {run} names a file outside its directory: {name}")
        target = dest.joinpath(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            for block in blobs.chunks(conn, str(digest)):
                handle.write(block)


def export_stored(conn: Conn, run: int, pack: Path) -> Pack:
    """The evidence pack of stored run `run`, from the database alone: restored into a temporary
    folder, then verified and packed by `zhian export`'s own code (refused if it does not verify)."""
    with tempfile.TemporaryDirectory(prefix="zhian-restore-") as tmp:
        folder = Path(tmp) / "run"
        restore(conn, run, folder)
        return export_pack(folder, pack)
