"""Linux authentication messages (sshd, sudo, su, PAM, useradd/usermod and friends) and auditd records.

Authentication messages arrive through syslog (see :mod:`.syslog`), so they are program handlers there; auditd
writes its own file format (``type=SYSCALL msg=audit(...): k=v ...``), so it is a parser of its own.
"""

from __future__ import annotations

import re
from typing import Any, TypeGuard

from collectors.logs.base import ParseError, logsource
from collectors.logs.parsers.base import EpochParser, LineParser, endpoint, register
from collectors.logs.parsers.syslog import ProgramHandler, register_handler
from soc.core.model import Event

LINUX_AUDITD = logsource("linux", None, "auditd")


def _auth(event: Event, action: str, outcome: str | None, types: list[str], category: str = "authentication") -> None:
    event["soc"]["logsource"]["service"] = "auth"  # the syslog parser made it linux/syslog
    ev = event["event"]
    ev["dataset"] = "system.auth"
    ev["action"] = action
    ev["category"] = [category]
    ev["type"] = types
    if outcome is not None:
        ev["outcome"] = outcome


def _source(event: Event, address: str, port: str | None = None) -> None:
    event["source"] = endpoint(address, port)


_PAM = re.compile(r"pam_unix\((\S+?):(\S+?)\): (.*)")
_PAM_FAILURE = re.compile(r"authentication failure;.*?ruser=(\S*)\s+rhost=(\S*)\s+(?:user=(\S+))?")
_PAM_SESSION = re.compile(
    r"session (opened|closed) for user ([^\s(]+)(?:\(uid=\d+\))?(?: by ([^\s(]*)(?:\(uid=\d+\))?)?"
)


def _pam(event: Event, message: str) -> bool:
    """``pam_unix(service:type): ...`` lines, the same from every program that authenticates through PAM."""
    match = _PAM.match(message)
    if match is None:
        return False
    _, kind, rest = match.groups()
    if kind == "auth" and (failure := _PAM_FAILURE.match(rest)) is not None:
        _ruser, rhost, user = failure.groups()
        _auth(event, "pam_authentication_failure", "failure", ["start"])
        if user:
            event["user"] = {"name": user}
        if rhost:
            _source(event, rhost)
        return True
    if kind == "session" and (session := _PAM_SESSION.match(rest)) is not None:
        state, target, by = session.groups()
        _auth(event, f"session_{state}", "success", ["start" if state == "opened" else "end"], "session")
        event["user"] = {"name": by, "effective": {"name": target}} if by else {"name": target}
        return True
    _auth(event, f"pam_{kind}", None, ["info"])
    return True


_SSH_RESULT = re.compile(r"(Accepted|Failed) (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)")
_SSH_INVALID = re.compile(r"Invalid user (.*?) from (\S+)(?: port (\d+))?")
_SSH_MAX = re.compile(
    r"error: maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)"
)
_SSH_PEER = re.compile(
    r".*? (?:from|by)(?: (?:authenticating|invalid) user \S+)? (\d[\d.]*|[0-9a-fA-F:]+:[\d.a-fA-F]*) port (\d+)"
)


