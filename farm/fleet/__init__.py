"""The fleet: board states with history, health checks, and which transport reaches which board."""
