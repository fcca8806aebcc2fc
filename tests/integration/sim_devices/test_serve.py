"""`vitalgate sim serve` runs the household in its own process; a gateway attaches over TCP,
pairs with the glucose meter's passkey and downloads its records; a second gateway session
(after the first one is gone) downloads only the new ones, the device kept its memory."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from bleak import BleakClient, BleakScanner
from bleak.uuids import normalize_uuid_str

from vitalgate.drivers import glucose as glc
from vitalgate.drivers import racp
from vitalgate.firmware_sim.backend import use_simulation
from vitalgate.firmware_sim.relay import connect_remote_world
from vitalgate.firmware_sim.truth import TruthLog

REPO_ROOT = Path(__file__).resolve().parents[3]
GLUCOSE_SERVICE = normalize_uuid_str("1808")
MEASUREMENT = normalize_uuid_str("2a18")
RACP = normalize_uuid_str("2a52")


async def _download(url: str, bonds: Path, passkeys: dict[str, int], first: int) -> list[int]:
    async with connect_remote_world(url, seed=5, bond_store_path=bonds) as world:
        world.known_passkeys.update(passkeys)
        with use_simulation(world):
            device = await BleakScanner.find_device_by_filter(
                lambda _d, adv: GLUCOSE_SERVICE in adv.service_uuids, timeout=10.0
            )
            assert device is not None
            async with BleakClient(device, pair=not bonds.exists()) as client:
                seqs: list[int] = []
                done: asyncio.Queue[racp.RacpResponse] = asyncio.Queue(maxsize=4)
                await client.start_notify(
                    MEASUREMENT,
                    lambda _c, d: seqs.append(glc.parse_measurement(bytes(d)).sequence_number),
                )
                await client.start_notify(
                    RACP, lambda _c, d: done.put_nowait(racp.parse_response(bytes(d)))
                )
                request = racp.report_from_sequence(first)
                await client.write_gatt_char(RACP, racp.encode_request(request), response=True)
                response = await asyncio.wait_for(done.get(), 10.0)
                assert response.is_success, response
                return seqs


async def test_sim_serve_household_across_processes(tmp_path: Path) -> None:
    info_file = tmp_path / "devices.json"
    truth_file = tmp_path / "truth.jsonl"
    scenario = REPO_ROOT / "vitalgate/firmware_sim/scenarios/household.toml"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vitalgate",
        "sim",
        "serve",
        "--scenario",
        str(scenario),
        "--speed",
        "14400",
        "--info-file",
        str(info_file),
        "--truth-out",
        str(truth_file),
        "--truth-interval-s",
        "0.2",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30.0)).decode()
        assert line.startswith("relay: tcp://")
        for _ in range(50):
            if info_file.exists():
                break
            await asyncio.sleep(0.1)
        info = json.loads(info_file.read_text())
        assert info_file.stat().st_mode & 0o777 == 0o600
        passkeys = {d["address"]: d["passkey"] for d in info["devices"] if d["passkey"]}
        await asyncio.sleep(2.0)  # 8 simulated hours: a few finger-stick tests
        bonds = tmp_path / "bonds.json"
        first = await _download(info["relay_url"], bonds, passkeys, 1)
        assert first and first == list(range(1, len(first) + 1))
        await asyncio.sleep(1.5)
        second = await _download(info["relay_url"], bonds, passkeys, first[-1] + 1)
        assert second and second[0] == first[-1] + 1
        # The clock anchor a gateway follows (`vitalgate run --sim-info`), and the truth file
        # rewritten every 0.2 s, atomically (always whole JSON lines).
        assert info["clock"]["speed"] == 14400.0 and info["clock"]["sim_at"]
        meter = [d["serial"] for d in info["devices"] if d["kind"] == "glucose_meter"]
        await asyncio.sleep(0.5)
        live = TruthLog.read_jsonl(truth_file)
        assert sum(1 for t in live if t.device_serial in meter) >= len(first) + len(second)
        process.terminate()  # SIGTERM: a clean stop, the final truth written
        assert await asyncio.wait_for(process.wait(), 15.0) == 0
        assert len(TruthLog.read_jsonl(truth_file)) >= len(live)
        assert truth_file.stat().st_mode & 0o777 == 0o600
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
