"""Pre-run noise check of the host: is anything else likely to disturb the measurement?

Reads (stdlib only, Python 3.8; every probe best-effort, nothing here may fail a run):

- ``/proc/loadavg``: the 1-minute load average;
- ``/proc/<pid>/stat`` twice, ``window_s`` apart: processes other than this agent (and its parents) that
  used at least ``BUSY_PROCESS_PCT`` of one CPU in between;
- ``/sys/devices/system/cpu/cpu*/cpufreq/``: current and maximum frequency, and the governor
  (``/proc/cpuinfo``'s ``cpu MHz`` when cpufreq is absent, e.g. in a container);
- ``/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count`` where present (x86): a count that
  grows during the window means the CPU is throttling now.

Verdict: ``"noisy"`` when a reason says the numbers are likely disturbed NOW (another process using
``NOISY_PROCESS_PCT`` of a CPU or more, ``NOISY_BUSY_COUNT`` or more busy processes, throttling during the
window); ``"caution"`` for conditions that add variance but do not invalidate (a 1-minute load average
per CPU over ``LOAD_PER_CPU_CAUTION``: it trails by a minute, so it still counts the farm's own compile or
the previous run that just ended; a governor other than ``performance``; throttling seen since boot); else
``"quiet"``; ``"unknown"`` when nothing could be read. The farm flags a noisy run "noisy-host: ..." and
keeps it (docs/stability-and-provenance.md).
"""

from __future__ import annotations

import contextlib
import glob
import os
import time

#: A process counts as busy from this share of one CPU over the window (percent).
BUSY_PROCESS_PCT = 10.0
#: One other process using this much of a CPU makes the host noisy (percent of one CPU).
NOISY_PROCESS_PCT = 50.0
#: This many busy processes make the host noisy.
NOISY_BUSY_COUNT = 3
#: 1-minute load average per CPU above which the host needs caution (a trailing average: not "noisy").
LOAD_PER_CPU_CAUTION = 0.7
#: Seconds between the two reads of the process table.
WINDOW_S = 0.5
#: Most busy processes listed in the report.
MAX_LISTED = 5


def _read(path):
    try:
        with open(path) as fh:
            return fh.read()
    except (OSError, IOError, UnicodeDecodeError):
        return None


def load_1m(root="/"):
    text = _read(os.path.join(root, "proc/loadavg"))
    try:
        return float(text.split()[0])
    except (AttributeError, IndexError, ValueError):
        return None


def cpu_count(root="/"):
    """CPUs listed under sys (the tree being examined), else os.cpu_count()."""
    cpus = glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*"))
    return len(cpus) or os.cpu_count() or 1


def _stat(path):
    """(comm, ppid, utime + stime ticks) from one /proc/<pid>/stat, or None."""
    text = _read(path)
    if not text:
        return None
    left, right = text.find("("), text.rfind(")")
    if left < 0 or right < left:
        return None
    fields = text[right + 2 :].split()
    try:  # fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15
        return text[left + 1 : right], int(fields[1]), int(fields[11]) + int(fields[12])
    except (IndexError, ValueError):
        return None


def process_ticks(root="/"):
    """{pid: (comm, ppid, cpu ticks)} of every readable process."""
    out = {}
    for path in glob.glob(os.path.join(root, "proc/[0-9]*/stat")):
        pid = os.path.basename(os.path.dirname(path))
        entry = _stat(path)
        if entry is not None and pid.isdigit():
            out[int(pid)] = entry
    return out


def _ancestors(table, pid):
    """pid and its parents as far as the table knows them (the agent's own SSH session, shell, ...)."""
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        entry = table.get(pid)
        pid = entry[1] if entry else None
    return seen


def busy_processes(before, after, window_s, ticks_per_s, exclude):
    """[{pid, name, cpu_pct}] of processes that used BUSY_PROCESS_PCT of a CPU or more, busiest first."""
    busy = []
    for pid, (name, _ppid, ticks) in after.items():
        if pid in exclude or pid not in before:
            continue
        pct = (ticks - before[pid][2]) / float(ticks_per_s) / window_s * 100.0
        if pct >= BUSY_PROCESS_PCT:
            busy.append({"pid": pid, "name": name, "cpu_pct": round(pct, 1)})
    busy.sort(key=lambda p: -p["cpu_pct"])
    return busy


