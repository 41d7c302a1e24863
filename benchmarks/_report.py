"""The benchmark's outputs: the issue's targets checked against the figures, the text table, the chart."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _invocation
import cold_path

__all__ = ["check_targets", "human", "plot", "render"]

# Whole-stage request counts the issue asks for, as a function of the number of keys.
STAGE_REQUESTS: dict[str, Callable[[int], int]] = {
    "dynamodb-stage-key": lambda n: 1,
    "s3-document": lambda n: 1,
    "secretsmanager": lambda n: 1,
    "ssm": lambda n: max(1, math.ceil(n / 10)),
    "dynamodb-flat": lambda n: max(1, math.ceil(n / 100)),  # issue 3: BatchGetItem, 100 keys a call
}
WARM_VS_POWERTOOLS = 10.0
WARM_VS_FLOOR = 5.0
IMPORT_MS = 10.0
IMPORT_VS_POWERTOOLS = 10.0
COLD_SLACK = 1.10


def human(value: float, unit: str) -> str:
    """A duration for people: 87 ns, 3.2 µs, 41.5 ms, 1.20 s."""
    ns = value * 1e6 if unit == "ms" else value
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        us = ns / 1_000
        return f"{us:.2f} µs" if us < 10 else f"{us:.1f} µs" if us < 100 else f"{us:.0f} µs"
    ms = ns / 1_000_000
    if ms < 1_000:
        return f"{ms:.2f} ms" if ms < 10 else f"{ms:.1f} ms" if ms < 100 else f"{ms:.0f} ms"
    return f"{ms / 1000:.2f} s"


def _same_call(entry: dict[str, Any], which: str) -> tuple[dict[str, Any], str] | None:
    """Raw boto3 doing the call(s) confstage makes for one key: the batch call for whole-stage sources."""
    boto = entry.get("boto3")
    if not boto:
        return None
    if entry["confstage"]["whole_stage"] and "stage_batch" in boto:
        series = boto["batch_cold_new_client"] if which == "new" else boto["stage_batch"]
        return series, str(boto["batch_call"])
    series = boto["cold_new_client"] if which == "new" else boto["cold_warm_client"]
    return series, str(boto["one_call"])


def check_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of the issue with PASS, FAIL or N/A and the measured figure; never adjusted to pass."""
    targets: list[dict[str, Any]] = []
    keys = int(results["meta"]["keys"])

    def add(target: str, source: str, status: str, measured: str) -> None:
        targets.append({"target": target, "source": source, "status": status, "measured": measured})

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    for name, entry in results["sources"].items():
        if entry.get("status") != "ok":
            add("measured", name, "SKIP", str(entry.get("reason", entry.get("status"))))
            continue
        cs = entry["confstage"]
        warm = float(cs["warm_get"]["median"])
        pt = entry.get("powertools")
        if pt:
            ratio = float(pt["warm_get"]["median"]) / warm
            add(
                f"warm get >= {WARM_VS_POWERTOOLS:.0f}x faster than Powertools' cached get",
                name,
                verdict(ratio >= WARM_VS_POWERTOOLS),
                f"{ratio:.1f}x ({human(warm, 'ns')} vs {human(pt['warm_get']['median'], 'ns')})",
            )
        floor = float(entry["floor"]["median"])
        ratio = warm / floor
        add(
            f"warm get within {WARM_VS_FLOOR:.0f}x of a dict-lookup function",
            name,
            verdict(ratio <= WARM_VS_FLOOR),
            f"{ratio:.2f}x ({human(warm, 'ns')} vs {human(floor, 'ns')})",
        )
        expected = STAGE_REQUESTS.get(name)
        if expected is not None:
            want = expected(keys)
            got = int(cs["stage"]["requests"])
            measured = f"{got} request(s)"
            boto = entry.get("boto3") or {}
            if "stage_batch" in boto:
                measured += f" (raw boto3 {boto['batch_call']}: {boto['stage_batch']['requests']})"
            if name == "ssm" and got == want + 1 and keys % 10 == 0:
                measured += "; moto answers a full last page with a NextToken, so one more (empty) page is read"
            add(f"whole stage of {keys} keys = {want} request(s)", name, verdict(got == want), measured)
        got = int(cs["new_process"]["requests"])
        if entry["persisted"]:
            add(
                "new process with a warm /tmp cache = 0 requests",
                name,
                verdict(got == 0),
                f"{got} request(s), {human(cs['new_process']['median'], 'ms')}",
            )
        else:
            add(
                "new process with a warm /tmp cache = 0 requests",
                name,
                "N/A",
                f"{got} request(s): not persisted to /tmp by design",
            )
        for which, label in (("new", "new client"), ("warm", "client already made")):
            same = _same_call(entry, which)
            if same is None:
                continue
            series, call = same
            ours = float(cs["cold_new_client" if which == "new" else "cold_warm_client"]["median"])
            theirs = float(series["median"])
            add(
                f"cold 1 key ({label}) within {COLD_SLACK - 1:.0%} of raw boto3 {call}",
                name,
                verdict(ours <= theirs * COLD_SLACK),
                f"{ours / theirs:.2f}x ({human(ours, 'ms')} vs {human(theirs, 'ms')})",
            )
    imports = results.get("import", {})
    if "confstage" in imports:
        ours = float(imports["confstage"]["median"])
        add(f"import confstage <= {IMPORT_MS:.0f} ms", "import", verdict(ours <= IMPORT_MS), human(ours, "ms"))
        if "powertools_parameters" in imports:
            theirs = float(imports["powertools_parameters"]["median"])
            ratio = theirs / ours
            add(
                f"import >= {IMPORT_VS_POWERTOOLS:.0f}x cheaper than Powertools' parameters",
                "import",
                verdict(ratio >= IMPORT_VS_POWERTOOLS),
                f"{ratio:.0f}x ({human(ours, 'ms')} vs {human(theirs, 'ms')})",
            )
    return targets


