"""`summary.md`: one row per measured exponent, next to `summary.json`.

Each sweep experiment's result holds `exponents`: rows of `quantity`, `measured`, `ci_low`,
`ci_high` and `predicted` (None where the theory gives no number). This module only formats
them; it computes nothing.
"""

from __future__ import annotations

import json
import pathlib

from ._io import atomic_write_text

__all__ = ["exponent_table", "write_summary_markdown"]


def _number(value, digits: int = 3) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def exponent_table(results: dict[str, dict]) -> str:
    """Markdown table of every experiment's `exponents` rows (experiment name → result)."""
    lines = [
        "| experiment | exponent | measured | 95% CI | predicted | measured − predicted |",
        "|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for row in result.get("exponents", []):
            measured, predicted = row.get("measured"), row.get("predicted")
            ci = row.get("ci_low"), row.get("ci_high")
            interval = "–" if None in ci else f"[{_number(ci[0])}, {_number(ci[1])}]"
            diff = None if measured is None or predicted is None else measured - predicted
            lines.append(
                f"| {name} | {row['quantity']} | {_number(measured)} | {interval} | "
                f"{_number(predicted)} | {_number(diff)} |"
            )
    return "\n".join(lines) + "\n"


def _read(path: pathlib.Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_summary_markdown(out_dir: pathlib.Path, summary: dict) -> pathlib.Path:
    """Write `out_dir/summary.md` from the run records in `summary` and the result files."""
    out_dir = pathlib.Path(out_dir)
    results, status = {}, []
    for name, record in summary.items():
        seconds = record.get("seconds")
        took = "" if seconds is None else f" in {seconds:.1f} s"
        status.append(f"- `{name}`: {record.get('status')}{took}"
                      + (f" ({record['error']})" if record.get("error") else ""))
        result = _read(out_dir / f"{name}.json") if record.get("status") == "ok" else None
        if result is not None and result.get("exponents"):
            results[name] = result
    text = (
        "# Scaling exponents: measured against predicted\n\n"
        "Decay exponents p of y ∝ x^(−p). CI: 95%, from each experiment's fit.\n\n"
        + exponent_table(results)
        + "\n## Runs\n\n" + "\n".join(status) + "\n"
    )
    return atomic_write_text(out_dir / "summary.md", text)
