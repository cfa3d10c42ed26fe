"""A virtual residential community whose devices speak the real protocols on loopback."""
