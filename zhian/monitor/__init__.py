"""`zhian monitor`: continuous compliance monitoring of a live site (the service, its live observers,
its status board, its metrics)."""
