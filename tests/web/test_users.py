"""Console users outside the web app: importing them (every `soc` command does) costs no argon2 hash and no FastAPI,
and an unknown user is still checked against a real hash."""

from __future__ import annotations

import subprocess
import sys

from soc.store.sqlite import SqliteStore
from soc.web.users import Role, Users, password_matches

from .conftest import PASSWORD, World

FRESH = """
import sys
import soc.cli.main
import soc.web.users as users
before = users._dummy_hash.cache_info().currsize
assert users.password_matches(None, "not a password of anyone") is False
print(before, users._dummy_hash.cache_info().currsize, "fastapi" in sys.modules)
"""


def test_the_unknown_user_hash_is_made_on_first_use_not_at_import() -> None:
    done = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, check=True)
    # no hash at import; one on the first unknown-user check, which still fails (even with the dummy's password)
    assert done.stdout.split() == ["0", "1", "False"]


def test_passwords_are_checked_as_before(world: World) -> None:
    users = Users(SqliteStore(world.folder / "soc.db"))
    owner = users.get("owner")
    assert owner is not None and owner.role == Role.OWNER
    assert password_matches(owner, PASSWORD) and not password_matches(owner, PASSWORD + "!")
    assert users.authenticate("owner", PASSWORD) == owner
    assert users.authenticate("nobody", PASSWORD) is None
