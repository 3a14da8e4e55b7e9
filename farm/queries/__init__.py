"""The read side for the CLI and the dashboard, named by what it reads: ``sweeps``, ``runs``, ``fleet``.
No raw SQL anywhere else."""
