"""Start and stop whole simulated communities for peer tests, fast: no latency, short windows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from nets import claim_net

from simulator.faults import LinkageSlow
from simulator.model import Community, DeviceSpec, load_community
from simulator.site import Site

COMMUNITIES = Path(__file__).resolve().parents[2] / "simulator" / "communities"


class _ProcessNets(Iterator[int]):
    """`next(_NETS)`: a net claimed until the test process ends, for a site no `with claim_net()`
    block bounds (the lock goes with the process)."""

    def __init__(self) -> None:
        self._held = ExitStack()

    def __next__(self) -> int:
        return self._held.enter_context(claim_net())


_NETS = _ProcessNets()

# Windows short enough for tests, long enough for a loaded 2-core machine.
FAST = {
    "heartbeat_s": 0.5,
    # the broker drops a client silent for 1.5 keepalives: a loaded machine can stall the site's one
    # process for seconds between a gateway's CONNECT and its next packet (no test waits on it)
    "keepalive_s": 10,
    "offline_after_s": 4.0,  # eight heartbeats: a loaded machine delays some by seconds
    "poll_interval_s": 0.5,
    "linkage_scale": 0.1,
}


def fast(community: Community, net: int, platform_profile: str | None = None, **changes: Any) -> Community:
    """The community with test timings and its own loopback network (and the platform's API)."""
    timing = FAST | changes
    # a slow linkage stays slow against the scaled deadlines: its delay is scaled the same way, unless
    # a test asks for a scale of its own (linkage_slow_scale)
    slow_scale = timing.get("linkage_slow_scale", timing["linkage_scale"])
    devices = []
    for spec in community.devices:
        faults = [
            f.model_copy(update={"delay_s": f.delay_s * slow_scale}) if isinstance(f, LinkageSlow) else f
            for f in spec.faults
        ]
        spec = spec.model_copy(update={"faults": faults})
        if spec.gateway is not None:
            gw = spec.gateway.model_copy(
                update={"heartbeat_s": timing["heartbeat_s"], "keepalive_s": timing["keepalive_s"]}
            )
            spec = spec.model_copy(update={"gateway": gw})
        if spec.platform is not None:
            windows: dict[str, Any] = {k: timing[k] for k in ("offline_after_s", "poll_interval_s")}
            if platform_profile is not None:
                windows["profile"] = platform_profile
            pf = spec.platform.model_copy(update=windows)
            spec = spec.model_copy(update={"platform": pf})
        devices.append(spec)
    return community.model_copy(
        update={
            "devices": devices,
            "address_base": f"127.{net}",
            "linkage": community.linkage.scaled(timing["linkage_scale"]),
        }
    )


SiteFactory = Callable[..., AbstractAsyncContextManager[Site]]


def with_faults(community: Community, faults: Mapping[str, list[dict[str, Any]]]) -> Community:
    """The community with more faults on some devices (by id), as a community file would give them."""
    devices = [
        DeviceSpec.model_validate(
            spec.model_dump() | {"faults": [*spec.model_dump()["faults"], *faults[spec.id]]}
        )
        if spec.id in faults
        else spec
        for spec in community.devices
    ]
    return community.model_copy(update={"devices": devices})


@pytest.fixture
def community_site(tmp_path: Path) -> SiteFactory:
    """`async with community_site("small") as site:` runs that community on its own addresses."""

    @asynccontextmanager
    async def start(
        name: str,
        broker: str = "auto",
        faults: Mapping[str, list[dict[str, Any]]] | None = None,
        **changes: Any,
    ) -> AsyncIterator[Site]:
        # each community gets its own 127.N.0.0/16, claimed so that tests and parallel runs never collide
        with claim_net() as net:
            community = with_faults(load_community(COMMUNITIES / f"{name}.yaml"), faults or {})
            community = fast(community, net, **changes)
            workdir = tmp_path / f"site-{name}"
            async with Site(community, workdir, latency_scale=0, broker_impl=broker) as site:  # type: ignore[arg-type]
                yield site

    return start
