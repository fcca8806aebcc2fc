"""``vitalgate query``: read readings back from the configured store, for people and scripts.

Examples::

    vitalgate query --store sqlite:///var/lib/vitalgate/readings.db \\
        --patient p-anna --kind blood_pressure --from 2026-11-01 --to 2026-11-24 --format csv
    vitalgate query --store influxdb1://influx:8086/vitalgate --count
    VITALGATE_STORE_URL=victoriametrics://vm:8428 vitalgate query --patient p-ben --kind cgm

One output row per reading: ``measured_at`` (ISO 8601 UTC, ``Z``, microseconds), ``patient_id``,
``kind``, ``reading_id``, ``device``, the values (units in their names) and the quality flags.
``--format jsonl`` (default) writes one JSON object per line with ``values`` as an object and
``flags`` as a list; ``--format csv`` writes a header and one column per value field (empty
where a reading lacks the field) and the flags joined by ``;``. ``--count`` prints only the
number of readings. Rows are ordered by patient, kind, then time.

Time bounds: ``--from`` is inclusive and ``--to`` exclusive. Both take ISO 8601 (``2026-11-24``,
``2026-11-24T07:30``, ``2026-11-24T07:30:00Z``, ``...+01:00``); a time without an offset is
taken as UTC; a bare date given to ``--to`` means the end of that day (``--from 2026-11-24
--to 2026-11-24`` is that whole day). Without bounds every reading is returned.

Without ``--patient``/``--kind`` every patient the store knows / every kind of measurement is
read; the gateway's device-health rows (battery, clock error per sync) only with ``--kind
device_status``. Output
holds health data: ``--output FILE`` is created with mode 0600 (never printed to the log).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Final, Literal

import orjson

from vitalgate.cloud_sync.store import ReadingSeries, ReadingStore
from vitalgate.errors import ConfigError
from vitalgate.readings import ReadingKind

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "STORE_ENV",
    "QueryRow",
    "count_readings",
    "format_csv",
    "format_jsonl",
    "iter_rows",
    "parse_time_bound",
    "register",
    "run_query",
]

STORE_ENV: Final = "VITALGATE_STORE_URL"
# "Everything": from the Unix epoch to a date well inside int64 nanoseconds (year 2262).
DEFAULT_START: Final = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_END: Final = datetime(2200, 1, 1, tzinfo=UTC)

OutputFormat = Literal["jsonl", "csv"]


@dataclass(frozen=True, slots=True)
class QueryRow:
    """One reading as ``vitalgate query`` prints it."""

    measured_at: datetime
    patient_id: str
    kind: ReadingKind
    reading_id: str | None  # None where the store keeps no reading ids (VictoriaMetrics)
    device: str | None
    values: dict[str, float]
    flags: tuple[str, ...]


def parse_time_bound(text: str, *, end: bool, name: str) -> datetime:
    """An ISO 8601 date or datetime as aware UTC; a bare date as ``end`` means the next midnight.

    Raises ConfigError naming ``name`` (the option) with what was wrong.
    """
    raw = text.strip()
    if not raw:
        raise ConfigError(name, "is empty; expected an ISO 8601 date or datetime")
    if len(raw) == 10 and "T" not in raw:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise ConfigError(name, f"{text!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
        when = datetime.combine(day, time(0), tzinfo=UTC)
        return when + timedelta(days=1) if end else when
    try:
        when = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ConfigError(
            name, f"{text!r} is not ISO 8601 (e.g. 2026-11-24 or 2026-11-24T07:30:00Z)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def _iso_z(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _series_rows(series: ReadingSeries) -> Iterator[QueryRow]:
    n = len(series)
    names = sorted(series.values)
    columns = [(name, series.values[name].tolist()) for name in names]
    times = series.times_ns.tolist()
    ids, devices, flags = series.reading_ids, series.device_ids, series.flags
    for i in range(n):
        seconds, rest_ns = divmod(int(times[i]), 1_000_000_000)
        when = datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest_ns // 1000)
        values = {name: float(col[i]) for name, col in columns if not math.isnan(col[i])}
        yield QueryRow(
            measured_at=when,
            patient_id=series.patient_id,
            kind=series.kind,
            reading_id=(ids[i] or None) if i < len(ids) else None,
            device=(devices[i] or None) if i < len(devices) else None,
            values=values,
            flags=tuple(sorted(flags[i])) if i < len(flags) else (),
        )


#: What ``vitalgate query`` reads without ``--kind``: the patients' measurements.
MEASUREMENT_KINDS: Final = tuple(k for k in ReadingKind if k is not ReadingKind.DEVICE_STATUS)


def iter_rows(
    store: ReadingStore,
    *,
    patients: Sequence[str] | None = None,
    kinds: Sequence[ReadingKind] | None = None,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
) -> Iterator[QueryRow]:
    """Rows of every (patient, kind) in [start, end), by patient, kind, then time.

    ``patients=None`` reads every patient the store knows; ``kinds=None`` every kind of
    measurement (``device_status``, the devices' health, only when asked for).
    Raises ConfigError for an empty or inverted range, StoreError when the store fails.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ConfigError("from", "time bounds must be timezone-aware UTC")
    if not start < end:
        raise ConfigError("to", f"must be after --from ({_iso_z(start)} .. {_iso_z(end)})")
    who = sorted(store.patients()) if patients is None else list(patients)
    what = MEASUREMENT_KINDS if kinds is None else list(kinds)
    for patient in who:
        for kind in what:
            yield from _series_rows(store.query(patient, kind, start, end))


def count_readings(
    store: ReadingStore,
    *,
    patients: Sequence[str] | None = None,
    kinds: Sequence[ReadingKind] | None = None,
    start: datetime = DEFAULT_START,
    end: datetime = DEFAULT_END,
) -> int:
    """How many readings :func:`iter_rows` would yield (without building rows)."""
    if not start < end:
        raise ConfigError("to", f"must be after --from ({_iso_z(start)} .. {_iso_z(end)})")
    who = sorted(store.patients()) if patients is None else list(patients)
    what = MEASUREMENT_KINDS if kinds is None else list(kinds)
    return sum(len(store.query(p, k, start, end)) for p in who for k in what)


def format_jsonl(rows: Iterator[QueryRow], out: IO[str]) -> int:
    """Write one JSON object per row; returns the number of rows."""
    n = 0
    for row in rows:
        doc = {
            "measured_at": _iso_z(row.measured_at),
            "patient_id": row.patient_id,
            "kind": str(row.kind),
            "reading_id": row.reading_id,
            "device": row.device,
            "values": row.values,
            "flags": list(row.flags),
        }
        out.write(orjson.dumps(doc).decode())
        out.write("\n")
        n += 1
    return n


_CSV_FIXED: Final = ("measured_at", "patient_id", "kind", "reading_id", "device", "flags")


def format_csv(rows: Iterator[QueryRow], out: IO[str]) -> int:
    """Write a header and one line per row; value columns are the union over all rows.

    The rows are gathered first (the header must name every value column); returns the count.
    """
    gathered = list(rows)
    names = sorted({name for row in gathered for name in row.values})
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*_CSV_FIXED, *names])
    for row in gathered:
        writer.writerow(
            [
                _iso_z(row.measured_at),
                row.patient_id,
                str(row.kind),
                row.reading_id or "",
                row.device or "",
                ";".join(row.flags),
                *(repr(row.values[n]) if n in row.values else "" for n in names),
            ]
        )
    return len(gathered)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "query",
        help="read readings back from the store (JSON lines or CSV)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--store",
        default=os.environ.get(STORE_ENV),
        help=f"store URL (default ${STORE_ENV}): sqlite:///path.db | influxdb1://host:8086/db"
        " | influxdb2://host:8086?org=&bucket= | victoriametrics://host:8428",
    )
    p.add_argument(
        "--patient",
        action="append",
        default=None,
        metavar="P",
        help="patient id (repeatable; default: every patient in the store)",
    )
    p.add_argument(
        "--kind",
        action="append",
        default=None,
        choices=[str(k) for k in ReadingKind],
        metavar="KIND",
        help="reading kind (repeatable; default: every kind): "
        + ", ".join(str(k) for k in ReadingKind),
    )
    p.add_argument("--from", dest="start", default=None, metavar="D", help="inclusive, ISO 8601")
    p.add_argument("--to", dest="end", default=None, metavar="D", help="exclusive, ISO 8601")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    p.add_argument("--count", action="store_true", help="print only the number of readings")
    p.add_argument("--output", "-o", default=None, help="write to FILE (mode 0600), not stdout")
    p.set_defaults(func=_main)


