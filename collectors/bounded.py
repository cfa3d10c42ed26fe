"""Reading a reply without ever holding more than the run's bound (`limits.max_reply_bytes`).

aiohttp's `response.read()` keeps whatever a device sends; a hostile or broken device streaming
hundreds of megabytes would take the run's memory with it. These readers stop at the bound and
hand back the first bytes, which become the evidence of the oversize reply.
"""

from __future__ import annotations

import aiohttp

from collectors.exchange import EXCERPT_LIMIT


class Oversize(Exception):
    """The body passed `limit` bytes; `head` is what had arrived, cut to the excerpt's length."""

    def __init__(self, head: bytes, limit: int, declared: int | None = None) -> None:
        super().__init__(f"reply larger than the {limit} bytes allowed (limits.max_reply_bytes)")
        self.head = head[:EXCERPT_LIMIT]
        self.limit = limit
        self.declared = declared


class BoundedBody:
    """Chunks of one body as they arrive, refused (Oversize) once past the bound."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > self.limit:
            raise Oversize(self.data(), self.limit)

    def data(self) -> bytes:
        return b"".join(self.chunks)


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or Oversize: at once when the declared length is too large, else as soon as
    what arrived passes the bound."""
    declared = response.content_length
    if declared is not None and declared > limit:
        head = await response.content.read(EXCERPT_LIMIT)
        raise Oversize(head, limit, declared)
    body = BoundedBody(limit)
    async for chunk in response.content.iter_any():
        body.add(chunk)
    return body.data()
