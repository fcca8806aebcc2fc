"""FHIR R4 export: one Bundle (type ``collection``) per patient and period.

Observations follow the HL7 FHIR Personal Health Device IG (PHD, http://hl7.org/fhir/uv/phd):
IEEE 11073-10101 (MDC) codes first, LOINC codes beside them (so the FHIR vital-signs profiles
also match), UCUM units, ``status`` final, ``effectiveDateTime`` in UTC, the measuring device as
a ``Device`` resource (PhdDevice) referenced from ``Observation.device``, categories
``vital-signs`` (BP, pulse, SpO2, temperature, weight) or ``laboratory`` (glucose) plus the
PHD category ``phd-observation``.

The CGM summary follows the HL7 CGM IG (http://hl7.org/fhir/uv/cgm, STU 1): a
``cgm-summary`` Observation whose ``hasMember`` are the mean glucose (LOINC 97507-8), the times
in ranges panel (106793-3: very low 104642-4, low 104641-6, in target 97510-2, high 104640-8,
very high 104639-0), GMI (97506-0), CV (104638-2), days of wear (104636-6) and the sensor active
percentage (104637-4) -- codes from the IG's profiles and its ConceptMap CGMSummaryToLoinc; each
has ``effectivePeriod`` with local dates. CGM sensor readings are exported as the IG's
``cgm-sensor-reading-mass-per-volume`` (LOINC 99504-3) unless left out.

Readings flagged control solution or implausible are not exported (they are not clinical
observations). Every number of the CGM summary comes from :func:`vitalgate.signal.cgm.metrics`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

import numpy as np

from vitalgate.cloud_sync.store import ReadingSeries, ReadingStore
from vitalgate.cloud_sync.stores.base import ns_to_datetime
from vitalgate.readings import ReadingKind
from vitalgate.signal import cgm as cgm_signal
from vitalgate.views.patients import PatientInfo, clinical_mask, device_identity

__all__ = [
    "CGM_SUMMARY_LOINC",
    "LOINC",
    "MDC",
    "UCUM",
    "Code",
    "build_bundle",
    "export_bundle",
]

LOINC: Final = "http://loinc.org"
MDC: Final = "urn:iso:std:iso:11073:10101"
UCUM: Final = "http://unitsofmeasure.org"
OBS_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
PHD_CATEGORY: Final = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
PHD: Final = "http://hl7.org/fhir/uv/phd/StructureDefinition/"
CGM: Final = "http://hl7.org/fhir/uv/cgm/StructureDefinition/"
CGM_TEMP_CODES: Final = "http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary"
VITALS: Final = "http://hl7.org/fhir/StructureDefinition/"
ID_READING: Final = "urn:vitalgate:reading-id"
ID_PATIENT: Final = "urn:vitalgate:patient-id"
ID_DEVICE: Final = "urn:vitalgate:device-id"
_NS: Final = uuid.UUID("0b6a3c1e-7c1f-4f57-9a43-3e1b0f5d2a10")


@dataclass(frozen=True, slots=True)
class Code:
    """An MDC code with its reference id and the LOINC code(s) PHD maps it to."""

    mdc: str
    mdc_display: str
    loinc: tuple[tuple[str, str], ...] = ()

    def concept(self) -> dict[str, Any]:
        coding = [{"system": MDC, "code": self.mdc, "display": self.mdc_display}]
        coding += [{"system": LOINC, "code": c, "display": d} for c, d in self.loinc]
        return {"coding": coding, "text": self.mdc_display}


BP_PANEL: Final = Code("150020", "MDC_PRESS_BLD_NONINV", (("85354-9", "Blood pressure panel"),))
BP_SYS: Final = Code("150021", "MDC_PRESS_BLD_NONINV_SYS", (("8480-6", "Systolic blood pressure"),))
BP_DIA: Final = Code(
    "150022", "MDC_PRESS_BLD_NONINV_DIA", (("8462-4", "Diastolic blood pressure"),)
)
BP_MEAN: Final = Code("150023", "MDC_PRESS_BLD_NONINV_MEAN", (("8478-0", "Mean blood pressure"),))
PULSE_RATE: Final = Code("149546", "MDC_PULS_RATE_NON_INV", (("8867-4", "Heart rate"),))
HEART_RATE: Final = Code("147842", "MDC_ECG_HEART_RATE", (("8867-4", "Heart rate"),))
SPO2: Final = Code(
    "150456",
    "MDC_PULS_OXIM_SAT_O2",
    (
        ("2708-6", "Oxygen saturation in Arterial blood"),
        ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    ),
)
BODY_TEMP: Final = Code("150364", "MDC_TEMP_BODY", (("8310-5", "Body temperature"),))
BODY_WEIGHT: Final = Code("188736", "MDC_MASS_BODY_ACTUAL", (("29463-7", "Body weight"),))
BMI: Final = Code("188752", "MDC_RATIO_MASS_BODY_LEN_SQ", (("39156-5", "Body mass index"),))
GLUCOSE_CAPILLARY_WHOLE_BLOOD: Final = Code(
    "160184",
    "MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD",
    (("41653-7", "Glucose [Mass/volume] in Capillary blood by Glucometer"),),
)
GLUCOSE_UNDETERMINED_PLASMA: Final = Code(
    "160368",
    "MDC_CONC_GLU_UNDETERMINED_PLASMA",
    (("2345-7", "Glucose [Mass/volume] in Serum or Plasma"),),
)

#: LOINC codes of the CGM IG summary (profiles + ConceptMap CGMSummaryToLoinc).
CGM_SUMMARY_LOINC: Final[Mapping[str, tuple[str, str]]] = {
    "summary": ("104643-2", "Continuous glucose monitoring summary panel - Reporting Period"),
    "mean": (
        "97507-8",
        "Average glucose [Mass/volume] in Interstitial fluid during Reporting Period",
    ),
    "times_in_ranges": ("106793-3", "Continuous glucose monitoring time in ranges panel"),
    "very_low": ("104642-4", "Time below range, very low (< 54 mg/dL)"),
    "low": ("104641-6", "Time below range, low (54-69 mg/dL)"),
    "target": ("97510-2", "Time in target range (70-180 mg/dL)"),
    "high": ("104640-8", "Time above range, high (181-250 mg/dL)"),
    "very_high": ("104639-0", "Time above range, very high (> 250 mg/dL)"),
    "gmi": ("97506-0", "Glucose management indicator"),
    "cv": ("104638-2", "Glucose coefficient of variation"),
    "days_of_wear": ("104636-6", "Days continuous glucose monitor device worn"),
    "sensor_active": ("104637-4", "Percentage of time continuous glucose monitor device active"),
    "sensor_reading": ("99504-3", "Glucose [Mass/volume] in Interstitial fluid"),
}

#: PHD device specialisation (MDC_DEV_SPEC_PROFILE_*) per reading kind, where one exists.
_DEVICE_TYPE: Final[Mapping[ReadingKind, tuple[str, str]]] = {
    ReadingKind.BLOOD_PRESSURE: ("528391", "MDC_DEV_SPEC_PROFILE_BPM"),
    ReadingKind.GLUCOSE: ("528401", "MDC_DEV_SPEC_PROFILE_GLUCOSE"),
    ReadingKind.PULSE_OXIMETRY: ("528388", "MDC_DEV_SPEC_PROFILE_PULS_OXIM"),
    ReadingKind.BODY_TEMPERATURE: ("528392", "MDC_DEV_SPEC_PROFILE_TEMP"),
    ReadingKind.WEIGHT: ("528399", "MDC_DEV_SPEC_PROFILE_SCALE"),
}
_DEVICE_TEXT: Final[Mapping[ReadingKind, str]] = {
    ReadingKind.BLOOD_PRESSURE: "Blood pressure monitor",
    ReadingKind.GLUCOSE: "Glucose meter",
    ReadingKind.CGM: "Continuous glucose monitor",
    ReadingKind.HEART_RATE: "Heart rate sensor",
    ReadingKind.PULSE_OXIMETRY: "Pulse oximeter",
    ReadingKind.BODY_TEMPERATURE: "Thermometer",
    ReadingKind.WEIGHT: "Weighing scale",
}


def _uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "\x1f".join(parts)))


def _fhir_time(ns: int) -> str:
    return ns_to_datetime(ns).isoformat(timespec="seconds").replace("+00:00", "Z")


def _quantity(value: float, unit: str, code: str, decimals: int = 1) -> dict[str, Any]:
    return {"value": round(float(value), decimals), "unit": unit, "system": UCUM, "code": code}


def _category(code: str, display: str) -> list[dict[str, Any]]:
    return [
        {"coding": [{"system": OBS_CATEGORY, "code": code, "display": display}]},
        {"coding": [{"system": PHD_CATEGORY, "code": "phd-observation"}]},
    ]


_VITAL: Final = _category("vital-signs", "Vital Signs")
_LAB: Final = _category("laboratory", "Laboratory")


class _Builder:
    """Accumulates the entries of one bundle."""

    def __init__(self, patient: PatientInfo) -> None:
        self.patient = patient
        self.patient_url = "urn:uuid:" + _uuid("patient", patient.patient_id)
        self.entries: list[dict[str, Any]] = []
        self.devices: dict[str, str] = {}

    def add(self, resource: dict[str, Any], full_url: str) -> None:
        self.entries.append({"fullUrl": full_url, "resource": resource})

    def device(self, device_id: str, kind: ReadingKind) -> str:
        url = self.devices.get(device_id)
        if url is not None:
            return url
        uid = _uuid("device", device_id)
        url = self.devices[device_id] = "urn:uuid:" + uid
        ident = device_identity(device_id)
        identifiers: list[dict[str, Any]] = [{"system": ID_DEVICE, "value": device_id}]
        if ident.address:
            identifiers.append(
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/uv/phd/CodeSystem/"
                                "ContinuaDeviceIdentifiers",
                                "code": "BTMAC",
                            }
                        ]
                    },
                    "system": "http://hl7.org/fhir/sid/eui-48/bluetooth",
                    "value": ident.address.lower().replace(":", "-"),
                }
            )
        resource: dict[str, Any] = {
            "resourceType": "Device",
            "id": uid,
            "meta": {"profile": [PHD + "PhdDevice"]},
            "identifier": identifiers,
        }
        if kind is ReadingKind.CGM:
            resource["meta"]["profile"].append(CGM + "cgm-device")
        type_code = _DEVICE_TYPE.get(kind)
        type_concept: dict[str, Any] = {"text": _DEVICE_TEXT[kind]}
        if type_code is not None:
            type_concept["coding"] = [
                {"system": MDC, "code": type_code[0], "display": type_code[1]}
            ]
        resource["type"] = type_concept
        if ident.manufacturer:
            resource["manufacturer"] = ident.manufacturer
        if ident.model:
            resource["modelNumber"] = ident.model
        if ident.serial:
            resource["serialNumber"] = ident.serial
        name = " ".join(p for p in (ident.manufacturer, ident.model) if p) or _DEVICE_TEXT[kind]
        resource["deviceName"] = [{"name": name, "type": "user-friendly-name"}]
        self.add(resource, url)
        return url

    def observation(
        self,
        *,
        key: str,
        profiles: list[str],
        category: list[dict[str, Any]],
        code: dict[str, Any],
        time_ns: int,
        device_url: str,
        value: dict[str, Any] | None = None,
        components: list[dict[str, Any]] | None = None,
        reading_id: str = "",
    ) -> str:
        uid = _uuid("obs", self.patient.patient_id, key)
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": uid,
            "meta": {"profile": profiles},
            "status": "final",
            "category": category,
            "code": code,
            "subject": {"reference": self.patient_url},
            "effectiveDateTime": _fhir_time(time_ns),
            "device": {"reference": device_url},
        }
        if reading_id:
            obs["identifier"] = [{"system": ID_READING, "value": reading_id}]
        if value is not None:
            obs["valueQuantity"] = value
        if components:
            obs["component"] = components
        url = "urn:uuid:" + uid
        self.add(obs, url)
        return url


def _rows(series: ReadingSeries) -> Iterator[int]:
    keep = clinical_mask(series)
    return (int(i) for i in np.flatnonzero(keep))


def _finite(x: float) -> bool:
    return math.isfinite(float(x))


def _bp(b: _Builder, s: ReadingSeries) -> None:
    sys_ = s.values.get("systolic_mmhg")
    dia = s.values.get("diastolic_mmhg")
    if sys_ is None or dia is None:
        return
    mean = s.values.get("mean_arterial_pressure_mmhg")
    pulse = s.values.get("pulse_rate_bpm")
    for i in _rows(s):
        if not (_finite(sys_[i]) and _finite(dia[i])):
            continue
        t = int(s.times_ns[i])
        dev = b.device(s.device_ids[i], s.kind)
        comps = [
            {"code": BP_SYS.concept(), "valueQuantity": _quantity(sys_[i], "mmHg", "mm[Hg]")},
            {"code": BP_DIA.concept(), "valueQuantity": _quantity(dia[i], "mmHg", "mm[Hg]")},
        ]
        if mean is not None and _finite(mean[i]):
            comps.append(
                {"code": BP_MEAN.concept(), "valueQuantity": _quantity(mean[i], "mmHg", "mm[Hg]")}
            )
        rid = s.reading_ids[i]
        b.observation(
            key=rid,
            profiles=[PHD + "PhdCompoundNumericObservation", VITALS + "bp"],
            category=_VITAL,
            code=BP_PANEL.concept(),
            time_ns=t,
            device_url=dev,
            components=comps,
            reading_id=rid,
        )
        if pulse is not None and _finite(pulse[i]):
            b.observation(
                key=rid + "/pulse",
                profiles=[PHD + "PhdNumericObservation", VITALS + "heartrate"],
                category=_VITAL,
                code=PULSE_RATE.concept(),
                time_ns=t,
                device_url=dev,
                value=_quantity(pulse[i], "beats/minute", "/min", 0),
                reading_id=rid,
            )


def _simple(
    b: _Builder,
    s: ReadingSeries,
    field_name: str,
    code: Code,
    *,
    unit: tuple[str, str, int],
    profiles: list[str],
    category: list[dict[str, Any]],
    suffix: str = "",
) -> None:
    col = s.values.get(field_name)
    if col is None:
        return
    for i in _rows(s):
        if not _finite(col[i]):
            continue
        rid = s.reading_ids[i]
        b.observation(
            key=rid + suffix,
            profiles=profiles,
            category=category,
            code=code.concept(),
            time_ns=int(s.times_ns[i]),
            device_url=b.device(s.device_ids[i], s.kind),
            value=_quantity(col[i], unit[0], unit[1], unit[2]),
            reading_id=rid,
        )


def _loinc(key: str) -> dict[str, Any]:
    code, display = CGM_SUMMARY_LOINC[key]
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def _cgm(b: _Builder, s: ReadingSeries, first: date, last: date, readings: bool) -> None:
    g = s.values.get("glucose_mg_dl")
    if g is None or len(s) == 0:
        return
    keep = clinical_mask(s) & np.isfinite(g) & (g > 0)
    t = s.times_ns[keep]
    v = g[keep]
    if readings:
        for i in np.flatnonzero(keep).tolist():
            rid = s.reading_ids[i]
            b.observation(
                key=rid,
                profiles=[CGM + "cgm-sensor-reading-mass-per-volume"],
                category=_LAB,
                code=_loinc("sensor_reading"),
                time_ns=int(s.times_ns[i]),
                device_url=b.device(s.device_ids[i], s.kind),
                value=_quantity(g[i], "mg/dl", "mg/dL", 0),
                reading_id=rid,
            )
    if v.size < 2:
        return
    m = cgm_signal.metrics(v, t)
    period = {"start": first.isoformat(), "end": last.isoformat()}
    devices = sorted({s.device_ids[int(i)] for i in np.flatnonzero(keep)})
    dev_url = b.device(devices[0], s.kind)
    cat = [{"coding": [{"system": OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]
    pid = b.patient.patient_id
    key0 = f"cgm-summary/{first}/{last}"

    def member(key: str, profile: str, **body: Any) -> dict[str, str]:
        uid = _uuid("obs", pid, key0, key)
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": uid,
            "meta": {"profile": [CGM + profile]},
            "status": "final",
            "category": cat,
            "code": _loinc(key),
            "subject": {"reference": b.patient_url},
            "effectivePeriod": period,
            "device": {"reference": dev_url},
            **body,
        }
        b.add(obs, "urn:uuid:" + uid)
        return {"reference": "urn:uuid:" + uid}

    pct = "%"
    tbr1 = m.tbr_pct - m.tbr_level2_pct
    tar1 = m.tar_pct - m.tar_level2_pct
    ranges = [
        ("very_low", m.tbr_level2_pct),
        ("low", tbr1),
        ("target", m.tir_pct),
        ("high", tar1),
        ("very_high", m.tar_level2_pct),
    ]
    members = [
        member(
            "mean",
            "cgm-summary-mean-glucose-mass-per-volume",
            valueQuantity=_quantity(m.mean_mg_dl, "mg/dl", "mg/dL", 1),
        ),
        member(
            "times_in_ranges",
            "cgm-summary-times-in-ranges",
            component=[
                {"code": _loinc(k), "valueQuantity": _quantity(v_, pct, pct, 2)} for k, v_ in ranges
            ],
        ),
        member("gmi", "cgm-summary-gmi", valueQuantity=_quantity(m.gmi_pct, pct, pct, 2)),
        member(
            "cv",
            "cgm-summary-coefficient-of-variation",
            valueQuantity=_quantity(m.cv_pct, pct, pct, 2),
        ),
        member(
            "days_of_wear",
            "cgm-summary-days-of-wear",
            valueQuantity=_quantity(m.days, "days", "d", 2),
        ),
        member(
            "sensor_active",
            "cgm-summary-sensor-active-percentage",
            valueQuantity=_quantity(m.active_pct, pct, pct, 2),
        ),
    ]
    uid = _uuid("obs", pid, key0)
    code, display = CGM_SUMMARY_LOINC["summary"]
    summary = {
        "resourceType": "Observation",
        "id": uid,
        "meta": {"profile": [CGM + "cgm-summary"]},
        "status": "final",
        "category": cat,
        "code": {
            "coding": [
                {"system": CGM_TEMP_CODES, "code": "cgm-summary", "display": "CGM Summary Report"},
                {"system": LOINC, "code": code, "display": display},
            ]
        },
        "subject": {"reference": b.patient_url},
        "effectivePeriod": period,
        "hasMember": members,
    }
    b.add(summary, "urn:uuid:" + uid)


_PHD_NUMERIC = PHD + "PhdNumericObservation"


@dataclass(frozen=True, slots=True)
class _SimpleSpec:
    """One numeric value of a kind as a PHD numeric Observation (and its FHIR vitals profile)."""

    field_name: str
    code: Code
    unit: tuple[str, str, int]  # (unit text, UCUM code, decimals)
    vitals: tuple[str, ...]
    category: list[dict[str, Any]]
    suffix: str = ""


_BPM = ("beats/minute", "/min", 0)
#: The kinds whose values map one to one onto Observations (BP and CGM have builders of their own).
_SIMPLE: Final[Mapping[ReadingKind, tuple[_SimpleSpec, ...]]] = {
    ReadingKind.GLUCOSE: (
        _SimpleSpec(
            "glucose_mg_dl", GLUCOSE_CAPILLARY_WHOLE_BLOOD, ("mg/dl", "mg/dL", 0), (), _LAB
        ),
    ),
    ReadingKind.HEART_RATE: (
        _SimpleSpec("heart_rate_bpm", HEART_RATE, _BPM, (VITALS + "heartrate",), _VITAL),
    ),
    ReadingKind.PULSE_OXIMETRY: (
        _SimpleSpec("spo2_pct", SPO2, ("%", "%", 1), (VITALS + "oxygensat",), _VITAL),
        _SimpleSpec("pulse_rate_bpm", PULSE_RATE, _BPM, (VITALS + "heartrate",), _VITAL, "/pulse"),
    ),
    ReadingKind.BODY_TEMPERATURE: (
        _SimpleSpec("temperature_c", BODY_TEMP, ("Cel", "Cel", 2), (VITALS + "bodytemp",), _VITAL),
    ),
    ReadingKind.WEIGHT: (
        _SimpleSpec("weight_kg", BODY_WEIGHT, ("kg", "kg", 2), (VITALS + "bodyweight",), _VITAL),
        _SimpleSpec("bmi_kg_m2", BMI, ("kg/m2", "kg/m2", 1), (VITALS + "bmi",), _VITAL, "/bmi"),
    ),
}


def build_bundle(
    patient: PatientInfo,
    series: Mapping[ReadingKind, ReadingSeries],
    *,
    first_day: date,
    last_day: date,
    generated_at: datetime,
    cgm_readings: bool = True,
) -> dict[str, Any]:
    """The Bundle (as JSON-ready dicts) for one patient's series over local days
    ``first_day`` .. ``last_day``; pure (no store access)."""
    b = _Builder(patient)
    b.add(
        {
            "resourceType": "Patient",
            "id": _uuid("patient", patient.patient_id),
            "identifier": [{"system": ID_PATIENT, "value": patient.patient_id}],
            "name": [{"text": patient.display_name}],
        },
        b.patient_url,
    )
    for kind, s in series.items():
        if len(s) == 0:
            continue
        if kind is ReadingKind.BLOOD_PRESSURE:
            _bp(b, s)
        elif kind is ReadingKind.CGM:
            _cgm(b, s, first_day, last_day, cgm_readings)
        for spec in _SIMPLE.get(kind, ()):
            _simple(
                b,
                s,
                spec.field_name,
                spec.code,
                unit=spec.unit,
                profiles=[_PHD_NUMERIC, *spec.vitals],
                category=spec.category,
                suffix=spec.suffix,
            )
    return {
        "resourceType": "Bundle",
        "id": _uuid("bundle", patient.patient_id, first_day.isoformat(), last_day.isoformat()),
        "meta": {"lastUpdated": generated_at.astimezone(UTC).isoformat(timespec="seconds")},
        "type": "collection",
        "timestamp": generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "entry": b.entries,
    }


def export_bundle(
    store: ReadingStore,
    patient: PatientInfo,
    first_day: date,
    last_day: date,
    *,
    generated_at: datetime | None = None,
    cgm_readings: bool = True,
) -> dict[str, Any]:
    """Query every kind of the patient's readings over local days ``first_day`` .. ``last_day``
    (inclusive, in the patient's zone) and build the bundle."""
    from vitalgate.views.patients import local_day_range

    start, end = local_day_range(first_day, last_day, patient.tz)
    series: dict[ReadingKind, ReadingSeries] = {
        kind: store.query(patient.patient_id, kind, start, end)
        for kind in ReadingKind
        if kind is not ReadingKind.DEVICE_STATUS  # device health: no clinical observation
    }
    return build_bundle(
        patient,
        series,
        first_day=first_day,
        last_day=last_day,
        generated_at=generated_at or datetime.now(UTC),
        cgm_readings=cgm_readings,
    )
