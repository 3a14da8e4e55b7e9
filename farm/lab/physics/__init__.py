"""The virtual lab's physical world: board power and thermal models, the simulator process that steps them,
and the sensor files it writes (laid out as the real ones)."""