@register_handler
class SshdHandler(ProgramHandler):
    """``Accepted password for alice from 10.0.0.5 port 51234 ssh2`` and its failure and invalid-user cousins."""

    programs = ("sshd", "sshd-session")

    def handle(self, event: Event, message: str) -> None:
        if (match := _SSH_RESULT.match(message)) is not None:
            result, method, invalid, user, ip, port = match.groups()
            event["soc"]["logsource"]["service"] = "auth"  # _auth, inlined: the most common auth line
            ev = event["event"]
            ev["dataset"] = "system.auth"
            ev["action"] = "ssh_login"
            ev["category"] = ["authentication"]
            ev["type"] = ["start"]
            ev["outcome"] = "success" if result == "Accepted" else "failure"
            event["user"] = {"name": user}
            event["source"] = endpoint(ip, port)
            ssh = {"method": method, "event": result, "invalid_user": True} if invalid else {
                "method": method, "event": result}  # fmt: skip
            event["system"] = {"auth": {"ssh": ssh}}
        elif (match := _SSH_INVALID.match(message)) is not None:
            user, ip, port = match.groups()
            _auth(event, "ssh_invalid_user", "failure", ["start"])
            event["user"] = {"name": user}
            _source(event, ip, port)
            event["system"] = {"auth": {"ssh": {"event": "Invalid", "invalid_user": True}}}
        elif (match := _SSH_MAX.match(message)) is not None:
            invalid, user, ip, port = match.groups()
            _auth(event, "ssh_max_attempts", "failure", ["start"])
            event["user"] = {"name": user}
            _source(event, ip, port)
        elif not _pam(event, message):
            event["soc"]["logsource"]["service"] = "auth"  # the syslog parser made it linux/syslog
            event["event"]["dataset"] = "system.auth"
            if (peer := _SSH_PEER.match(message)) is not None:
                _source(event, *peer.groups())


_SUDO_TAIL = r"TTY=(\S+) ; PWD=(.*?) ; USER=(\S+) ;(?: GROUP=\S+ ;)?(?: TSID=\S+ ;)?(?: ENV=.*? ;)? COMMAND=(.*)"
_SUDO = re.compile(r"\s*(\S+) : (?:(.*?) ; )?" + _SUDO_TAIL)
# the same when no " ; TTY=" follows the user, so that the lazy note group cannot match (skipping it scans less)
_SUDO_PLAIN = re.compile(r"\s*(\S+) : ()" + _SUDO_TAIL)


@register_handler
class SudoHandler(ProgramHandler):
    """``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`` (with a failure note when refused)."""

    programs = ("sudo",)

    def handle(self, event: Event, message: str) -> None:
        match = (_SUDO if " ; TTY=" in message else _SUDO_PLAIN).match(message)
        if match is None:
            if not _pam(event, message):
                _auth(event, "sudo", None, ["info"], "process")
            return
        user, problem, tty, pwd, target, command = match.groups()
        _auth(event, "sudo", "failure" if problem else "success", ["start"], "process")
        event["user"] = {"name": user, "effective": {"name": target}}
        process = event["process"]
        process["command_line"] = command
        process["working_directory"] = pwd
        sudo = {"tty": tty, "pwd": pwd, "user": target, "command": command}
        if problem:
            sudo["error"] = problem
        event["system"] = {"auth": {"sudo": sudo}}


_SU_UTIL = re.compile(r"(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)")
_SU_SHADOW = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")


@register_handler
class SuHandler(ProgramHandler):
    """``(to root) alice on pts/0`` (util-linux), ``FAILED su for root by alice`` (shadow), and PAM lines."""

    programs = ("su",)

    def handle(self, event: Event, message: str) -> None:
        if (match := _SU_UTIL.match(message)) is not None:
            failed, target, user, _tty = match.groups()
            outcome = "failure" if failed else "success"
        elif (match := _SU_SHADOW.match(message)) is not None:
            result, target, user = match.groups()
            outcome = "success" if result == "Successful" else "failure"
        else:
            if not _pam(event, message):
                _auth(event, "su", None, ["info"])
            return
        _auth(event, "su", outcome, ["start"])
        event["user"] = {"name": user, "effective": {"name": target}}


_CHANGES = {"change": "user_changed", "lock": "user_locked", "unlock": "user_unlocked"}
_KV_COMMA = re.compile(r"(\w+)=([^,]*)")
_QUOTED = re.compile(r"'([^']*)'")


