"""vitalgate PPG Stream: a VENDOR service (not a Bluetooth SIG profile) for raw PPG + motion.

The simulated wearable streams its raw photoplethysmogram and accelerometer through this
service so the gateway's signal checks (heart rate from PPG, motion-artifact flags) see the
raw waveforms. The format is specified byte by byte in ``docs/vendor-ppg-service.md``; this
module is its reference codec. All integers are little-endian, like every GATT value.

UUIDs (128-bit, vendor base ``603fxxxx-31c3-45a3-b944-c7f83af48501``):

* service                          ``603f0001-...``
* PPG Data (notify)                ``603f0002-...``
* Accelerometer Data (notify)      ``603f0003-...``
* Stream Configuration (read/write) ``603f0004-...``

Data packet (both data characteristics)::

    offset 0  u16  sequence            per characteristic, +1 per packet, wraps 0xFFFF -> 0
    offset 2  u32  first_sample_index  index of the first sample in the packet, counted per
                                       stream since streaming started; wraps 2**32 -> 0
    offset 6  samples:
              PPG:   N x s24            raw photodiode ADC counts (two's complement)
              accel: N x (x s16, y s16, z s16) in milli-g

N >= 1, and a packet fits one ATT notification at ATT_MTU 247 (244-byte value): at most 79 PPG
samples (243 bytes) or 39 accelerometer samples (240 bytes).

Stream Configuration: ``u16 sampling_rate_hz`` (64..256), the shared sample rate of both
streams (128 Hz after power-up). Writing it restarts both streams (sequence and sample index
from 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vitalgate.drivers._bytes import ByteReader, ByteWriter

__all__ = [
    "ACCEL_DATA_UUID",
    "ACCEL_MAX_SAMPLES_PER_PACKET",
    "ACCEL_SAMPLE_SIZE",
    "CONFIG_UUID",
    "DEFAULT_SAMPLING_RATE_HZ",
    "HEADER_SIZE",
    "MAX_NOTIFICATION_VALUE_SIZE",
    "MAX_SAMPLING_RATE_HZ",
    "MIN_SAMPLING_RATE_HZ",
    "PPG_DATA_UUID",
    "PPG_MAX_SAMPLES_PER_PACKET",
    "PPG_SAMPLE_SIZE",
    "PPG_STREAM_SERVICE_UUID",
    "PROFILE",
    "AccelPacket",
    "AccelSample",
    "PpgPacket",
    "PpgStreamConfig",
    "accel_packets",
    "encode_accel_packet",
    "encode_config",
    "encode_ppg_packet",
    "packets_lost",
    "parse_accel_packet",
    "parse_config",
    "parse_ppg_packet",
    "ppg_packets",
    "samples_missing",
    "samples_per_packet",
]

PROFILE = "ppg_stream"

_UUID_SUFFIX = "-31c3-45a3-b944-c7f83af48501"
PPG_STREAM_SERVICE_UUID = f"603f0001{_UUID_SUFFIX}"
PPG_DATA_UUID = f"603f0002{_UUID_SUFFIX}"
ACCEL_DATA_UUID = f"603f0003{_UUID_SUFFIX}"
CONFIG_UUID = f"603f0004{_UUID_SUFFIX}"

#: ATT_MTU 247 leaves 244 bytes for a notification value (opcode 1 + handle 2).
MAX_NOTIFICATION_VALUE_SIZE = 247 - 3
HEADER_SIZE = 6
PPG_SAMPLE_SIZE = 3
ACCEL_SAMPLE_SIZE = 6
PPG_MAX_SAMPLES_PER_PACKET = (MAX_NOTIFICATION_VALUE_SIZE - HEADER_SIZE) // PPG_SAMPLE_SIZE  # 79
ACCEL_MAX_SAMPLES_PER_PACKET = (
    MAX_NOTIFICATION_VALUE_SIZE - HEADER_SIZE
) // ACCEL_SAMPLE_SIZE  # 39

MIN_SAMPLING_RATE_HZ = 64
MAX_SAMPLING_RATE_HZ = 256
#: The rate a device streams at after power-up, until the client writes the configuration.
DEFAULT_SAMPLING_RATE_HZ = 128

_S24_MIN, _S24_MAX = -(1 << 23), (1 << 23) - 1
_S16_MIN, _S16_MAX = -(1 << 15), (1 << 15) - 1


def _check_header(sequence: int, first_sample_index: int) -> None:
    if not 0 <= sequence <= 0xFFFF:
        raise ValueError(f"sequence {sequence} outside 0..65535")
    if not 0 <= first_sample_index <= 0xFFFFFFFF:
        raise ValueError(f"first_sample_index {first_sample_index} outside 0..2**32-1")


@dataclass(frozen=True, slots=True)
class PpgPacket:
    """One PPG Data notification: consecutive raw PPG samples (ADC counts, s24)."""

    sequence: int
    first_sample_index: int
    ppg_counts: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_header(self.sequence, self.first_sample_index)
        if not 1 <= len(self.ppg_counts) <= PPG_MAX_SAMPLES_PER_PACKET:
            raise ValueError(
                f"{len(self.ppg_counts)} PPG samples; a packet holds "
                f"1..{PPG_MAX_SAMPLES_PER_PACKET}"
            )
        for count in self.ppg_counts:
            if not _S24_MIN <= count <= _S24_MAX:
                raise ValueError(f"PPG sample {count} does not fit in s24")


@dataclass(frozen=True, slots=True)
class AccelSample:
    """One accelerometer sample: acceleration on each axis in milli-g (s16)."""

    x_mg: int
    y_mg: int
    z_mg: int

    def __post_init__(self) -> None:
        for axis in (self.x_mg, self.y_mg, self.z_mg):
            if not _S16_MIN <= axis <= _S16_MAX:
                raise ValueError(f"acceleration {axis} mg does not fit in s16")


@dataclass(frozen=True, slots=True)
class AccelPacket:
    """One Accelerometer Data notification: consecutive 3-axis samples."""

    sequence: int
    first_sample_index: int
    samples: tuple[AccelSample, ...]

    def __post_init__(self) -> None:
        _check_header(self.sequence, self.first_sample_index)
        if not 1 <= len(self.samples) <= ACCEL_MAX_SAMPLES_PER_PACKET:
            raise ValueError(
                f"{len(self.samples)} accelerometer samples; a packet holds "
                f"1..{ACCEL_MAX_SAMPLES_PER_PACKET}"
            )


@dataclass(frozen=True, slots=True)
class PpgStreamConfig:
    """Stream Configuration: the sample rate shared by the PPG and accelerometer streams."""

    sampling_rate_hz: int

    def __post_init__(self) -> None:
        if not MIN_SAMPLING_RATE_HZ <= self.sampling_rate_hz <= MAX_SAMPLING_RATE_HZ:
            raise ValueError(
                f"sampling_rate_hz {self.sampling_rate_hz} outside "
                f"{MIN_SAMPLING_RATE_HZ}..{MAX_SAMPLING_RATE_HZ}"
            )


def _read_samples_area(reader: ByteReader, sample_size: int, max_samples: int, kind: str) -> int:
    remaining = reader.remaining
    if remaining == 0:
        raise reader.error(f"{kind} packet carries no samples")
    if remaining % sample_size:
        raise reader.error(
            f"{kind} samples need a multiple of {sample_size} bytes, {remaining} left"
        )
    count = remaining // sample_size
    if count > max_samples:
        raise reader.error(f"{count} {kind} samples exceed the packet maximum of {max_samples}")
    return count


def parse_ppg_packet(data: bytes) -> PpgPacket:
    """Decode a PPG Data notification; raises ParseError on a malformed packet."""
    reader = ByteReader(data, PROFILE)
    sequence = reader.u16("sequence")
    first_sample_index = reader.u32("first sample index")
    count = _read_samples_area(reader, PPG_SAMPLE_SIZE, PPG_MAX_SAMPLES_PER_PACKET, "PPG")
    counts = tuple(
        int.from_bytes(reader.bytes_(PPG_SAMPLE_SIZE, "PPG sample"), "little", signed=True)
        for _ in range(count)
    )
    reader.expect_end()
    return PpgPacket(sequence=sequence, first_sample_index=first_sample_index, ppg_counts=counts)


def encode_ppg_packet(packet: PpgPacket) -> bytes:
    """Encode a PPG Data notification (at most 243 bytes)."""
    writer = ByteWriter().u16(packet.sequence, "sequence").u32(packet.first_sample_index)
    for count in packet.ppg_counts:
        writer.bytes_(count.to_bytes(PPG_SAMPLE_SIZE, "little", signed=True))
    return writer.getvalue()


def parse_accel_packet(data: bytes) -> AccelPacket:
    """Decode an Accelerometer Data notification; raises ParseError on a malformed packet."""
    reader = ByteReader(data, PROFILE)
    sequence = reader.u16("sequence")
    first_sample_index = reader.u32("first sample index")
    count = _read_samples_area(
        reader, ACCEL_SAMPLE_SIZE, ACCEL_MAX_SAMPLES_PER_PACKET, "accelerometer"
    )
    samples = tuple(
        AccelSample(x_mg=reader.s16("x"), y_mg=reader.s16("y"), z_mg=reader.s16("z"))
        for _ in range(count)
    )
    reader.expect_end()
    return AccelPacket(sequence=sequence, first_sample_index=first_sample_index, samples=samples)


def encode_accel_packet(packet: AccelPacket) -> bytes:
    """Encode an Accelerometer Data notification (at most 240 bytes)."""
    writer = ByteWriter().u16(packet.sequence, "sequence").u32(packet.first_sample_index)
    for sample in packet.samples:
        writer.s16(sample.x_mg, "x").s16(sample.y_mg, "y").s16(sample.z_mg, "z")
    return writer.getvalue()


def parse_config(data: bytes) -> PpgStreamConfig:
    """Decode Stream Configuration (2 bytes); a rate outside 64..256 Hz raises ParseError.

    A server rejects such a write with the ATT error 0xFF "Out of Range" (Core Specification
    Supplement Part B, Common Profile and Service Error Codes).
    """
    reader = ByteReader(data, PROFILE)
    rate_hz = reader.u16("sampling rate")
    reader.expect_end()
    if not MIN_SAMPLING_RATE_HZ <= rate_hz <= MAX_SAMPLING_RATE_HZ:
        raise reader.error(
            f"sampling rate {rate_hz} Hz outside {MIN_SAMPLING_RATE_HZ}..{MAX_SAMPLING_RATE_HZ}",
            offset=0,
        )
    return PpgStreamConfig(sampling_rate_hz=rate_hz)


def encode_config(config: PpgStreamConfig) -> bytes:
    """Encode Stream Configuration."""
    return ByteWriter().u16(config.sampling_rate_hz, "sampling rate").getvalue()


def packets_lost(previous_sequence: int, sequence: int) -> int:
    """Packets lost between two received sequence numbers of one stream, wrap-aware.

    0 for consecutive packets; a negative result means ``sequence`` is not newer than
    ``previous_sequence`` (-1 for a duplicate), i.e. a repeated or reordered packet.
    """
    gap = (sequence - previous_sequence - 1) & 0xFFFF
    return gap - 0x10000 if gap >= 0x8000 else gap


def samples_missing(previous: PpgPacket | AccelPacket, current: PpgPacket | AccelPacket) -> int:
    """Samples lost between two consecutive packets of one stream, wrap-aware.

    0 when ``current`` continues ``previous``; negative when it overlaps it (a repeated or
    reordered packet), by the number of overlapping samples.
    """
    previous_count = (
        len(previous.ppg_counts) if isinstance(previous, PpgPacket) else len(previous.samples)
    )
    gap = (current.first_sample_index - previous.first_sample_index - previous_count) & 0xFFFFFFFF
    return gap - (1 << 32) if gap >= 1 << 31 else gap


def samples_per_packet(att_mtu: int, *, stream: Literal["ppg", "accel"]) -> int:
    """The most samples of ``stream`` one notification carries at ``att_mtu`` (23..517).

    Capped at the format's maximum (79 PPG / 39 accelerometer samples, sized for ATT_MTU 247).
    """
    if not 23 <= att_mtu <= 517:
        raise ValueError(f"ATT_MTU {att_mtu} outside 23..517")
    sample_size, cap = (
        (PPG_SAMPLE_SIZE, PPG_MAX_SAMPLES_PER_PACKET)
        if stream == "ppg"
        else (ACCEL_SAMPLE_SIZE, ACCEL_MAX_SAMPLES_PER_PACKET)
    )
    return min(cap, (att_mtu - 3 - HEADER_SIZE) // sample_size)


def _chunks(count: int, per_packet: int) -> list[tuple[int, int]]:
    if per_packet < 1:
        raise ValueError(f"samples per packet must be >= 1, got {per_packet}")
    return [(start, min(start + per_packet, count)) for start in range(0, count, per_packet)]


def ppg_packets(
    ppg_counts: Sequence[int],
    *,
    first_sample_index: int,
    first_sequence: int,
    per_packet: int = PPG_MAX_SAMPLES_PER_PACKET,
) -> list[PpgPacket]:
    """Split consecutive PPG samples into packets, numbering them (both counters wrap)."""
    return [
        PpgPacket(
            sequence=(first_sequence + number) & 0xFFFF,
            first_sample_index=(first_sample_index + start) & 0xFFFFFFFF,
            ppg_counts=tuple(ppg_counts[start:end]),
        )
        for number, (start, end) in enumerate(_chunks(len(ppg_counts), per_packet))
    ]


def accel_packets(
    samples: Sequence[AccelSample],
    *,
    first_sample_index: int,
    first_sequence: int,
    per_packet: int = ACCEL_MAX_SAMPLES_PER_PACKET,
) -> list[AccelPacket]:
    """Split consecutive accelerometer samples into packets, numbering them (counters wrap)."""
    return [
        AccelPacket(
            sequence=(first_sequence + number) & 0xFFFF,
            first_sample_index=(first_sample_index + start) & 0xFFFFFFFF,
            samples=tuple(samples[start:end]),
        )
        for number, (start, end) in enumerate(_chunks(len(samples), per_packet))
    ]