def _open_output(path: str) -> IO[str]:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise ConfigError("output", f"cannot create {path}: {exc.strerror}") from exc
    os.fchmod(fd, 0o600)  # an existing file keeps its old mode through O_CREAT
    return io.open(fd, "w", encoding="utf-8", newline="")  # noqa: UP020 - from a descriptor


def run_query(
    store: ReadingStore,
    *,
    patients: Sequence[str] | None,
    kinds: Sequence[ReadingKind] | None,
    start: datetime,
    end: datetime,
    fmt: OutputFormat,
    out: IO[str],
) -> int:
    """Write the rows in ``fmt`` to ``out``; returns how many were written."""
    rows = iter_rows(store, patients=patients, kinds=kinds, start=start, end=end)
    if fmt == "csv":
        return format_csv(rows, out)
    return format_jsonl(rows, out)


def _main(args: argparse.Namespace) -> int:
    from vitalgate.cloud_sync.stores import open_store

    if not args.store:
        raise ConfigError("store", f"give --store URL or set {STORE_ENV}")
    start = (
        DEFAULT_START
        if args.start is None
        else parse_time_bound(args.start, end=False, name="from")
    )
    end = DEFAULT_END if args.end is None else parse_time_bound(args.end, end=True, name="to")
    if not start < end:
        raise ConfigError("to", f"must be after --from ({_iso_z(start)} .. {_iso_z(end)})")
    kinds = None if args.kind is None else [ReadingKind(k) for k in dict.fromkeys(args.kind)]
    patients = None if args.patient is None else list(dict.fromkeys(args.patient))
    store = open_store(args.store)
    try:
        if args.count:
            n = count_readings(store, patients=patients, kinds=kinds, start=start, end=end)
            print(n)
            return 0
        out = sys.stdout if args.output is None else _open_output(args.output)
        try:
            n = run_query(
                store,
                patients=patients,
                kinds=kinds,
                start=start,
                end=end,
                fmt=args.format,
                out=out,
            )
            out.flush()
        except BrokenPipeError:
            # `vitalgate query ... | head`: the reader left; not an error for a script.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
        finally:
            if out is not sys.stdout:
                out.close()
        if n == 0 and patients is not None:
            unknown = sorted(set(patients) - set(store.patients()))
            if unknown:
                print(
                    f"vitalgate query: no readings at all for patient(s) {unknown}", file=sys.stderr
                )
    finally:
        store.close()
    return 0