@register_handler
class AccountHandler(ProgramHandler):
    """Account changes: ``new user: name=bob, UID=1001, ...``, ``add 'bob' to group 'sudo'``, ``delete user 'bob'``."""

    programs = ("useradd", "usermod", "userdel", "groupadd", "groupdel", "groupmod", "gpasswd", "passwd", "chpasswd")

    def handle(self, event: Event, message: str) -> None:
        program = event["process"]["name"]
        if _pam(event, message):
            return
        head, _, rest = message.partition(":")
        if head in ("new user", "new group") and rest:
            fields = dict(_KV_COMMA.findall(rest))
            kind = head.split()[1]
            _auth(event, f"{kind}_created", "success", [kind, "creation"], "iam")
            if kind == "user":
                event["user"] = {"name": fields.get("name", ""), "id": fields.get("UID")}
                if "GID" in fields:
                    event["group"] = {"id": fields["GID"]}
            else:
                event["group"] = {"name": fields.get("name", ""), "id": fields.get("GID")}
            return
        names = _QUOTED.findall(message)
        if message.startswith("add ") and len(names) >= 2:
            _auth(event, "user_added_to_group", "success", ["user", "group", "change"], "iam")
            event["user"], event["group"] = {"name": names[0]}, {"name": names[1]}
        elif message.startswith(("delete user", "delete ")) and names:
            _auth(event, "user_deleted", "success", ["user", "deletion"], "iam")
            event["user"] = {"name": names[0]}
        elif (action := _CHANGES.get(message.split(" ", 1)[0])) is not None and names:
            _auth(event, action, "success", ["user", "change"], "iam")
            event["user"] = {"name": names[0]}
        elif message.startswith("failed"):
            _auth(event, f"{program}_failed", "failure", ["user"], "iam")
            if names:
                event["user"] = {"name": names[0]}
        else:
            _auth(event, program, None, ["info"], "iam")


@register_handler
class LoginHandler(ProgramHandler):
    """Other programs whose messages are authentication records: PAM lines get their fields, the rest the source."""

    programs = ("login", "systemd-logind", "polkitd", "pkexec", "gdm-password]", "sshd-auth")

    def handle(self, event: Event, message: str) -> None:
        if not _pam(event, message):
            event["soc"]["logsource"]["service"] = "auth"  # the syslog parser made it linux/syslog
            event["event"]["dataset"] = "system.auth"


# --- auditd ----------------------------------------------------------------------------------------------------

_AUDIT = re.compile(r"(?:node=(\S+) )?type=(\S+) msg=audit\((\d+(?:\.\d+)?):(\d+)\): ?(.*)", re.S)
_AUDIT_KV = re.compile(r"([\w-]+)=(\"[^\"]*\"|'[^']*'|\S*)")


_AUDIT_PLAIN_KV = re.compile(r'([\w-]+)="?([^"\s]*)"?')
_QUOTED_SPACE = re.compile(r'="[^"]*\s')


def _plain_fields(text: str) -> dict[str, Any] | None:
    r"""``dict(_AUDIT_PLAIN_KV.findall(text))`` when ``_QUOTED_SPACE`` finds nothing in ``text`` (no "'" in it), for
    the common text made of ``key=value`` words, each key of ``[\w-]`` and each value plain or in double quotes:
    split by str methods instead of a regex search per field. None for any other text (the regexes then decide)."""
    words = text.split()
    fields: dict[str, Any] = {}
    for word in words:
        key, equals, value = word.partition("=")
        if not equals:
            return None
        fields[key] = value
    keys = "".join(fields).replace("-", "").replace("_", "")
    if len(fields) != len(words) or "" in fields or not (keys.isalnum() or not keys):  # a key twice, a bad key
        return None
    values = "".join(fields.values())
    if '"' in values:
        if '="' in values:  # a quote after an "=" inside a value: _QUOTED_SPACE may find it
            return None
        for key, value in fields.items():
            if '"' in value:
                if value[0] == '"':
                    if value[-1] != '"' or len(value) == 1:  # no closing quote: _QUOTED_SPACE may find it
                        return None
                    inner = value[1:-1]
                elif value[-1] == '"':
                    inner = value[:-1]
                else:
                    return None
                if '"' in inner:
                    return None
                fields[key] = inner
    return fields


