"""Accounts (scrypt, 0600 file), sessions (expiry, bounded, hashed tokens), CSRF, throttling."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from vitalgate.errors import ConfigError
from vitalgate.views.auth import (
    LoginThrottle,
    Role,
    SessionTable,
    UserStore,
    add_user,
    csrf_ok,
    hash_password,
    verify_password,
)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_scrypt_rfc7914_vector() -> None:
    # RFC 7914 section 12, second vector (N=1024, r=8, p=16), first 32 bytes of the 64-byte key
    key = hash_password("password", b"NaCl", n=1024, r=8, p=16)
    assert key.hex() == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"


def test_users_file_and_verification(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "dr.who", "tardis-1963-x", Role.DOCTOR)
    add_user(path, "amy", "pond-password", Role.PATIENT, "p-7")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert "tardis" not in path.read_text()
    assert len(bytes.fromhex(doc["users"]["dr.who"]["salt"])) == 16
    assert doc["users"]["dr.who"]["salt"] != doc["users"]["amy"]["salt"]
    users = UserStore(path)
    doctor, patient = users.get("dr.who"), users.get("amy")
    assert doctor is not None and patient is not None
    assert verify_password(doctor, "tardis-1963-x")
    assert not verify_password(doctor, "tardis-1963-y")
    assert doctor.may_see("p-1") and patient.may_see("p-7") and not patient.may_see("p-1")
    assert users.get("nobody") is None


@pytest.mark.parametrize(
    ("username", "password", "role", "patient"),
    [
        ("bad name", "long-enough-pw", Role.DOCTOR, None),
        ("ok", "short", Role.DOCTOR, None),
        ("ok", "long-enough-pw", Role.PATIENT, None),
        ("ok", "long-enough-pw", Role.DOCTOR, "p-1"),
    ],
    ids=["username", "short-password", "patient-without-id", "doctor-with-id"],
)
def test_add_user_rejects(
    tmp_path: Path, username: str, password: str, role: Role, patient: str | None
) -> None:
    with pytest.raises(ConfigError):
        add_user(tmp_path / "u.json", username, password, role, patient)


def test_user_store_reloads_on_change(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    add_user(path, "a", "password-aaaa", Role.DOCTOR)
    users = UserStore(path)
    assert users.get("b") is None
    add_user(path, "b", "password-bbbb", Role.DOCTOR)
    import os

    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert users.get("b") is not None


def test_missing_or_broken_users_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        UserStore(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"users": {"x": {"role": "admin"}}}')
    with pytest.raises(ConfigError):
        UserStore(bad)


def test_sessions_expire_idle_and_absolute() -> None:
    clock = Clock()
    table = SessionTable(idle_s=60, absolute_s=300, clock=clock)
    token, session = table.create("dr")
    assert table.get(token) is session
    clock.t += 59
    assert table.get(token) is session  # touching renews the idle timer
    clock.t += 59
    assert table.get(token) is session
    clock.t += 61
    assert table.get(token) is None
    token, _ = table.create("dr")
    for _ in range(6):
        clock.t += 55
        found = table.get(token)
    assert found is None  # 330 s > absolute 300 s although never idle for 60 s


def test_sessions_bounded_and_tokens_hashed() -> None:
    table = SessionTable(idle_s=60, absolute_s=300, max_sessions=3, clock=Clock())
    tokens = [table.create(f"u{i}")[0] for i in range(4)]
    assert len(table) == 3 and table.get(tokens[0]) is None
    assert all(t not in table._sessions for t in tokens)  # only digests are kept
    table.drop(tokens[1])
    assert table.get(tokens[1]) is None
    table.drop_user("u3")
    assert table.get(tokens[3]) is None and table.get(tokens[2]) is not None
    assert table.get(None) is None and table.get("") is None


def test_csrf_compare() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd") and not csrf_ok("abc", None) and not csrf_ok("", "")


def test_login_throttle() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60, clock=clock)
    for _ in range(3):
        assert not throttle.blocked("u")
        throttle.failed("u")
    assert throttle.blocked("u")
    clock.t += 61
    assert not throttle.blocked("u")
    throttle.failed("u")
    throttle.succeeded("u")
    assert not throttle.blocked("u")
