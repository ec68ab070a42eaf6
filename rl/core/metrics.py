"""Metric sinks: ``metrics.csv`` (one row per log step) and TensorBoard event files (scalars and
histograms).

Keys follow stable-baselines3's namespaces (``rollout/ep_rew_mean``, ``train/policy_loss``,
``time/fps``, ``eval/mean_reward``); the x axis is always environment steps. On resume, rows
logged after the restored checkpoint are dropped from the CSV and purged from TensorBoard, so a
resumed run's logs equal an uninterrupted run's: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["CsvSink", "MetricLogger", "MetricsFileError", "TensorBoardSink", "WALL_CLOCK_KEYS"]

WALL_CLOCK_KEYS = ("time/fps", "time/elapsed_s")
"""Columns that depend on wall-clock time, excluded from reproducibility comparisons."""


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


class MetricsFileError(ValueError):
    """``metrics.csv`` cannot be continued on resume (other columns, a damaged row); the message names it."""


def _row_step(line: str, columns: int) -> int | None:
    """The step of a complete, well-formed CSV row; None for a row cut by a kill or otherwise damaged."""
    if not line.endswith(("\n", "\r")):
        return None
    try:
        row = next(csv.reader([line]))
        return int(row[0]) if len(row) == columns else None
    except (csv.Error, ValueError, StopIteration):
        return None


class CsvSink:
    """Appends rows of fixed columns to ``metrics.csv``; column set declared up front."""

    def __init__(self, path: Path, columns: Sequence[str], resume_step: int | None = None):
        self.path = Path(path)
        self.columns = ["step", *[c for c in columns if c != "step"]]
        if resume_step is not None and self.path.exists():
            self._truncate_after(resume_step)
        new = not self.path.exists() or self.path.stat().st_size == 0
        self._failed = False
        self._file = open(self.path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        if new:
            self._writer.writerow(self.columns)
            self.flush()

    def _error(self, err: OSError) -> OSError:
        """``err`` with this file's path (a failed write or flush does not say which file it was)."""
        self._failed = True
        if err.filename is None and err.errno is not None:
            return OSError(err.errno, err.strerror, str(self.path))
        return err

    def _truncate_after(self, step: int) -> None:
        """Keep the header and complete rows with ``step <= step``; rewrite atomically."""
        with open(self.path, encoding="utf-8", newline="") as f:  # keep the csv module's \r\n endings
            text = f.read()
        lines = text.splitlines(keepends=True)
        if not lines:
            return
        header = next(csv.reader([lines[0]]))
        if header != self.columns:
            raise MetricsFileError(
                f"{self.path}: columns {header} differ from this run's {self.columns}; "
                "the run directory belongs to another configuration"
            )
        kept = [lines[0]]
        bad = None  # line number of the first row that does not parse
        for lineno, line in enumerate(lines[1:], start=2):
            row_step = _row_step(line, len(header))
            if row_step is None:
                bad = bad or lineno
                continue
            if row_step > step:
                break  # logged after the checkpoint: dropped, the resumed run logs it again
            if bad is not None:
                # Rows up to the checkpoint were fsynced before it was saved: a kill cannot damage them.
                raise MetricsFileError(
                    f"{self.path}:{bad}: malformed row before row {lineno} (step {row_step}), which the "
                    f"checkpoint of step {step} covers; resuming would drop logged history. Repair or remove "
                    "that line and resume again"
                )
            kept.append(line)
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                f.write("".join(kept))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as err:
            tmp.unlink(missing_ok=True)
            if err.filename is None and err.errno is not None:
                raise OSError(err.errno, err.strerror, str(tmp)) from err
            raise

    def write(self, step: int, values: Mapping[str, float]) -> None:
        """One row; unknown keys are an error (declare them in ``columns``)."""
        unknown = set(values) - set(self.columns)
        if unknown:
            raise KeyError(f"metrics {sorted(unknown)} were not declared as CSV columns")
        try:
            self._writer.writerow([str(int(step))] + [_fmt(values.get(c)) for c in self.columns[1:]])
        except OSError as err:
            raise self._error(err) from err

    def flush(self, durable: bool = False) -> None:
        """Flush to the OS; with ``durable`` also fsync (done before every checkpoint)."""
        try:
            self._file.flush()
            if durable:
                os.fsync(self._file.fileno())
        except OSError as err:
            raise self._error(err) from err

    def close(self) -> None:
        """Close the file; after a write error was raised, a second one from closing is not raised over it."""
        try:
            self._file.close()
        except OSError as err:
            if not self._failed:
                raise self._error(err) from err