# -- the text table -----------------------------------------------------------------------------------


def _cell(series: dict[str, Any] | None, *, requests: bool = True) -> str:
    if not series:
        return "-"
    text = f"{human(series['median'], series['unit'])} / {human(series['p99'], series['unit'])}"
    if requests and "requests" in series:
        text += f"  {series['requests']} req"
        if "requests_range" in series:
            low, high = series["requests_range"]
            text += f" ({low}-{high})"
    return text


def _source_table(name: str, entry: dict[str, Any], keys: int) -> list[str]:
    cs = entry["confstage"]
    boto = entry.get("boto3") or {}
    pt = entry.get("powertools") or {}
    head = [
        "",
        "confstage",
        f"boto3 {boto.get('one_call', '')} per key" if boto else "boto3",
        f"boto3 {boto.get('batch_call')}" if boto.get("batch_call") else "boto3 batch",
        f"Powertools {pt.get('provider', '')}" if pt else "Powertools",
    ]
    rows = [
        [
            "cold 1 key, new client",
            _cell(cs["cold_new_client"]),
            _cell(boto.get("cold_new_client")),
            _cell(boto.get("batch_cold_new_client")),
            _cell(pt.get("cold_new_client")),
        ],
        [
            "cold 1 key, client made",
            _cell(cs["cold_warm_client"]),
            _cell(boto.get("cold_warm_client")),
            _cell(boto.get("stage_batch")),
            _cell(pt.get("cold_warm_client")),
        ],
        [
            f"whole stage ({keys} keys)",
            _cell(cs["stage"]),
            _cell(boto.get("stage_each")),
            _cell(boto.get("stage_batch")),
            _cell(pt.get("stage")),
        ],
        [
            "warm get, per call",
            _cell(cs["warm_get"], requests=False),
            "(no cache: a call per get)" if boto else "-",
            "-",
            _cell(pt.get("warm_get"), requests=False),
        ],
        ["new process, warm /tmp", _cell(cs["new_process"]), "-", "-", "-"],
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [f"{entry['title']}  [{name}]  {cs['url']}"]
    for row in [head, *rows]:
        lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    floor = entry["floor"]
    warm = cs["warm_get"]
    notes = [
        f"dict-lookup floor {_cell(floor, requests=False)}; Config.get {_cell(cs['warm_config_get'], requests=False)}",
        f"new process: {_cell(cs['new_process']['process_wall'], requests=False)} wall incl. interpreter start; "
        f"boto3 imported: {'yes' if cs['new_process']['boto3_imported'] else 'no'}",
        f"samples: cold/stage n={cs['stage']['n']}, warm n={warm['n']} repeats x {warm['calls_per_repeat']:,} calls, "
        f"new process n={cs['new_process']['n']}",
    ]
    if pt:
        notes.append(f"Powertools whole stage: {pt['stage_call']}")
        if pt.get("note"):
            notes.append(str(pt["note"]))
    notes.extend(entry.get("notes", []))
    lines.extend(f"    - {note}" for note in notes)
    return lines


def render(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"confstage benchmark: {meta['keys']} keys per stage, +{meta['latency_ms']:g} ms per AWS call, "
        f"{meta['endpoint']}, Python {meta['python']} on {meta['cpus']} CPUs ({meta['platform']})",
        "cells: median / p99, and the HTTP requests one run made",
        "",
    ]
    if results.get("per_invocation"):
        lines.extend(_invocation.render(results["per_invocation"]))
        lines.append("")
    for name, entry in results["sources"].items():
        if entry.get("status") != "ok":
            lines.append(f"{entry['title']}  [{name}]  {entry.get('status', '').upper()}: {entry.get('reason', '')}")
            lines.append("")
            continue
        lines.extend(_source_table(name, entry, int(meta["keys"])))
        lines.append("")
    lines.append("import time (-X importtime, cumulative; median / p99; wall clock in a fresh interpreter)")
    for series in results["import"].values():
        lines.append(f"  {series['statement']:<52} {_cell(series)}   wall {_cell(series['wall'])}  n={series['n']}")
    lines.append("")
    cold = results.get("cold_path")
    if cold and cold.get("rows"):
        lines.append(cold_path.render(cold["rows"]))
        lines.append(f"  ({cold['endpoint']}; no simulated latency: the client side of a cold start)")
        lines.append("")
    lines.append("targets (issue 7)")
    width = max((len(t["target"]) for t in results["targets"]), default=10)
    for target in results["targets"]:
        lines.append(
            f"  {target['status']:<4}  {target['source']:<18}  {target['target']:<{width}}  {target['measured']}"
        )
    counts = {s: sum(t["status"] == s for t in results["targets"]) for s in ("PASS", "FAIL", "N/A", "SKIP")}
    lines.append("  " + ", ".join(f"{n} {s}" for s, n in counts.items() if n))
    if "duration_s" in meta:
        lines.append(f"run took {meta['duration_s']} s")
    return "\n".join(lines)


# -- the chart ----------------------------------------------------------------------------------------

_COLOURS = {"confstage": "#1f77b4", "boto3": "#7f7f7f", "Powertools": "#ff7f0e", "dict lookup": "#2ca02c"}
_LEGEND = {
    "boto3": "raw boto3 (same call; no cache, so its warm get is a call)",
    "Powertools": "Powertools parameters (max_age cache when warm)",
    "dict lookup": "floor: a function doing one dict lookup",
}


def _bars(entry: dict[str, Any]) -> dict[str, list[dict[str, Any] | None]]:
    """Per contender, the series for [cold new client, cold client made, whole stage, warm get]."""
    cs = entry["confstage"]
    boto = entry.get("boto3")
    pt = entry.get("powertools")
    bars: dict[str, list[dict[str, Any] | None]] = {
        "confstage": [cs["cold_new_client"], cs["cold_warm_client"], cs["stage"], cs["warm_get"]]
    }
    if boto:
        new, _ = _same_call(entry, "new") or (None, "")
        warm, _ = _same_call(entry, "warm") or (None, "")
        best = boto.get("stage_batch") or boto["stage_each"]
        bars["boto3"] = [new, warm, best, boto["cold_warm_client"]]  # no cache: every get is a call
    if pt:
        bars["Powertools"] = [pt["cold_new_client"], pt["cold_warm_client"], pt["stage"], pt["warm_get"]]
    bars["dict lookup"] = [None, None, None, entry["floor"]]
    return bars


def plot(results: dict[str, Any], path: Path) -> None:
    """One panel per source (log-scale latency: cold, whole stage, warm get) and one for import time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt

    meta = results["meta"]
    measured = {n: e for n, e in results["sources"].items() if e.get("status") == "ok"}
    panels = len(measured) + 1
    cols = 3
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.6 * rows), squeeze=False)
    categories = ["cold 1 key\nnew client", "cold 1 key\nclient made", f"whole stage\n{meta['keys']} keys", "warm get"]
    width = 0.2
    for ax, (name, entry) in zip(axes.flat, measured.items(), strict=False):
        bars = _bars(entry)
        offset = -(len(bars) - 1) / 2
        for i, (who, series_list) in enumerate(bars.items()):
            xs, heights, errors, labels = [], [], [], []
            for x, series in enumerate(series_list):
                if series is None:
                    continue
                scale = 1e-6 if series["unit"] == "ns" else 1.0
                xs.append(x + (offset + i) * width)
                heights.append(series["median"] * scale)
                errors.append(max(0.0, (series["p99"] - series["median"]) * scale))
                label = human(series["median"], series["unit"])
                if "requests" in series and x < 3:
                    label += f" · {series['requests']}r"
                labels.append(label)
            if not xs:
                continue
            drawn = ax.bar(
                xs, heights, width, label=who, color=_COLOURS[who], yerr=[[0.0] * len(errors), errors], capsize=2
            )
            ax.bar_label(drawn, labels=labels, rotation=90, fontsize=7, padding=3)
        ax.set_yscale("log")
        ax.set_xticks(range(len(categories)), categories, fontsize=8)
        ax.set_ylabel("ms (log scale)")
        ax.set_title(name, fontsize=11)
        ax.margins(y=0.35)
        ax.grid(axis="y", which="major", alpha=0.3)
    ax = axes.flat[len(measured)]
    names = [
        s["statement"].removeprefix("import ").replace(".utilities.", "\n.utilities.")
        for s in results["import"].values()
    ]
    medians = [s["median"] for s in results["import"].values()]
    drawn = ax.barh(names, medians, color=["#1f77b4", "#ff7f0e", "#7f7f7f"][: len(names)])
    ax.bar_label(drawn, labels=[human(m, "ms") for m in medians], fontsize=8, padding=3)
    ax.set_xscale("log")
    ax.set_xlabel("ms (log scale), -X importtime cumulative")
    ax.set_title("import time", fontsize=11)
    ax.tick_params(axis="y", labelsize=8)
    ax.margins(x=0.25)
    for extra in list(axes.flat)[panels:]:
        extra.axis("off")
    handles = [matplotlib.patches.Patch(color=colour, label=_LEGEND.get(who, who)) for who, colour in _COLOURS.items()]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=9, bbox_to_anchor=(0.5, 0.965))
    fig.suptitle(
        f"confstage vs raw boto3 vs Powertools: {meta['keys']} keys, +{meta['latency_ms']:g} ms per AWS call, "
        f"{meta['endpoint']}; median, whisker = p99, ·Nr = HTTP requests",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(path, dpi=110)
    plt.close(fig)