def cpu_frequency(root="/"):
    """{cpu_mhz, max_mhz, governor} (mean current MHz over the CPUs; governors joined when they differ)."""
    cur, top, governors = [], [], set()
    for folder in sorted(glob.glob(os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/cpufreq"))):
        for name, into in (("scaling_cur_freq", cur), ("cpuinfo_max_freq", top)):
            text = _read(os.path.join(folder, name))
            with contextlib.suppress(AttributeError, ValueError):
                into.append(int(text.strip()) / 1000.0)
        governor = _read(os.path.join(folder, "scaling_governor"))
        if governor and governor.strip():
            governors.add(governor.strip())
    if not cur:
        for line in (_read(os.path.join(root, "proc/cpuinfo")) or "").splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == "cpu mhz":
                with contextlib.suppress(ValueError):
                    cur.append(float(value))
    return {
        "cpu_mhz": round(sum(cur) / len(cur), 1) if cur else None,
        "max_mhz": round(max(top), 1) if top else None,
        "governor": ",".join(sorted(governors)) if governors else None,
    }


def throttle_counts(root="/"):
    """Sum of the CPUs' core and package thermal throttle counters, or None where there are none."""
    total, found = 0, False
    pattern = os.path.join(root, "sys/devices/system/cpu/cpu[0-9]*/thermal_throttle/*_throttle_count")
    for path in glob.glob(pattern):
        try:
            total += int((_read(path) or "").strip())
            found = True
        except ValueError:
            pass
    return total if found else None


def verdict_of(load, cpus, busy, freq, throttle_before, throttle_after):
    """(verdict, reasons) from the readings (see the module docstring for the rules)."""
    noisy, caution = [], []
    if load is not None and load / float(cpus) > LOAD_PER_CPU_CAUTION:
        caution.append("load %.2f on %d CPUs (> %.2f per CPU)" % (load, cpus, LOAD_PER_CPU_CAUTION))
    hogs = [p for p in busy if p["cpu_pct"] >= NOISY_PROCESS_PCT]
    if hogs:
        noisy.append(
            "busy: " + ", ".join("%s (pid %d) %.0f%% CPU" % (p["name"], p["pid"], p["cpu_pct"]) for p in hogs)
        )
    elif len(busy) >= NOISY_BUSY_COUNT:
        noisy.append("%d other processes each using >= %.0f%% of a CPU" % (len(busy), BUSY_PROCESS_PCT))
    if throttle_before is not None and throttle_after is not None and throttle_after > throttle_before:
        noisy.append("CPU thermal throttling during the check (+%d)" % (throttle_after - throttle_before))
    elif throttle_after:
        caution.append("CPU thermal throttling seen since boot (%d events)" % throttle_after)
    governor = freq.get("governor")
    if governor and governor != "performance":
        caution.append("CPU frequency governor %s (not performance)" % governor)
    if noisy:
        return "noisy", noisy + caution
    if caution:
        return "caution", caution
    if load is None and freq.get("cpu_mhz") is None and not busy:
        return "unknown", ["nothing readable under /proc and /sys"]
    return "quiet", []


def check(root="/", window_s=WINDOW_S, sleep=time.sleep, self_pid=None, ticks_per_s=None):
    """The ``noise`` record of the report: {load_1m, cpus, busy_processes, cpu_mhz, max_mhz, governor,
    throttle_count, window_s, verdict, reasons}. ``sleep`` waits out the window (a test may change the
    tree in it); the agent and its parents are not counted as busy."""
    if ticks_per_s is None:
        try:
            ticks_per_s = os.sysconf("SC_CLK_TCK")
        except (ValueError, OSError, AttributeError):
            ticks_per_s = 100
    self_pid = os.getpid() if self_pid is None else self_pid
    throttle_before = throttle_counts(root)
    before = process_ticks(root)
    started = time.monotonic()
    sleep(window_s)
    elapsed = max(window_s, time.monotonic() - started) if sleep is time.sleep else window_s
    after = process_ticks(root)
    throttle_after = throttle_counts(root)
    busy = busy_processes(before, after, elapsed, ticks_per_s, _ancestors(after, self_pid))
    load, cpus, freq = load_1m(root), cpu_count(root), cpu_frequency(root)
    verdict, reasons = verdict_of(load, cpus, busy, freq, throttle_before, throttle_after)
    return {
        "load_1m": load,
        "cpus": cpus,
        "busy_processes": busy[:MAX_LISTED],
        "busy_count": len(busy),
        "cpu_mhz": freq["cpu_mhz"],
        "max_mhz": freq["max_mhz"],
        "governor": freq["governor"],
        "throttle_count": throttle_after,
        "window_s": round(elapsed, 3),
        "verdict": verdict,
        "reasons": reasons,
    }


def check_safely(**kwargs):
    """:func:`check`, or an ``unknown`` record with the error: the noise check never fails a run."""
    try:
        return check(**kwargs)
    except Exception as exc:  # pragma: no cover - defensive
        return {"verdict": "unknown", "reasons": ["noise check failed: %s: %s" % (type(exc).__name__, exc)]}
