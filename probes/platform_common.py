"""The platform client a target's profile calls for: zhian's API or Hikvision's artemis gateway."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from collectors.artemis import ArtemisClient
from collectors.platform import PlatformClient
from collectors.platform_profile import PlatformProfile, load_profile
from probes.base import ProbeContext
from probes.targets import Target


@lru_cache(maxsize=16)
def _profile(name: str, path: str | None) -> PlatformProfile:
    return load_profile(name, Path(path) if path else None)


def platform_profile(target: Target) -> PlatformProfile:
    """The target's profile (validated when the run read its config; cached here)."""
    return _profile(str(target.params.get("profile") or "zhian"), target.params.get("profile_file"))


def platform_client(
    ctx: ProbeContext, target: Target, *, timeout_s: float | None = None
) -> PlatformClient | ArtemisClient:
    conn = ctx.connection(target, timeout_s=timeout_s)
    profile = platform_profile(target)
    if profile.api == "artemis":
        names = target.params.get("platform_ids") or {}
        return ArtemisClient(conn, profile, names=names, feed=ctx.platform_feed)
    return PlatformClient(conn, feed=ctx.platform_feed)
