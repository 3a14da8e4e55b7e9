"""Labelled data for accuracy runs: the procedural shapes set and the model trained on it (``shapes``,
``train``), and the farm side of accuracy measurement (``imagefolder``: read and check an ImageFolder,
pack it for a board; ``reference``: FP32 reference outputs for INT8 agreement)."""
