"""Time to download 1,000 glucose records through RACP via bleak, next to a same-run baseline.

Run from the repository root: ``python -m bench.sim_devices``. In one run:

* ``glucose meter, RACP report all``: a simulated glucose meter (vitalgate.firmware_sim) holding
  N records; plain bleak subscribes, writes "report all stored records" to the RACP and waits
  for the "success" indication -- every record is encoded by the codec, passes the device's
  fault hooks and arrives as a Glucose Measurement notification, which the receiver decodes;
* ``baseline: N raw notifications``: a bare SimPeripheral sends N notifications of the same
  size, triggered by one write, received by the same bleak backend (no RACP, no codec).

The ratio is the cost of the device model (RACP procedure, encoding, decoding, fault hooks) on
top of moving the same bytes. Best of several runs (the machine is shared). The section
"## firmware_sim devices" of bench/README.md is replaced with the figures of this run.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_str
from bumble.gatt import Characteristic, Service

from vitalgate.drivers import glucose as glc
from vitalgate.drivers import racp
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.clock import SimClock
from vitalgate.firmware_sim.devices.common import DeviceSetup, Patient, PatientProfile
from vitalgate.firmware_sim.devices.glucose_meter import GlucoseMeter
from vitalgate.firmware_sim.peripheral import SimPeripheral
from vitalgate.firmware_sim.truth import TruthLog
from vitalgate.firmware_sim.world import SimWorld

README = Path(__file__).with_name("README.md")
SECTION = "## firmware_sim devices"
START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
GLUCOSE_SERVICE = normalize_uuid_str("1808")
MEASUREMENT = normalize_uuid_str("2a18")
RACP = normalize_uuid_str("2a52")
RAW_SERVICE = "5e1f1001-0000-4000-8000-00000000be0c"
RAW_STREAM = "5e1f1002-0000-4000-8000-00000000be0c"
RAW_TRIGGER = "5e1f1003-0000-4000-8000-00000000be0c"


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    records: int
    elapsed_s: float

    @property
    def per_second(self) -> float:
        return self.records / self.elapsed_s


async def glucose_download(records: int) -> tuple[Figure, int]:
    """Seconds from the RACP write to the success indication, and the record size (bytes)."""
    clock = SimClock(START)
    patient = Patient(
        patient_id="bench",
        profile=PatientProfile.TYPE2_DIABETIC,
        start=START,
        timezone=ZoneInfo("UTC"),
        seed=1,
    )
    setup = DeviceSetup(
        serial="GM-BENCH",
        model="bench",
        manufacturer="vitalgate",
        firmware="1",
        name="GM-BENCH",
        seed=77,
        passkey=123456,
        patients={1: patient},
    )
    async with SimWorld(seed=3) as world:
        meter = GlucoseMeter(setup, clock=clock, truth=TruthLog(), memory_capacity=records)
        await world.add(meter)
        for _ in range(records):
            meter.measure(meal=None, carbohydrate_id=None)
        await meter.start_advertising()
        with use_simulation(world):
            device = await BleakScanner.find_device_by_filter(
                lambda _d, adv: GLUCOSE_SERVICE in adv.service_uuids, timeout=10.0
            )
            assert device is not None
            async with BleakClient(device, pair=True) as client:
                got: list[glc.GlucoseMeasurement] = []
                done = asyncio.Event()
                await client.start_notify(
                    MEASUREMENT, lambda _c, d: got.append(glc.parse_measurement(bytes(d)))
                )

                def on_response(_c: object, data: bytearray) -> None:
                    if racp.parse_response(bytes(data)).is_success:
                        done.set()

                await client.start_notify(RACP, on_response)
                started = time.perf_counter()
                await client.write_gatt_char(
                    RACP, racp.encode_request(racp.report_all()), response=True
                )
                await asyncio.wait_for(done.wait(), 120.0)
                elapsed = time.perf_counter() - started
        if len(got) != records:
            raise RuntimeError(f"received {len(got)} of {records} records")
        size = len(glc.encode_measurement(meter.records[0].measurement))
    return Figure("glucose meter, RACP report all (bleak)", records, elapsed), size


class _Streamer(SimPeripheral):
    """Sends ``count`` notifications of ``size`` bytes when its trigger is written."""

    def __init__(self, count: int, size: int) -> None:
        super().__init__(name="RAW", seed=78, service_uuids=[RAW_SERVICE])
        self.count = count
        self.payload = bytes(size)
        self.stream: Characteristic[bytes] | None = None

    def build_services(self) -> list[Service]:
        self.stream = self.make_characteristic(RAW_STREAM, notify=True)
        trigger = self.make_characteristic(RAW_TRIGGER, write=self._on_trigger)
        return [Service(RAW_SERVICE, [self.stream, trigger])]

    def _on_trigger(self, _data: bytes) -> None:
        self.spawn(self._send())

    async def _send(self) -> None:
        assert self.stream is not None
        for _ in range(self.count):
            await self.notify(self.stream, self.payload)


async def raw_notifications(records: int, size: int) -> Figure:
    async with SimWorld(seed=4) as world:
        streamer = await world.add(_Streamer(records, size))
        await streamer.start_advertising()
        with use_simulation(world):
            device = await BleakScanner.find_device_by_filter(
                lambda _d, adv: normalize_uuid_str(RAW_SERVICE) in adv.service_uuids, timeout=10.0
            )
            assert device is not None
            async with BleakClient(device) as client:
                got = 0
                done = asyncio.Event()

                def on_value(_c: object, _d: bytearray) -> None:
                    nonlocal got
                    got += 1
                    if got == records:
                        done.set()

                await client.start_notify(RAW_STREAM, on_value)
                started = time.perf_counter()
                await client.write_gatt_char(RAW_TRIGGER, b"\x01", response=True)
                await asyncio.wait_for(done.wait(), 120.0)
                elapsed = time.perf_counter() - started
    return Figure(f"baseline: {records} raw {size}-byte notifications (bleak)", records, elapsed)


async def _best_of(repeats: int, run: Callable[[], Awaitable[Figure]]) -> Figure:
    best: Figure | None = None
    for _ in range(repeats):
        figure = await run()
        if best is None or figure.elapsed_s < best.elapsed_s:
            best = figure
    assert best is not None
    return best


def _write_readme(figures: list[Figure]) -> None:
    baseline = figures[-1]
    lines = [
        SECTION,
        "",
        "`python -m bench.sim_devices`: time to download stored glucose records from a simulated",
        'glucose meter through RACP with plain bleak (write "report all" -> every record as a',
        'Glucose Measurement notification, decoded by the receiver -> "success" indication),',
        "next to the same number of raw notifications of the same size through the same backend",
        "(baseline measured in the same run; best of several runs; CPU-bound simulation on this",
        "machine, not radio timing).",
        "",
        "| path | records | seconds | records/s | vs baseline time |",
        "|---|---:|---:|---:|---:|",
    ]
    for f in figures:
        lines.append(
            f"| {f.label} | {f.records} | {f.elapsed_s:.3f} | {f.per_second:,.0f} "
            f"| {f.elapsed_s / baseline.elapsed_s:.2f} |"
        )
    lines += [
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}.",
        "",
    ]
    section = "\n".join(lines)
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n"
    if SECTION in text:
        head, _, rest = text.partition(SECTION)
        next_heading = rest.find("\n## ")
        tail = rest[next_heading + 1 :] if next_heading >= 0 else ""
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text, encoding="utf-8")


async def main(records: int, repeats: int, write: bool) -> None:
    sizes: list[int] = []

    async def download() -> Figure:
        figure, size = await glucose_download(records)
        sizes.append(size)
        return figure

    racp_figure = await _best_of(repeats, download)
    baseline = await _best_of(repeats, lambda: raw_notifications(records, sizes[0]))
    figures = [racp_figure, baseline]
    for f in figures:
        print(f"{f.label:<55} {f.records:>6} records  {f.elapsed_s:7.3f} s  {f.per_second:9,.0f}/s")
    print(f"RACP download / baseline time: {racp_figure.elapsed_s / baseline.elapsed_s:.2f}")
    if write:
        _write_readme(figures)
        print(f"updated {README}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    args = parser.parse_args()
    asyncio.run(main(args.records, args.repeats, not args.no_readme))
