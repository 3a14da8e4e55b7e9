#!/usr/bin/env python3
# ruff: noqa: UP031, UP024
# (runs on the board with its own, possibly old, python3, like workers/agent: %-formatting on purpose)
"""Emulated ``xbutil`` (XRT) for a virtual-lab Alveo board. Runs ON the board host: stdlib only, Python 3.5+.

Installed by farm.lab.physics.sensorfs at ``<root>/opt/xilinx/xrt/bin/xbutil``; ``<root>`` is four folders up.
It answers the one command the farm's xbutil reader runs::

    xbutil examine [-d BDF] -r electrical thermal [-f JSON] [-o FILE] [--force]

with the JSON XRT writes (schema "JSON" = 2020.2: ``schema_version``, then ``devices[]`` each with
``interface_type``, ``device_id``, ``electrical`` and ``thermals``; every value a string,
as boost::property_tree writes it). The numbers come from the board simulator's ``<root>/emu/state.json``.
The rails and thermal sensors are XRT's legacy list (xrt_core::sensor::read_electrical/read_thermals),
present where a U50 has them; ``power_consumption_watts`` is the 12 V + 3.3 V PCIe input power.
"""

import json
import os
import sys
import time

ROOT = os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "..", ".."))
STATE = os.path.join(ROOT, "emu", "state.json")
BDF = "0000:3b:00.1"
VBNV = "xilinx_u50_gen3x16_xdma_base_5"
MAX_POWER_WATTS = "75"  # max_power_level 0: a 75 W card (a U50 draws from the slot only)

# (id, description, volts or None when XRT has no voltage query, current share of the input or None)
RAILS = [
    ("12v_aux", "12 Volts Auxillary", None, None),
    ("12v_pex", "12 Volts PCI Express", 12.1, "pex12"),
    ("3v3_pex", "3.3 Volts PCI Express", 3.3, "pex3"),
    ("3v3_aux", "3.3 Volts Auxillary", None, None),
    ("vccint", "Internal FPGA Vcc", 0.85, "vccint"),
    ("vccint_io", "Internal FPGA Vcc IO", 0.85, "vccint_io"),
    ("ddr_vpp_btm", "DDR Vpp Bottom", None, None),
    ("ddr_vpp_top", "DDR Vpp Top", None, None),
    ("5v5_system", "5.5 Volts System", None, None),
    ("1v2_top", "Vcc 1.2 Volts Top", None, None),
    ("vcc_1v2_btm", "Vcc 1.2 Volts Bottom", None, None),
    ("1v8_top", "1.8 Volts Top", 1.8, None),
    ("0v9_vcc", "0.9 Volts Vcc", 0.9, None),
    ("12v_sw", "12 Volts SW", 12.0, None),
    ("mgt_vtt", "Mgt Vtt", 1.2, None),
    ("3v3_vcc", "3.3 Volts Vcc", 3.3, None),
    ("hbm_1v2", "1.2 Volts HBM", 1.2, None),
    ("vpp2v5", "Vpp 2.5 Volts", 2.5, None),
    ("12v_aux1", "12 Volts Aux1", None, None),
    ("vcc1v2_i", "Vcc 1.2 Volts i", None, None),
    ("v12_in_i", "V12 in i", None, None),
    ("v12_in_aux0_i", "V12 in Aux0 i", None, None),
    ("v12_in_aux1_i", "V12 in Aux1 i", None, None),
    ("vcc_aux", "Vcc Auxillary", None, None),
    ("vcc_aux_pmc", "Vcc Auxillary Pmc", None, None),
    ("vcc_ram", "Vcc Ram", None, None),
    ("0v9_vccint_vcu", "0.9 Volts Vcc Vcu", None, None),
]
PEX12_SHARE = 0.85  # of the input power drawn from the slot's 12 V pins; the rest from 3.3 V

