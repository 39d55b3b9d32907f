"""``donghanh bench``: performance and quality figures, printed as a table and as JSON.

Figures are medians over repeated runs (this machine is shared and noisy). Each figure
carries its target, so a run says plainly what holds and what does not. This module
owns the figures, the table, the JSON file and the NLU suite; the suites that run a
real server (turns, memory, startup, growth) live in ``bot.benchmarks``.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str
    holds: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": round(self.value, 4) if math.isfinite(self.value) else None,
            "unit": self.unit,
            "target": self.target,
            "holds": self.holds,
        }


def at_least(name: str, value: float, target: float, unit: str) -> Figure:
    return Figure(name, value, unit, f">= {target:g}", value >= target)


def at_most(name: str, value: float, target: float, unit: str) -> Figure:
    return Figure(name, value, unit, f"<= {target:g}", value <= target)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def parse_ms(parse: Callable[[str], object], text: str) -> float:
    started = time.perf_counter()
    parse(text)
    return (time.perf_counter() - started) * 1000


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def load_in_fresh_process(model_dir: Path, rules: Path) -> dict[str, float]:
    """Model load time and resident memory, measured in a process of their own."""
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    code = (
        "import json,re,sys,time\n"
        "from pathlib import Path\n"
        "t=time.perf_counter()\n"
        "from bot.nlu.training import load_interpreter\n"
        "imported=time.perf_counter()\n"
        "i=load_interpreter(Path(sys.argv[1]),0.25,Path(sys.argv[2]))\n"
        "loaded=time.perf_counter()\n"
        "i.parse('xin chào')\n"
        "ready=time.perf_counter()\n"
        "hwm=re.search(r'VmHWM:\\s+(\\d+)',open('/proc/self/status').read())\n"
        "print(json.dumps({'load_s':loaded-imported,'ready_s':ready-t,"
        "'rss_mb':int(hwm.group(1))/1024}))\n"
    )
    done = subprocess.run(  # noqa: S603 (our own interpreter and code)
        [sys.executable, "-c", code, str(model_dir), str(rules)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bench_nlu(data_dir: Path, threshold: float, repeats: int = 3) -> list[Figure]:
    from bot.nlu.evaluation import evaluate_cues, evaluate_intents, read_cue_examples
    from bot.nlu.rasa_yaml import read_nlu_dir
    from bot.nlu.training import load_interpreter, train

    rules = data_dir / "risk_cues.yml"
    test = read_nlu_dir(data_dir / "test", exclude=())
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp)
        train_seconds = statistics.median(
            timed(lambda: train(data_dir, model_dir)) for _ in range(repeats)
        )
        loads = [load_in_fresh_process(model_dir, rules) for _ in range(repeats)]
        interpreter = load_interpreter(model_dir, threshold, rules)

    def predict(text: str) -> tuple[str, float]:
        intent = interpreter.parse(text).intent
        return (intent.name, intent.confidence) if intent else ("none", 0.0)

    reports = evaluate_intents(predict, test)
    texts = [example.text for example in test.examples]
    latencies = [parse_ms(interpreter.parse, text) for _ in range(repeats) for text in texts]
    throughput = statistics.median(
        len(texts) / timed(lambda: [interpreter.parse(t) for t in texts]) for _ in range(repeats)
    )
    cue_sets = {
        path.stem: evaluate_cues(
            lambda text: interpreter.parse(text).cue_names, read_cue_examples(path)
        )
        for path in sorted((data_dir / "test").glob("risk_cues*.yml"))
    }
    emergency = reports["as_written"].per_intent.get("emergency", {}).get("recall", 0.0)
    emergency_bare = reports["no_diacritics"].per_intent.get("emergency", {}).get("recall", 0.0)
    return [
        at_least("intent accuracy (held-out)", reports["as_written"].accuracy * 100, 95, "%"),
        at_least(
            "intent accuracy, no diacritics", reports["no_diacritics"].accuracy * 100, 92, "%"
        ),
        Figure("macro-F1 (held-out)", reports["as_written"].macro_f1 * 100, "%", "reported", True),
        at_least("emergency recall", emergency * 100, 100, "%"),
        at_least("emergency recall, no diacritics", emergency_bare * 100, 100, "%"),
        Figure(
            "calibration error (ECE), held-out",
            (reports["as_written"].calibration_error or 0.0) * 100,
            "%",
            "reported",
            True,
        ),
        *(
            figure
            for name, cues in cue_sets.items()
            for figure in (
                at_least(f"risk-cue micro recall, {name}", cues.micro_recall * 100, 90, "%"),
                at_least(f"risk-cue micro precision, {name}", cues.micro_precision * 100, 85, "%"),
            )
        ),
        at_most("parse latency median", statistics.median(latencies), 3, "ms"),
        at_most("parse latency p99", percentile(latencies, 99), 15, "ms"),
        at_least("throughput, one process", throughput, 1000, "msg/s"),
        at_most("full training", train_seconds, 30, "s"),
        at_most("model load", statistics.median(x["load_s"] for x in loads), 1, "s"),
        at_most(
            "fresh process to first parse", statistics.median(x["ready_s"] for x in loads), 3, "s"
        ),
        at_most(
            "resident memory, loaded NLU", statistics.median(x["rss_mb"] for x in loads), 200, "MB"
        ),
    ]


def render_table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "target", "")] + [
        (
            f.name,
            f"{f.value:.2f} {f.unit}".rstrip(),
            f.target if f.target == "reported" else f"{f.target} {f.unit}".rstrip(),
            "ok" if f.holds else "MISSED",
        )
        for f in figures
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def write_json(
    figures: list[Figure],
    suite: str,
    out: Path | None,
    details: dict[str, Any] | None = None,
) -> Path:
    """The figures (and the raw numbers behind them) as ``bench-results/SUITE-TIME.json``
    unless ``out`` names the file."""
    path = out or Path("bench-results") / f"{suite}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": suite,
        "at": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average": [round(x, 2) for x in os.getloadavg()],
        },
        "peak_rss_mb_of_bench": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "figures": [f.as_dict() for f in figures],
        **({"details": details} if details is not None else {}),
    }
    path.write_text(
        json.dumps(payload, ensure_ascii=False, indent=2, allow_nan=False, default=str),
        encoding="utf-8",
    )
    return path
