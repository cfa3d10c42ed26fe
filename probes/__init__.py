"""Probes: each checks one property of the site and returns a finding with its evidence."""
