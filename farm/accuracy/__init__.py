"""The farm side of accuracy: what a run ships for it (FP32 reference, dataset pack) and what it stores."""
