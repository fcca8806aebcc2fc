"""FHIR R4 export: bundles validate with fhir.resources (R4B models) and use the IGs' codes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fhir.resources.R4B.bundle import Bundle

from vitalgate.cloud_sync.stores.sqlite import SqliteStore
from vitalgate.readings import ReadingKind
from vitalgate.signal import cgm as cgm_signal
from vitalgate.views.fhir import export_bundle
from vitalgate.views.patients import clinical_mask, local_day_range

from .conftest import LAST_DAY, PATIENT

FIRST_DAY = LAST_DAY - timedelta(days=13)
GENERATED = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)

# Codes as the IGs publish them (PHD IG STU 2 examples; CGM IG STU 1 profiles.fsh and
# ConceptMap CGMSummaryToLoinc); written out here, independently of the module's tables.
PHD_EXPECTED = {
    "150020": {"85354-9"},  # MDC_PRESS_BLD_NONINV, BP panel
    "149546": {"8867-4"},  # MDC_PULS_RATE_NON_INV
    "147842": {"8867-4"},  # MDC_ECG_HEART_RATE
    "150456": {"2708-6", "59408-5"},  # MDC_PULS_OXIM_SAT_O2
    "150364": {"8310-5"},  # MDC_TEMP_BODY
    "188736": {"29463-7"},  # MDC_MASS_BODY_ACTUAL
    "160184": {"41653-7"},  # MDC_CONC_GLU_CAPILLARY_WHOLEBLOOD
}
BP_COMPONENTS = {("150021", "8480-6"), ("150022", "8462-4")}
CGM_EXPECTED = {
    "cgm-summary-mean-glucose-mass-per-volume": "97507-8",
    "cgm-summary-times-in-ranges": "106793-3",
    "cgm-summary-gmi": "97506-0",
    "cgm-summary-coefficient-of-variation": "104638-2",
    "cgm-summary-days-of-wear": "104636-6",
    "cgm-summary-sensor-active-percentage": "104637-4",
}
TIR_COMPONENTS = ["104642-4", "104641-6", "97510-2", "104640-8", "104639-0"]
CGM_PROFILE = "http://hl7.org/fhir/uv/cgm/StructureDefinition/"


@pytest.fixture(scope="module")
def bundle(sample_store: SqliteStore) -> dict[str, Any]:
    return export_bundle(
        sample_store, PATIENT, FIRST_DAY, LAST_DAY, generated_at=GENERATED, cgm_readings=False
    )


def _resources(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _codes(concept: dict[str, Any], system: str) -> set[str]:
    return {c["code"] for c in concept["coding"] if c["system"] == system}


MDC = "urn:iso:std:iso:11073:10101"
LOINC = "http://loinc.org"


def test_bundle_validates_as_r4(bundle: dict[str, Any]) -> None:
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert parsed.entry is not None and len(parsed.entry) == len(bundle["entry"])


def test_bundle_is_deterministic(sample_store: SqliteStore, bundle: dict[str, Any]) -> None:
    again = export_bundle(
        sample_store, PATIENT, FIRST_DAY, LAST_DAY, generated_at=GENERATED, cgm_readings=False
    )
    assert again == bundle


def test_references_resolve(bundle: dict[str, Any]) -> None:
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for obs in _resources(bundle, "Observation"):
        assert obs["subject"]["reference"] in urls
        if "device" in obs:
            assert obs["device"]["reference"] in urls
        for m in obs.get("hasMember", []):
            assert m["reference"] in urls


def test_phd_observations_use_ig_codes(bundle: dict[str, Any]) -> None:
    seen: Counter[str] = Counter()
    for obs in _resources(bundle, "Observation"):
        mdc = _codes(obs["code"], MDC)
        if not mdc:
            continue
        (code,) = mdc
        assert _codes(obs["code"], LOINC) == PHD_EXPECTED[code]
        assert obs["status"] == "final" and obs["effectiveDateTime"].endswith("Z")
        cats = {c["coding"][0]["code"] for c in obs["category"]}
        assert "phd-observation" in cats
        assert ("laboratory" if code == "160184" else "vital-signs") in cats
        seen[code] += 1
        if code == "150020":
            comps = {
                (next(iter(_codes(c["code"], MDC))), next(iter(_codes(c["code"], LOINC))))
                for c in obs["component"]
            }
            assert comps >= BP_COMPONENTS
            for c in obs["component"]:
                assert c["valueQuantity"]["code"] == "mm[Hg]"
                assert c["valueQuantity"]["system"] == "http://unitsofmeasure.org"
        elif code in ("149546", "147842"):
            assert obs["valueQuantity"]["code"] == "/min"
        elif code == "150456":
            assert obs["valueQuantity"]["code"] == "%"
        elif code == "150364":
            assert obs["valueQuantity"]["code"] == "Cel"
        elif code == "188736":
            assert obs["valueQuantity"]["code"] == "kg"
        elif code == "160184":
            assert obs["valueQuantity"]["code"] == "mg/dL"
    assert set(seen) == set(PHD_EXPECTED)


def test_control_solution_readings_are_not_exported(
    sample_store: SqliteStore, bundle: dict[str, Any]
) -> None:
    start, end = local_day_range(FIRST_DAY, LAST_DAY, PATIENT.tz)
    meter = sample_store.query(PATIENT.patient_id, ReadingKind.GLUCOSE, start, end)
    clinical = int(clinical_mask(meter).sum())
    assert clinical < len(meter)  # the sample has control tests
    exported = [o for o in _resources(bundle, "Observation") if "160184" in _codes(o["code"], MDC)]
    assert len(exported) == clinical


def test_devices_are_phd_devices(bundle: dict[str, Any]) -> None:
    devices = _resources(bundle, "Device")
    assert len(devices) == 7
    for d in devices:
        assert "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice" in d["meta"]["profile"]
        assert d["identifier"]


def test_cgm_summary_follows_cgm_ig(sample_store: SqliteStore, bundle: dict[str, Any]) -> None:
    obs = {o["id"]: o for o in _resources(bundle, "Observation")}
    (summary,) = [o for o in obs.values() if o["meta"]["profile"] == [CGM_PROFILE + "cgm-summary"]]
    assert _codes(
        summary["code"], "http://hl7.org/fhir/uv/cgm/CodeSystem/cgm-summary-codes-temporary"
    ) == {"cgm-summary"}
    assert summary["effectivePeriod"] == {"start": str(FIRST_DAY), "end": str(LAST_DAY)}
    members = [obs[m["reference"].removeprefix("urn:uuid:")] for m in summary["hasMember"]]
    by_profile = {m["meta"]["profile"][0].removeprefix(CGM_PROFILE): m for m in members}
    assert {k: next(iter(_codes(v["code"], LOINC))) for k, v in by_profile.items()} == CGM_EXPECTED
    tir = by_profile["cgm-summary-times-in-ranges"]
    assert [next(iter(_codes(c["code"], LOINC))) for c in tir["component"]] == TIR_COMPONENTS
    assert sum(c["valueQuantity"]["value"] for c in tir["component"]) == pytest.approx(
        100, abs=0.05
    )

    # the numbers are vitalgate.signal's
    start, end = local_day_range(FIRST_DAY, LAST_DAY, PATIENT.tz)
    s = sample_store.query(PATIENT.patient_id, ReadingKind.CGM, start, end)
    g = s.values["glucose_mg_dl"]
    keep = clinical_mask(s) & np.isfinite(g)
    m = cgm_signal.metrics(g[keep], s.times_ns[keep])
    mean = by_profile["cgm-summary-mean-glucose-mass-per-volume"]["valueQuantity"]
    assert mean == {
        "value": round(m.mean_mg_dl, 1),
        "unit": "mg/dl",
        "system": "http://unitsofmeasure.org",
        "code": "mg/dL",
    }
    assert tir["component"][2]["valueQuantity"]["value"] == round(m.tir_pct, 2)
    assert by_profile["cgm-summary-gmi"]["valueQuantity"]["value"] == round(m.gmi_pct, 2)


def test_cgm_sensor_readings_optional(sample_store: SqliteStore) -> None:
    day = date(2026, 11, 19)
    with_readings = export_bundle(sample_store, PATIENT, day, day, generated_at=GENERATED)
    Bundle.model_validate(with_readings)
    readings = [
        o
        for o in _resources(with_readings, "Observation")
        if o["meta"]["profile"] == [CGM_PROFILE + "cgm-sensor-reading-mass-per-volume"]
    ]
    assert 250 < len(readings) <= 288
    assert all(_codes(o["code"], LOINC) == {"99504-3"} for o in readings)


def test_empty_period_gives_patient_only(sample_store: SqliteStore) -> None:
    day = date(2020, 1, 1)
    b = export_bundle(sample_store, PATIENT, day, day, generated_at=GENERATED)
    Bundle.model_validate(b)
    assert [e["resource"]["resourceType"] for e in b["entry"]] == ["Patient"]
