"""Dashboard accounts and sessions.

Accounts live in a JSON file (mode 0600) written by ``vitalgate users add``. Passwords are hashed
with scrypt (RFC 7914; ``hashlib.scrypt``, N = 2**15, r = 8, p = 1, a 16-byte random salt per
user, a 32-byte key) and compared in constant time. A ``doctor`` sees every patient; a
``patient`` account is bound to one patient id and sees only that patient.

Sessions are server-side: the cookie carries a random 256-bit token, the table keeps only its
SHA-256, so a leaked table (or log) cannot be replayed. A session expires after ``idle_s`` without
use and at the latest ``absolute_s`` after sign-in; the table is bounded (``max_sessions``; when
full the session closest to expiry is dropped). Every session has its own CSRF token, which every
POST form must echo (compared in constant time).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from vitalgate.errors import ConfigError
from vitalgate.files import write_private

__all__ = [
    "Role",
    "Session",
    "SessionTable",
    "User",
    "UserStore",
    "add_user",
    "hash_password",
    "verify_password",
]

_SCRYPT_N: Final = 2**15
_SCRYPT_R: Final = 8
_SCRYPT_P: Final = 1
_KEY_LEN: Final = 32
_USERNAME: Final = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH: Final = 10


class Role(enum.StrEnum):
    DOCTOR = "doctor"
    PATIENT = "patient"


@dataclass(frozen=True, slots=True)
class User:
    """An account; ``patient_id`` is set for (and only for) patient accounts."""

    username: str
    role: Role
    patient_id: str | None
    salt: bytes
    key: bytes
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P

    def may_see(self, patient_id: str) -> bool:
        return self.role is Role.DOCTOR or self.patient_id == patient_id


def hash_password(
    password: str, salt: bytes, *, n: int = _SCRYPT_N, r: int = _SCRYPT_R, p: int = _SCRYPT_P
) -> bytes:
    """The scrypt key of a password (RFC 7914)."""
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_KEY_LEN, maxmem=128 * n * r * 2
    )


def verify_password(user: User, password: str) -> bool:
    """Constant-time check of a password against a user's key."""
    candidate = hash_password(password, user.salt, n=user.n, r=user.r, p=user.p)
    return hmac.compare_digest(candidate, user.key)


def _user_from_json(name: str, d: Any) -> User:
    if not isinstance(d, dict):
        raise ConfigError(f"users.{name}", "must be an object")
    try:
        role = Role(d["role"])
        patient_id = d.get("patient_id")
        if role is Role.PATIENT and not isinstance(patient_id, str):
            raise ConfigError(f"users.{name}.patient_id", "a patient account needs a patient id")
        return User(
            username=name,
            role=role,
            patient_id=patient_id if role is Role.PATIENT else None,
            salt=bytes.fromhex(d["salt"]),
            key=bytes.fromhex(d["key"]),
            n=int(d.get("n", _SCRYPT_N)),
            r=int(d.get("r", _SCRYPT_R)),
            p=int(d.get("p", _SCRYPT_P)),
        )
    except (KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"users.{name}", f"invalid account record: {exc}") from None


class UserStore:
    """The accounts of a users file; re-read when the file changes (``users add`` while running)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._mtime_ns = -1
        self._users: dict[str, User] = {}
        self._load()

    def _load(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise ConfigError(
                "users", f"{self.path} does not exist (vitalgate users add)"
            ) from None
        if st.st_mtime_ns == self._mtime_ns:
            return
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError("users", f"cannot read {self.path}: {exc}") from None
        users = doc.get("users") if isinstance(doc, dict) else None
        if not isinstance(users, dict):
            raise ConfigError("users", f"{self.path} has no 'users' object")
        self._users = {name: _user_from_json(name, d) for name, d in users.items()}
        self._mtime_ns = st.st_mtime_ns

    def get(self, username: str) -> User | None:
        with self._lock:
            self._load()
            return self._users.get(username)

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)


def add_user(
    path: str | os.PathLike[str],
    username: str,
    password: str,
    role: Role,
    patient_id: str | None = None,
) -> User:
    """Create or replace an account in a users file (created with mode 0600)."""
    if not _USERNAME.match(username):
        raise ConfigError("username", "1-64 characters of letters, digits and _.@-")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")
    if role is Role.PATIENT and not patient_id:
        raise ConfigError("patient", "a patient account needs --patient")
    if role is Role.DOCTOR and patient_id:
        raise ConfigError("patient", "a doctor account is not bound to a patient")
    p = Path(path)
    doc: dict[str, Any] = {"users": {}}
    if p.exists():
        try:
            doc = json.loads(p.read_text("utf-8"))
        except ValueError as exc:
            raise ConfigError("users", f"{p} is not valid JSON: {exc}") from None
    salt = secrets.token_bytes(16)
    user = User(
        username=username,
        role=role,
        patient_id=patient_id,
        salt=salt,
        key=hash_password(password, salt),
    )
    doc.setdefault("users", {})[username] = {
        "role": str(role),
        "patient_id": patient_id,
        "salt": salt.hex(),
        "key": user.key.hex(),
        "n": user.n,
        "r": user.r,
        "p": user.p,
    }
    write_private(p, json.dumps(doc, indent=2, sort_keys=True))
    return user


@dataclass(slots=True)
class Session:
    username: str
    csrf_token: str
    created_s: float
    last_used_s: float


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SessionTable:
    """Server-side sessions keyed by the SHA-256 of the cookie token (see the module docstring).

    ``clock`` returns seconds (monotonic); injectable for tests.
    """

    def __init__(
        self,
        *,
        idle_s: float,
        absolute_s: float,
        max_sessions: int = 10_000,
        clock: Any = time.monotonic,
    ) -> None:
        if idle_s <= 0 or absolute_s <= 0 or max_sessions < 1:
            raise ValueError("idle_s, absolute_s and max_sessions must be positive")
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self._max = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def create(self, username: str) -> tuple[str, Session]:
        """A new session; returns the cookie token (shown once) and the session."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(username, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._sessions[_digest(token)] = session
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)  # least recently used
        return token, session

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie token (touching it), or None when unknown or expired."""
        if not token:
            return None
        key = _digest(token)
        now = self._clock()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            if now - session.last_used_s > self.idle_s or now - session.created_s > self.absolute_s:
                del self._sessions[key]
                return None
            session.last_used_s = now
            self._sessions.move_to_end(key)
            return session

    def drop(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(_digest(token), None)

    def drop_user(self, username: str) -> None:
        """End every session of a user (password change, account removal)."""
        with self._lock:
            for key in [k for k, s in self._sessions.items() if s.username == username]:
                del self._sessions[key]

    def __len__(self) -> int:
        return len(self._sessions)


def csrf_ok(expected: str, given: object) -> bool:
    """Constant-time comparison of a form's CSRF token."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


class LoginThrottle:
    """Slows password guessing: after ``max_failures`` failures for a username within
    ``window_s``, sign-in for it is refused until the window has passed. Bounded."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_s: float = 300.0,
        clock: Any = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._max = max_failures
        self._window = window_s
        self._clock = clock
        self._max_entries = max_entries
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def blocked(self, username: str) -> bool:
        now = self._clock()
        with self._lock:
            times = [t for t in self._failures.get(username, []) if now - t < self._window]
            if times:
                self._failures[username] = times
            else:
                self._failures.pop(username, None)
            return len(times) >= self._max

    def failed(self, username: str) -> None:
        with self._lock:
            self._failures.setdefault(username, []).append(self._clock())
            self._failures.move_to_end(username)
            while len(self._failures) > self._max_entries:
                self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(username, None)
