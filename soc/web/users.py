"""Console users, kept as store records (kind ``user``): argon2 password hash, role, owned systems, language.
Failed logins are rate-limited per user name and per client address."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from soc.core.errors import SocError
from soc.store.base import AlertStore

KIND = "user"
_log = logging.getLogger(__name__)
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so an unknown name costs the same time as a wrong password.
    Made on first use, not at import: hashing takes a tenth of a second that every `soc` command would pay."""
    return _HASHER.hash("not a password of anyone")


class Role(enum.StrEnum):
    ANALYST = "analyst"
    OWNER = "owner"
    AUDITOR = "auditor"
    ADMIN = "admin"


LANGUAGES = ("vi", "en")


class UserError(SocError):
    """A user that cannot be added or changed."""


@dataclass(slots=True)
class User:
    name: str
    role: Role
    password_hash: str
    systems: list[str] = field(default_factory=list)  # what an owner may see
    language: str = "vi"

    def to_record(self) -> dict[str, Any]:
        return {**asdict(self), "role": self.role.value}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> User:
        return cls(name=record["name"], role=Role(record["role"]), password_hash=record["password_hash"],
                   systems=list(record.get("systems") or []), language=record.get("language") or "vi")

    def may_see(self, system: str | None) -> bool:
        """Owners see their own systems only; the other roles are not limited by system."""
        return self.role != Role.OWNER or (system is not None and system in self.systems)


class Users:
    def __init__(self, store: AlertStore, known_systems: list[str] | None = None) -> None:
        self.store = store
        self.known_systems = known_systems

    def get(self, name: str) -> User | None:
        record = self.store.get_record(KIND, name)
        if record is None:
            return None
        try:
            return User.from_record(record)
        except (KeyError, TypeError, ValueError) as exc:  # a damaged account cannot log in
            _log.warning("user record %r is damaged: %s", name, exc)
            return None

    def all(self) -> list[User]:
        """Every user; a damaged record is left out with a warning naming it, never a crash of the page."""
        users = []
        for record in self.store.list_records(KIND):
            try:
                users.append(User.from_record(record))
            except (KeyError, TypeError, ValueError) as exc:
                _log.warning("user record %r is damaged and left out: %s", record.get("name"), exc)
        return users

    def add(self, name: str, role: Role, password: str, systems: list[str] | None = None,
            language: str = "vi", replace: bool = False) -> User:
        name = name.strip()
        if not name or any(c.isspace() for c in name):
            raise UserError(f"user name {name!r} must be one word")
        if len(password) < 10:
            raise UserError("the password needs at least 10 characters")
        if language not in LANGUAGES:
            raise UserError(f"unknown language {language!r}: use {' or '.join(LANGUAGES)}")
        systems = list(systems or [])
        if role == Role.OWNER and not systems:
            raise UserError("a system owner needs at least one system (--systems)")
        if role != Role.OWNER and systems:
            raise UserError("only system owners are limited to systems")
        if self.known_systems is not None:
            unknown = [s for s in systems if s not in self.known_systems]
            if unknown:
                raise UserError(f"not in the inventory: {', '.join(unknown)}")
        if not replace and self.get(name) is not None:
            raise UserError(f"user {name} exists already")
        user = User(name, role, _HASHER.hash(password), systems, language)
        self.store.put_record(KIND, name, user.to_record())
        return user

    def set_language(self, user: User, language: str) -> User:
        if language not in LANGUAGES:
            raise UserError(f"unknown language {language!r}: use {' or '.join(LANGUAGES)}")
        user.language = language
        self.store.put_record(KIND, user.name, user.to_record())
        return user

    def authenticate(self, name: str, password: str) -> User | None:
        user = self.get(name)
        return user if password_matches(user, password) else None


def password_matches(user: User | None, password: str) -> bool:
    """Argon2 verification (slow on purpose); an unknown user costs the same time as a wrong password."""
    try:
        _HASHER.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


class LoginLimiter:
    """At most ``max_failures`` failed logins per key (user name, client address) within ``window`` seconds."""

    def __init__(self, max_failures: int = 5, window: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.max_failures for k in keys)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, name_key: str) -> None:
        with self._lock:
            self._failures.pop(name_key, None)
