"""Labelled data for accuracy runs: the procedural shapes set and the model trained on it (``shapes``,
``train``), and reading and packing an ImageFolder for a board (``imagefolder``). What a run does with
them (the FP32 reference, the packs it ships, the metrics it stores) is in :mod:`farm.accuracy`."""
