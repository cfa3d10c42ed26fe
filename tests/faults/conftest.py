"""The faults that need a whole simulated community use the peer tests' site fixture and their
helpers that read the site's state from inside the simulator (tests/peers, put on the path)."""

import sys
from pathlib import Path

from tests.peers.conftest import SiteFactory, community_site

PEERS = str(Path(__file__).resolve().parents[1] / "peers")
if PEERS not in sys.path:
    sys.path.append(PEERS)

__all__ = ["SiteFactory", "community_site"]
