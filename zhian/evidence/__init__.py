"""The evidence: the hash-chained ledger, the seal and its keys, verification and the evidence pack."""
