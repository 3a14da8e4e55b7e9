"""Results database: SQLAlchemy 2.0 models. The schema is created only by Alembic migrations."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class SweepRow(Base):
    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))
    spec_yaml: Mapped[str] = mapped_column(Text)
    spec_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # validated, model paths made absolute
    state: Mapped[str] = mapped_column(String(16), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0007: version labels (farm/sweep/labels.py), and the schedule slot that submitted the
    # sweep: unique per (schedule, slot), so a duplicated or redelivered firing never submits twice
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    schedule_name: Mapped[str | None] = mapped_column(String(64))
    schedule_slot: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # migration 0008: "sweep", or "confirmation" (re-runs an alert asked for: never a baseline)
    purpose: Mapped[str] = mapped_column(String(16), default="sweep")
    jobs: Mapped[list[JobRow]] = relationship(back_populates="sweep", foreign_keys="JobRow.sweep_id")
    __table_args__ = (
        Index("ix_sweeps_created_at", "created_at"),
        Index("uq_sweeps_schedule_slot", "schedule_name", "schedule_slot", unique=True),
    )


class ScheduleRow(Base):
    """A sweep submitted on a cron (farm/schedules/). The sweep's text lives here, as validated when it was
    added, so a beat on another host needs no file."""

    __tablename__ = "schedules"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(255))  # five fields, UTC
    sweep_yaml: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(
        String(1024)
    )  # the file's absolute path: relative paths resolve there
    labels: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_slot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the last slot submitted
    last_sweep_id: Mapped[str | None] = mapped_column(String(36))
    last_error: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("name", name="uq_schedules_name"),)


class JobRow(Base):
    """One compile or run job of a sweep. `key` is unique within the sweep (the job's identity)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))  # compile | run
    state: Mapped[str] = mapped_column(
        String(16), default="pending"
    )  # pending queued running done cached failed cancelled
    model: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(64))
    batch_size: Mapped[int] = mapped_column(Integer)
    scenario: Mapped[str | None] = mapped_column(String(32))
    repeat: Mapped[int | None] = mapped_column(Integer)
    depends_on_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"))
    artifact_key: Mapped[str | None] = mapped_column(ForeignKey("artifacts.key"))
    board_name: Mapped[str | None] = mapped_column(ForeignKey("boards.name"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The lease (farm/leases.py): who runs the job now and until when; the reconciler takes back an
    # expired one. The outbox: a queued job whose message was not published yet has published_at NULL.
    lease_owner: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    message_id: Mapped[str | None] = mapped_column(String(64))
    sweep: Mapped[SweepRow] = relationship(back_populates="jobs", foreign_keys=[sweep_id])
    __table_args__ = (
        UniqueConstraint("sweep_id", "key", name="uq_jobs_sweep_key"),
        Index("ix_jobs_sweep_state", "sweep_id", "state"),
        Index("ix_jobs_depends_on", "depends_on_id"),
        Index("ix_jobs_state_lease", "state", "lease_expires_at"),
    )


class ArtifactRow(Base):
    """A compiled model in the content-addressed store. key = sha256 of everything that shapes it."""

    __tablename__ = "artifacts"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    model_sha256: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8))
    target_arch: Mapped[str] = mapped_column(String(64))
    batch_size: Mapped[int] = mapped_column(Integer)
    toolchain: Mapped[str] = mapped_column(String(64))
    toolchain_version: Mapped[str] = mapped_column(String(128))
    quant_config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    file_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    top1_agreement: Mapped[float | None] = mapped_column(Float)
    sqnr_db: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    compile_seconds: Mapped[float | None] = mapped_column(Float)
    compile_runner: Mapped[str | None] = mapped_column(String(16))  # local | host | docker
    compile_host: Mapped[str | None] = mapped_column(String(64))
    toolchain_image: Mapped[str | None] = mapped_column(String(255))  # image and digest, docker runner
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BoardRow(Base):
    """A board's live state. The inventory says what a board is; this says how it is doing."""

    __tablename__ = "boards"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    board_type: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="idle")  # idle running bad maintenance retired
    state_reason: Mapped[str | None] = mapped_column(Text)
    state_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_job_id: Mapped[int | None] = mapped_column(Integer)
    worker: Mapped[str | None] = mapped_column(String(255))
    last_health_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_health_ok: Mapped[bool | None] = mapped_column()
    first_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BoardEventRow(Base):
    """History: every state change and health check of a board."""

    __tablename__ = "board_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    board_name: Mapped[str] = mapped_column(ForeignKey("boards.name", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))  # state | health
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    ok: Mapped[bool | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    __table_args__ = (
        Index("ix_board_events_board_at", "board_name", "at"),
        Index("ix_board_events_at", "at"),
    )


class RunRow(Base):
    """One measurement, written once: `idempotency_key` makes a redelivered job a no-op."""

    __tablename__ = "runs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    sweep_id: Mapped[str] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"))
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    artifact_key: Mapped[str] = mapped_column(ForeignKey("artifacts.key"))
    board_name: Mapped[str] = mapped_column(ForeignKey("boards.name"))
    model: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8))
    target: Mapped[str] = mapped_column(String(64))
    batch_size: Mapped[int] = mapped_column(Integer)
    scenario: Mapped[str] = mapped_column(String(32))
    repeat: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(16))  # measured | emulated
    result_valid: Mapped[bool | None] = mapped_column()
    fingerprint: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    samples_ms: Mapped[list[Any] | None] = mapped_column(JSON)
    # {"power"|"thermal"|"clock": {"t_s": [...], "values": [...], "unit": ..., "sensor": ...}} (migration 0003)
    traces: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    emulation_model: Mapped[str | None] = mapped_column(String(64))  # what produced an emulated result
    # migration 0005: the pre-run host noise check, and why a result needs a second look
    noise: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    flags: Mapped[list[Any] | None] = mapped_column(JSON)
    attachments: Mapped[list[RunAttachmentRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )
    metrics: Mapped[list[MetricRow]] = relationship(back_populates="run", cascade="all, delete-orphan")
    provenance: Mapped[ProvenanceRow | None] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_runs_idempotency_key"),
        Index("ix_runs_sweep", "sweep_id"),
        Index("ix_runs_fingerprint_created", "fingerprint", "created_at"),
        Index(
            "ix_runs_selection",
            "model",
            "precision",
            "batch_size",
            "scenario",
            "target",
            "source",
            "created_at",
        ),
        Index("ix_runs_created", "created_at"),
        Index("ix_runs_job", "job_id"),
    )


