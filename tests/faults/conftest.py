"""The faults that need a whole simulated community use the peer tests' site fixture and their
helpers that read the site's state from inside the simulator (tests/peers, put on the path first:
its modules import each other by their bare names)."""

import sys
from pathlib import Path

PEERS = str(Path(__file__).resolve().parents[1] / "peers")
if PEERS not in sys.path:
    sys.path.append(PEERS)

from tests.peers.conftest import SiteFactory, community_site  # noqa: E402

__all__ = ["SiteFactory", "community_site"]
