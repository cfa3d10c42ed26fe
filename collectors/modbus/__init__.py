"""Modbus TCP for fire alarm panels: the client, its transport, the register cells, the typed readings
and the makers' register maps (profiles)."""