def _audit_fields(text: str, out: dict[str, Any]) -> None:
    if "'" not in text:
        # fast path, mostly in C: no quoted value holds a space (SYSCALL, EXECVE with plain args, PATH, ...)
        if (plain := _plain_fields(text)) is not None:
            out.update(plain)
            return
        if _QUOTED_SPACE.search(text) is None:
            out.update(_AUDIT_PLAIN_KV.findall(text))
            return
    for key, value in _AUDIT_KV.findall(text):
        if value[:1] == "'" and key == "msg":
            _audit_fields(value[1:-1], out)  # USER_* records nest the PAM details in msg='...'
        elif value[:1] in ('"', "'"):
            out[key] = value[1:-1]
        else:
            out[key] = value


def _known(value: str | None) -> TypeGuard[str]:
    return value is not None and value not in ("", "?", "(null)")


_UNKNOWN = frozenset((None, "", "?", "(null)"))  # not _known


@register
class AuditdParser(LineParser):
    """auditd records: ``type=SYSCALL msg=audit(1764056606.123:456): arch=c000003e syscall=59 ... key="x"``."""

    name = "auditd"
    description = "Linux audit daemon records (audit.log)"
    sniff_priority = 20

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._time = EpochParser().__call__  # the bound method: a cheaper call

    def sniff(self, line: str) -> bool:
        return _AUDIT.match(line) is not None

    def parse(self, line: str) -> Event:
        match = _AUDIT.match(line.rstrip("\r\n"))
        if match is None:
            raise ParseError("no_match", "not an auditd record")
        node, record_type, stamp, sequence, body = match.groups()
        fields: dict[str, Any] = {}
        _audit_fields(body.split("\x1d", 1)[0], fields)  # after GS come ausearch's interpreted copies
        ev: dict[str, Any] = {"kind": "event", "module": "auditd", "dataset": "auditd.log",
                              "action": record_type.lower()}  # fmt: skip
        event: Event = {
            "@timestamp": self._time(stamp),
            "message": line,
            "event": ev,
            "soc": {"logsource": {"product": "linux", "category": None, "service": "auditd"}},
        }
        get = fields.get
        result = get("res") or get("success")
        if result is not None:
            ev["outcome"] = "success" if result in ("yes", "success", "1") else "failure"
        event["auditd"] = {"log": {"record_type": record_type, "sequence": int(sequence), **fields}}
        if node:
            event["host"] = {"name": node}
        process: dict[str, Any] = {}
        if (exe := get("exe")) not in _UNKNOWN:
            process["executable"] = exe
        if (comm := get("comm")) not in _UNKNOWN:
            process["name"] = comm
        if (pid := get("pid", "")).isdigit():
            process["pid"] = int(pid)
        if (ppid := get("ppid", "")).isdigit():
            process["parent"] = {"pid": int(ppid)}
        if process:
            event["process"] = process
        user: dict[str, Any] = {}
        if (uid := get("uid")) not in _UNKNOWN:
            user["id"] = uid
        if (auid := get("auid")) not in _UNKNOWN:
            user["audit"] = {"id": auid}
        if (euid := get("euid")) not in _UNKNOWN:
            user["effective"] = {"id": euid}
        if (acct := get("acct")) not in _UNKNOWN:
            user["name"] = acct
        if user:
            event["user"] = user
        if (addr := get("addr")) not in _UNKNOWN:
            event["source"] = endpoint(str(addr))
        if (key := get("key")) not in _UNKNOWN:
            event["tags"] = [key]
        return event


@register_handler
class CronHandler(ProgramHandler):
    """cron's messages are Sigma's ``linux/cron`` log source (``(root) CMD (...)``, its PAM sessions too)."""

    programs = ("CRON", "cron", "crond")

    def handle(self, event: Event, message: str) -> None:
        event["soc"]["logsource"]["service"] = "cron"
        if message.startswith("(") and ") CMD (" in message:
            user, _, command = message[1:].partition(") CMD (")
            event["user"] = {"name": user}
            event["process"]["command_line"] = command.removesuffix(")")
