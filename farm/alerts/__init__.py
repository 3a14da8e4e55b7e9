"""Regression alerts: the farm watches its own history, confirms on its own boards, and tells people.

A series is one configuration over time (:mod:`.series`); every watched metric of the catalog
(``farm.metrics.watched``) is checked when a run is stored (:mod:`.detection`, the per-run check) and over
the whole series by a scan (change points, :func:`farm.regressions.detect`). A candidate is not an alert
yet: :mod:`.confirm` re-runs the configuration on the farm's own boards and decides with a rank test;
only a confirmed change opens an alert (:mod:`.lifecycle`), with what else moved (:mod:`.cause`), and is
delivered through the channels of ``alerts.yaml`` from a database outbox (:mod:`.delivery`).
docs/alerts.md has the whole story.
"""
