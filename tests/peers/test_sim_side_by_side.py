"""Two simulated sites of the same community side by side: the second takes the next free base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import COMMUNITIES, fast
from nets import claim_nets

from simulator.model import load_community
from simulator.site import Site, base_in_use, free_address_base
from zhian.cli.simconfig import site_config

pytestmark = pytest.mark.peers


async def test_a_second_site_of_the_same_community_gets_its_own_addresses(tmp_path: Path) -> None:
    # two adjacent nets, so that the next free base after the first is the second, claimed by nobody else
    with claim_nets(2) as [first, second_net]:
        community = fast(load_community(COMMUNITIES / "small.yaml"), first)
        base = community.address_base
        async with Site(community, tmp_path / "one", latency_scale=0) as one:
            assert base_in_use(base)
            other = free_address_base(base)
            assert other == f"127.{second_net}" and not base_in_use(other)
            second = community.model_copy(update={"address_base": other})
            async with Site(second, tmp_path / "two", latency_scale=0) as two:
                two.write_endpoints(tmp_path / "two.json")
                hosts = {d["host"] for d in json.loads((tmp_path / "two.json").read_text())["devices"]}
                assert all(h.startswith(other + ".") for h in hosts)
                config, _ = site_config(two, None)
                assert config["inventory"]["cameras"][0]["host"].startswith(other + ".")
                assert {e.host for e in one.endpoints()}.isdisjoint(hosts)
        assert not base_in_use(base)