class TensorBoardSink:
    """Scalars into TensorBoard event files, written with tensorboard's own writer (no torch)."""

    def __init__(self, logdir: Path, purge_step: int | None = None):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._writer = EventFileWriter(str(logdir), max_queue_size=100, flush_secs=30)
        if purge_step is not None:
            from tensorboard.compat.proto.event_pb2 import Event, SessionLog

            # TensorBoard discards events with step >= purge_step logged before this marker.
            self._writer.add_event(
                Event(step=purge_step, wall_time=time.time(), session_log=SessionLog(status=SessionLog.START))
            )

    def write(self, step: int, values: Mapping[str, float]) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(
            value=[
                Summary.Value(tag=k, simple_value=float(v))
                for k, v in values.items()
                if v is not None and not math.isnan(float(v))
            ]
        )
        self._writer.add_event(Event(step=int(step), wall_time=time.time(), summary=summary))

    def histogram(self, step: int, tag: str, values: Sequence[float], edges: Sequence[float]) -> None:
        """A histogram of ``values`` over the bins ``edges`` (B+1 increasing numbers) at ``step``.

        Written as TensorBoard's ``HistogramProto``: ``bucket_limit`` holds each bucket's right edge,
        so the B+1 buckets are one empty bucket up to ``edges[0]``, then the counts of the B bins
        (as ``numpy.histogram``: half-open, the last bin closed). Values outside ``[edges[0],
        edges[-1]]`` are counted in the first or last bin; non-finite values are dropped; nothing is
        written when no value is left. Fixed edges keep the bins of one tag equal across steps.
        """
        import numpy as np
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary

        edges_b = np.asarray(edges, dtype=np.float64)
        if edges_b.ndim != 1 or len(edges_b) < 2 or not np.all(np.diff(edges_b) > 0):
            raise ValueError(f"histogram {tag!r}: edges must be at least two increasing numbers")
        values_v = np.asarray(values, dtype=np.float64).reshape(-1)
        values_v = values_v[np.isfinite(values_v)]
        if not len(values_v):
            return
        counts_b, _ = np.histogram(np.clip(values_v, edges_b[0], edges_b[-1]), bins=edges_b)
        proto = HistogramProto(min=float(values_v.min()), max=float(values_v.max()), num=float(len(values_v)),
                               sum=float(values_v.sum()), sum_squares=float(values_v @ values_v),
                               bucket_limit=edges_b.tolist(), bucket=[0.0, *counts_b.astype(np.float64).tolist()])
        summary = Summary(value=[Summary.Value(tag=tag, histo=proto)])
        self._writer.add_event(Event(step=int(step), wall_time=time.time(), summary=summary))

    def flush(self, durable: bool = False) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class MetricLogger:
    """Fans a row of metrics out to every sink."""

    def __init__(self, sinks: Sequence[CsvSink | TensorBoardSink]):
        self.sinks = list(sinks)

    def write(self, step: int, values: Mapping[str, float]) -> None:
        for sink in self.sinks:
            sink.write(step, values)

    def flush(self, durable: bool = False) -> None:
        for sink in self.sinks:
            sink.flush(durable)

    def close(self) -> None:
        """Close every sink, even when one fails; the first failure is raised afterwards."""
        first: BaseException | None = None
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as err:
                first = first or err
        if first is not None:
            raise first


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a metrics CSV as dicts (complete rows only)."""
    text = Path(path).read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))