class RunAttachmentRow(Base):
    """A file kept with a run, e.g. LoadGen's mlperf_log_summary.txt and mlperf_log_detail.txt."""

    __tablename__ = "run_attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE", name="fk_run_attachments_run")
    )
    name: Mapped[str] = mapped_column(String(128))
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[str] = mapped_column(Text)
    run: Mapped[RunRow] = relationship(back_populates="attachments")
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_run_attachments_run_name"),)


class MetricRow(Base):
    __tablename__ = "metrics"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))  # measured | emulated
    run: Mapped[RunRow] = relationship(back_populates="metrics")
    __table_args__ = (
        UniqueConstraint("run_id", "name", name="uq_metrics_run_name"),
        Index("ix_metrics_name", "name"),
    )


class ProvenanceRow(Base):
    __tablename__ = "provenance"
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    farm_version: Mapped[str] = mapped_column(String(32))
    farm_git_sha: Mapped[str | None] = mapped_column(String(40))
    runtime: Mapped[str | None] = mapped_column(String(64))
    runtime_version: Mapped[str | None] = mapped_column(String(64))
    toolchain: Mapped[str | None] = mapped_column(String(64))
    toolchain_version: Mapped[str | None] = mapped_column(String(128))
    loadgen_version: Mapped[str | None] = mapped_column(String(64))
    hostname: Mapped[str | None] = mapped_column(String(255))
    kernel: Mapped[str | None] = mapped_column(String(255))
    cpu_model: Mapped[str | None] = mapped_column(String(255))
    board_serial: Mapped[str | None] = mapped_column(String(128))
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))  # migration 0005
    dpu_fingerprint: Mapped[str | None] = mapped_column(String(64))
    accelerator_clock_mhz: Mapped[float | None] = mapped_column(Float)
    ambient_c: Mapped[float | None] = mapped_column(Float)
    environment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    run: Mapped[RunRow] = relationship(back_populates="provenance")


