"""Probe a running simulated community the way `zhian run` does: its written config, resolved."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

from collectors.exchange import Sink
from probes.base import Operator, ProbeContext
from probes.targets import SiteView
from simulator.site import Site
from zhian.cli.simconfig import site_config
from zhian.config import Config
from zhian.engine.inventory import build_site


def site_view(site: Site) -> SiteView:
    """The site's inventory through zhian's own path: sim config -> Config -> targets."""
    config, secrets = site_config(site, None)
    os.environ.update(secrets)  # the config references them as env:NAME, as a real run would
    view = build_site(Config.model_validate(config), site.workdir)
    # tls: auto as the run decides it (tests/peers/test_probes_onvif.py checks the deciding): what
    # each simulated device serves
    served = {t.id: dataclasses.replace(t, tls=site.directory[t.id].tls) for t in view.targets if t.tls_auto}
    return dataclasses.replace(view, targets=tuple(served.get(t.id, t) for t in view.targets))


def site_context(
    site: Site,
    sink: Sink,
    *,
    active: Iterable[str] = (),
    call_timeout_s: float = 10.0,  # the run's default: room for a simulator on a loaded machine
    operator: Operator | None = None,
) -> ProbeContext:
    return ProbeContext(
        site=site_view(site),
        sink=sink,
        trust=site.tls.client_context() if site.tls else None,
        call_timeout_s=call_timeout_s,
        active=frozenset(active),
        operator=operator,
    )
