"""Run records of the experiment runner: staging, per-experiment records and the summary.

- Each experiment runs in a private staging folder next to the results; only when it returns
  are its files moved into the results folder (the result JSON last). A failing experiment
  leaves no figure and no result behind.
- After each experiment the runner writes `<name>.run.json` (status, configuration, time,
  error and traceback if it failed). These records are the source of truth.
- `summary.json` is the union of the records, rewritten atomically after every experiment. If
  it is unreadable (a torn write from an older version, a full disk, a hand edit), it is moved
  aside as `summary.json.corrupt-<timestamp>` with a warning and rebuilt from the records.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator

from ._io import write_json

__all__ = ["finished", "load_summary", "record_run", "staging", "SUMMARY"]

SUMMARY = "summary.json"
_RECORD_SUFFIX = ".run.json"


def _record_path(out_dir: pathlib.Path, name: str) -> pathlib.Path:
    return out_dir / f"{name}{_RECORD_SUFFIX}"


def _read_json(path: pathlib.Path) -> dict | None:
    """The JSON object in `path`, or None if it is missing, torn or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def load_summary(out_dir: pathlib.Path) -> dict:
    """The summary of `out_dir`: its run records, over any entries of a readable summary.json.

    A `summary.json` that exists but does not parse as a JSON object is moved aside with a
    `RuntimeWarning`; nothing is lost, since the records are rebuilt from `*.run.json`.
    """
    path = out_dir / SUMMARY
    summary: dict = {}
    if path.exists():
        previous = _read_json(path)
        if previous is None:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            aside = path.with_name(f"{SUMMARY}.corrupt-{stamp}")
            os.replace(path, aside)
            warnings.warn(
                f"{path} was unreadable (torn or not a JSON object); moved it to {aside.name} "
                f"and rebuilt the summary from the {_RECORD_SUFFIX} files",
                RuntimeWarning,
                stacklevel=2,
            )
        else:
            summary.update(previous)
    for record_path in sorted(out_dir.glob(f"*{_RECORD_SUFFIX}")):
        record = _read_json(record_path)
        if record is not None:
            summary[record_path.name[: -len(_RECORD_SUFFIX)]] = record
    return summary


def finished(out_dir: pathlib.Path, name: str, config_json: str) -> dict | None:
    """The record of a successful earlier run of `name` with this configuration, else None."""
    record = _read_json(_record_path(out_dir, name))
    if (
        record is not None
        and record.get("status") == "ok"
        and record.get("config") == config_json
        and (out_dir / f"{name}.json").exists()
    ):
        return record
    return None


def record_run(out_dir: pathlib.Path, summary: dict, name: str, record: dict) -> None:
    """Store `record` as `<name>.run.json` and in `summary`, then rewrite summary.json."""
    write_json(_record_path(out_dir, name), record)
    summary[name] = record
    write_json(out_dir / SUMMARY, summary)


def _publish(stage: pathlib.Path, out_dir: pathlib.Path, name: str) -> list[str]:
    # The result JSON goes last: its presence marks a finished experiment.
    entries = sorted(stage.iterdir(), key=lambda p: (p.name == f"{name}.json", p.name))
    published = []
    for entry in entries:
        if entry.name.endswith(".tmp"):
            continue  # an abandoned atomic write
        target = out_dir / entry.name
        if entry.is_dir() and target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
        published.append(entry.name)
    return published


@contextlib.contextmanager
def staging(out_dir: pathlib.Path, name: str) -> Iterator[tuple[pathlib.Path, list[str]]]:
    """A private folder for one run of `name`; its files reach `out_dir` only on success.

    Yields `(folder, published)`; after a clean exit `published` lists the moved file names.
    The folder is removed in every case (also on KeyboardInterrupt).
    """
    for stale in out_dir.glob(f".{name}.staging-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    stage = pathlib.Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name}.staging-"))
    published: list[str] = []
    try:
        yield stage, published
        published.extend(_publish(stage, out_dir, name))
    finally:
        shutil.rmtree(stage, ignore_errors=True)