# -- regression alerts (migration 0008, docs/alerts.md) ---------------------------------------------------


class AlertRow(Base):
    """A regression (or a result turned INVALID) on one series and metric, through its lifecycle:
    detected -> confirming -> open -> acknowledged -> resolved | dismissed; refuted when confirmation
    runs did not reproduce it. One row per (series, metric, change point): a second scan finds it again."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # regression | invalid
    state: Mapped[str] = mapped_column(String(16))
    series_key: Mapped[str] = mapped_column(
        String(512)
    )  # readable: model/precision/bN/scenario/target/source
    fingerprint: Mapped[str] = mapped_column(String(64))  # the runs' comparability group
    metric: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    precision: Mapped[str] = mapped_column(String(8))
    batch_size: Mapped[int] = mapped_column(Integer)
    scenario: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(64))
    board: Mapped[str | None] = mapped_column(String(64))  # the board of the first run at the new level
    source: Mapped[str] = mapped_column(String(16))  # measured | emulated
    change_run_id: Mapped[int] = mapped_column(Integer)  # the first run at the new level
    sweep_id: Mapped[str | None] = mapped_column(String(36))  # that run's sweep
    group_key: Mapped[str] = mapped_column(String(128))  # one notification per group
    detector: Mapped[str] = mapped_column(String(16))  # check (per run) | scan (change point) | invalid
    before: Mapped[float | None] = mapped_column(Float)
    after: Mapped[float | None] = mapped_column(Float)
    change_pct: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    confirmed: Mapped[bool | None] = mapped_column()
    confirm_sweep_id: Mapped[str | None] = mapped_column(String(36))
    run_ids: Mapped[list[Any] | None] = mapped_column(JSON)  # at the new level, confirmation runs included
    baseline_run_ids: Mapped[list[Any] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(
        JSON
    )  # intervals, the check's reason, the decision
    cause: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what else moved (farm.alerts.cause)
    reason: Mapped[str | None] = mapped_column(Text)  # why dismissed / refuted / resolved
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("fingerprint", "source", "metric", "change_run_id", name="uq_alerts_change"),
        Index("ix_alerts_state", "state"),
        Index("ix_alerts_series", "fingerprint", "source", "metric"),
        Index("ix_alerts_group", "group_key"),
    )


class AlertEventRow(Base):
    """An alert's history: every state change, with who or what moved it."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (Index("ix_alert_events_alert", "alert_id"),)


class AlertDeliveryRow(Base):
    """The delivery outbox: one row per (notification group, channel), retried with backoff until sent; an
    alert is never lost because a channel was down."""

    __tablename__ = "alert_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_key: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(64))
    alert_ids: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending sent failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        UniqueConstraint("group_key", "channel", name="uq_alert_deliveries_group_channel"),
        Index("ix_alert_deliveries_state", "state", "next_attempt_at"),
    )


class SilenceRow(Base):
    """No new alert (and no notification) for series matching ``pattern`` (a glob over the series key)
    until ``until``."""

    __tablename__ = "alert_silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pattern: Mapped[str] = mapped_column(String(512))
    metric: Mapped[str | None] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class BaselineRow(Base):
    """`farm alerts rebaseline`: from run ``since_run_id`` on, the series' level is the accepted normal;
    detection reads the series from there."""

    __tablename__ = "alert_baselines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(64))
    since_run_id: Mapped[int] = mapped_column(Integer)
    alert_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (Index("ix_alert_baselines_series", "fingerprint", "source", "metric"),)
