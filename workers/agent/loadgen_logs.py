"""LoadGen's logs: its results read back (the detail log's ``:::MLLOG`` JSON lines, gaps filled from the
summary text) and the text of both logs for the report, capped (:data:`LOG_CAPS`)."""

from __future__ import annotations

import json
import logging
import os
import re

log = logging.getLogger("farm-agent")

#: The report carries LoadGen's logs up to these sizes (bytes of UTF-8); longer ones keep their head and
#: tail (the results are at the end) with a marker saying how much was cut.
LOG_CAPS = {"summary": 256 * 1024, "detail": 4 * 1024 * 1024}
LOG_TAIL_BYTES = 256 * 1024

#: Report latency key (protocol.LATENCY_KEYS) -> LoadGen's detail-log key.
LATENCY_KEYS = (
    ("min", "result_min_latency_ns"),
    ("max", "result_max_latency_ns"),
    ("mean", "result_mean_latency_ns"),
    ("p50", "result_50.00_percentile_latency_ns"),
    ("p90", "result_90.00_percentile_latency_ns"),
    ("p95", "result_95.00_percentile_latency_ns"),
    ("p99", "result_99.00_percentile_latency_ns"),
    ("p99.9", "result_99.90_percentile_latency_ns"),
)

# Summary-text labels (fallback when the detail log is missing or unreadable).
_SUMMARY_LABELS = {
    "min latency (ns)": "result_min_latency_ns",
    "max latency (ns)": "result_max_latency_ns",
    "mean latency (ns)": "result_mean_latency_ns",
    "result is": "result_validity",
    "samples per second": "result_samples_per_second",
    "qps w/ loadgen overhead": "result_qps_with_loadgen_overhead",
    "qps w/o loadgen overhead": "result_qps_without_loadgen_overhead",
    "completed samples per second": "result_completed_samples_per_sec",
    "scheduled samples per second": "result_scheduled_samples_per_sec",
}
_SUMMARY_PCT = re.compile(r"^(\d+(?:\.\d+)?)\s+percentile latency \(ns\)$")


def ns_to_ms(value):
    return round(float(value) / 1e6, 6)


def read_detail_log(path):
    """``{key: value}`` from LoadGen's ``:::MLLOG`` JSON lines (the last value of a key wins)."""
    values = {}
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            pos = line.find(":::MLLOG")
            if pos < 0:
                continue
            try:
                record = json.loads(line[pos + len(":::MLLOG") :])
            except ValueError:
                continue
            if isinstance(record, dict) and "key" in record:
                values[record["key"]] = record.get("value")
    return values


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return text
    return int(value) if value.is_integer() and "." not in text else value


def read_summary_log(path):
    """The result fields of ``mlperf_log_summary.txt``, under the detail log's key names."""
    values = {}
    with open(path, "r", errors="replace") as fh:
        for line in fh:
            label, sep, value = line.partition(":")
            if not sep:
                continue
            label = " ".join(label.split()).lower()
            value = value.strip()
            match = _SUMMARY_PCT.match(label)
            if match:
                values["result_%.2f_percentile_latency_ns" % float(match.group(1))] = _number(value)
            elif label in _SUMMARY_LABELS and _SUMMARY_LABELS[label] not in values:
                values[_SUMMARY_LABELS[label]] = _number(value)
    return values


def read_results(log_dir):
    """LoadGen's results from ``log_dir``: the detail log's keys, gaps filled from the summary."""
    summary_path = os.path.join(log_dir, "mlperf_log_summary.txt")
    detail_path = os.path.join(log_dir, "mlperf_log_detail.txt")
    values = {}
    for path, reader in ((summary_path, read_summary_log), (detail_path, read_detail_log)):
        if os.path.isfile(path):
            try:
                values.update(reader(path))
            except (OSError, IOError) as exc:
                log.warning("cannot read %s: %s", path, exc)
    return values, summary_path, detail_path


def _cap_text(text, cap, tail=LOG_TAIL_BYTES):
    """``(text, truncated, bytes)``: ``text`` whole when its UTF-8 fits ``cap``, else its head and its last
    ``tail`` bytes around a line saying how many bytes were cut."""
    data = text.encode("utf-8", "replace")
    if len(data) <= cap:
        return text, False, len(data)
    tail = min(tail, cap // 2)
    cut = len(data) - (cap - tail)
    marker = "\n[... farm-agent: %d bytes of this log cut here to keep it under %d bytes ...]\n" % (cut, cap)
    head = data[: cap - tail - len(marker)].decode("utf-8", "ignore")
    return head + marker + data[-tail:].decode("utf-8", "ignore"), True, len(data)


def read_log_texts(summary_path, detail_path, caps=None):
    """LoadGen's summary and detail logs as text for the report, each capped (:data:`LOG_CAPS`):
    ``{"summary": {"name", "text", "bytes", "truncated", "cap_bytes"}, "detail": {...}}``; a missing log
    is left out."""
    caps = dict(LOG_CAPS, **(caps or {}))
    out = {}
    for kind, path in (("summary", summary_path), ("detail", detail_path)):
        if not path or not os.path.isfile(path):
            continue
        try:
            with open(path, "r", errors="replace") as fh:
                raw = fh.read()
        except (OSError, IOError) as exc:
            log.warning("cannot read %s: %s", path, exc)
            continue
        text, truncated, size = _cap_text(raw, caps[kind])
        out[kind] = {
            "name": os.path.basename(path),
            "text": text,
            "bytes": size,
            "truncated": truncated,
            "cap_bytes": caps[kind],
        }
    return out


def latency_at_ms(values, percentile):
    """LoadGen's latency at ``percentile`` (percent) in ms, if it logged that percentile."""
    value = values.get("result_%.2f_percentile_latency_ns" % float(percentile))
    return ns_to_ms(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
