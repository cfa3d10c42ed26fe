"""The site's security service and management platform: alerts, linkages, event log, HTTP API."""

from simulator.platform.platform import Platform

__all__ = ["Platform"]
