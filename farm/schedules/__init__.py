"""Scheduled sweeps: a sweep submitted on a cron, once per slot (docs/schedules.md).

``cron`` parses and walks cron expressions (celery's crontab), ``store`` keeps the schedules table,
``fire`` submits one slot exactly once (the one function Celery's task and ``farm schedule run-due``
share), ``beat`` is the Celery beat scheduler that reads the table.
"""