# (location_id, description, how the sensor sits between ambient and the die: 0 = ambient, 1 = die, None = absent)
THERMALS = [
    ("pcb_top_front", "PCB Top Front", 0.45),
    ("pcb_top_rear", "PCB Top Rear", 0.35),
    ("pcb_bottom_front", "PCB Bottom Front", None),
    ("cage_temp_0", "Cage0", 0.30),
    ("cage_temp_1", "Cage1", None),
    ("cage_temp_2", "Cage2", None),
    ("cage_temp_3", "Cage3", None),
    ("fpga0", "FPGA", 1.0),
    ("int_vcc", "Int Vcc", 0.9),
    ("fpga_hbm", "FPGA HBM", 0.8),
]


def fail(message, code=1):
    sys.stderr.write("ERROR: %s\n" % message)
    sys.exit(code)


def shiftdown3(milli):
    """XRT's format_base10_shiftdown3: an integer in milli-units as 'X.YYY'."""
    milli = int(round(milli))
    return "%d.%03d" % (milli // 1000, milli % 1000)


def shiftdown6(micro):
    micro = int(round(micro))
    return "%d.%06d" % (micro // 1000000, micro % 1000000)


def same_bdf(given, actual):
    """DDDD:BB:DD.F with the domain and the function optional, hex, case-insensitive (as XRT's bdf2index)."""

    def parts(text):
        tokens = text.lower().split(":")
        if len(tokens) not in (2, 3):
            return None
        dev, _, func = tokens[-1].partition(".")
        try:
            return (
                int(tokens[0], 16) if len(tokens) == 3 else 0,
                int(tokens[-2], 16),
                int(dev, 16),
                int(func, 16) if func else None,
            )
        except ValueError:
            return None

    a, b = parts(given), parts(actual)
    if a is None:
        fail("Invalid BDF '%s'. Please spcify the BDF using 'DDDD:BB:DD.F' format" % given)
    return a[:3] == b[:3] and (a[3] is None or a[3] == b[3])


def electrical(state):
    power_w = max(0.0, float(state["power_w"]))
    static_w = min(power_w, float(state.get("static_w") or 0.0))
    dynamic_w = power_w - static_w
    currents = {
        "pex12": power_w * PEX12_SHARE / 12.1,
        "pex3": power_w * (1 - PEX12_SHARE) / 3.3,
        "vccint": (0.45 * static_w + 0.75 * dynamic_w) / 0.85,
        "vccint_io": (0.05 * static_w + 0.05 * dynamic_w) / 0.85,
    }
    rails = []
    for rail_id, description, volts, current in RAILS:
        amps = currents.get(current, 0.0) if current else 0.0
        rails.append(
            {
                "id": rail_id,
                "description": description,
                "voltage": {
                    "volts": shiftdown3((volts or 0.0) * 1000),
                    "is_present": "true" if volts else "false",
                },
                "current": {
                    "amps": shiftdown3(amps * 1000),
                    "is_present": "true" if round(amps * 1000) else "false",
                },
            }
        )
    return {
        "power_rails": rails,
        "power_consumption_max_watts": MAX_POWER_WATTS,
        "power_consumption_watts": shiftdown6(power_w * 1e6),
        "power_consumption_warning": "false",
    }


def thermals(state):
    die = float(state["temp_c"])
    ambient = float(state.get("ambient_c", 25.0))
    out = []
    for location, description, position in THERMALS:
        temp = int(round(ambient + (die - ambient) * position)) if position is not None else 0
        out.append(
            {
                "location_id": location,
                "description": description,
                "temp_C": str(temp),
                "is_present": "true" if temp != 0 else "false",
            }
        )
    return out


def text_report(device, reports):
    lines = ["", "-" * 48, "[%s] : %s" % (device["device_id"], VBNV), "-" * 48]
    if "thermal" in reports:
        lines.append("Thermals")
        lines += [
            "  %-23s: %s C" % (t["description"], t["temp_C"])
            for t in device["thermals"]
            if t["is_present"] == "true"
        ]
        lines.append("")
    if "electrical" in reports:
        e = device["electrical"]
        lines.append("Electrical")
        lines.append("  %-23s: %s Watts" % ("Max Power", e["power_consumption_max_watts"]))
        lines.append("  %-23s: %s Watts" % ("Power", e["power_consumption_watts"]))
        lines.append("  %-23s: %s" % ("Power Warning", e["power_consumption_warning"]))
        for r in e["power_rails"]:
            if r["voltage"]["is_present"] == "true" or r["current"]["is_present"] == "true":
                lines.append(
                    "  %-23s: %8s V %8s A" % (r["description"], r["voltage"]["volts"], r["current"]["amps"])
                )
        lines.append("")
    return "\n".join(lines) + "\n"


def parse(argv):
    opts = {"device": None, "reports": [], "format": None, "output": None, "force": False}
    i = 0
    while i < len(argv):
        arg = argv[i]
        name, eq, value = arg.partition("=")
        if name in ("-d", "--device"):
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            opts["device"] = value
        elif name in ("-r", "--report"):
            if eq:
                opts["reports"].append(value)
            while i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                i += 1
                opts["reports"].append(argv[i])
        elif name in ("-f", "--format"):
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            opts["format"] = value
        elif name in ("-o", "--output"):
            if not eq:
                i += 1
                value = argv[i] if i < len(argv) else ""
            opts["output"] = value
        elif arg == "--force":
            opts["force"] = True
        else:
            fail("Unrecognized option '%s'" % arg)
        i += 1
    return opts


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write("usage: xbutil examine [-d BDF] [-r REPORT...] [-f JSON] [-o FILE] [--force]\n")
        return 0 if argv else 1
    if argv[0] != "examine":
        fail("Unknown sub-command: '%s' (this emulated xbutil only knows 'examine')" % argv[0])
    opts = parse(argv[1:])
    reports = [r.lower() for r in opts["reports"]] or ["host"]
    for report in reports:
        if report not in ("electrical", "thermal", "host"):
            fail("Unsupported report name '%s' (the emulated xbutil has: electrical, thermal, host)" % report)
    schema = opts["format"]
    if schema is not None and schema.lower() not in ("json", "json-2020.2"):
        fail("Unknown output format: '%s'" % schema)
    if opts["output"] and schema is None:
        fail("Please specify an output format using the --format option")
    if schema is not None and not opts["output"]:
        fail("Please specify an output file using the --output option")
    if opts["output"] and os.path.exists(opts["output"]) and not opts["force"]:
        fail(
            "The output file '%s' already exists.  Please either remove it or execute this command again "
            "with the '--force' option to overwrite it." % opts["output"]
        )
    try:
        with open(STATE) as fh:
            state = json.load(fh)
    except (IOError, OSError, ValueError):
        fail("No devices found.")
    if opts["device"] is not None and not same_bdf(opts["device"], BDF):
        fail(
            "Specified device BDF '%s' not found\n\n Available devices:\n  [%s] : %s"
            % (opts["device"], BDF, VBNV)
        )

    root = {
        "schema_version": {
            "schema": "JSON",
            "creation_date": time.strftime("%c"),  # xrt_core::timestamp(): strftime %c, local time
        }
    }
    device_reports = [r for r in reports if r != "host"]
    if "host" in reports:
        root["system"] = {
            "host": {
                "devices": [
                    {"bdf": BDF, "vbnv": VBNV, "id": "0x0", "instance": "user(inst=128)", "is_ready": "true"}
                ]
            }
        }
    if device_reports:
        device = {"interface_type": "pcie", "device_id": BDF}
        if "electrical" in device_reports:
            device["electrical"] = electrical(state)
        if "thermal" in device_reports:
            device["thermals"] = thermals(state)
        root["devices"] = [device]
        sys.stdout.write(text_report(device, device_reports))
    else:
        sys.stdout.write("\nSystem Configuration\n  Devices present\n    [%s] : %s\n\n" % (BDF, VBNV))
    if opts["output"]:
        tmp = "%s.%d.tmp" % (opts["output"], os.getpid())
        with open(tmp, "w") as fh:
            json.dump(root, fh, indent=4)
            fh.write("\n")
        os.rename(tmp, opts["output"])
        sys.stdout.write("Successfully wrote the %s file: %s\n" % (schema, opts["output"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
