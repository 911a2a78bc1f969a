"""MITRE ATT&CK techniques and tactics from rule tags (``attack.t1059.001``, ``attack.execution``).

Only the tactics are bundled (fourteen, stable); a technique's name is its id unless a detector names it,
since the ATT&CK catalogue cannot be downloaded at run time here.
"""

from __future__ import annotations

from collections.abc import Iterable

from soc.model import Technique

TACTICS: dict[str, tuple[str, str]] = {
    # tag: (id, name)
    "reconnaissance": ("TA0043", "Reconnaissance"),
    "resource_development": ("TA0042", "Resource Development"),
    "initial_access": ("TA0001", "Initial Access"),
    "execution": ("TA0002", "Execution"),
    "persistence": ("TA0003", "Persistence"),
    "privilege_escalation": ("TA0004", "Privilege Escalation"),
    "defense_evasion": ("TA0005", "Defense Evasion"),
    "credential_access": ("TA0006", "Credential Access"),
    "discovery": ("TA0007", "Discovery"),
    "lateral_movement": ("TA0008", "Lateral Movement"),
    "collection": ("TA0009", "Collection"),
    "command_and_control": ("TA0011", "Command and Control"),
    "exfiltration": ("TA0010", "Exfiltration"),
    "impact": ("TA0040", "Impact"),
}


def techniques_from_tags(tags: Iterable[str]) -> list[Technique]:
    """Every ``attack.tNNNN[.NNN]`` tag as a Technique, paired with the rule's first tactic tag."""
    techniques: list[str] = []
    tactic = ("", "")
    for tag in tags:
        name = tag.lower().removeprefix("attack.")
        if not tag.lower().startswith("attack."):
            continue
        if name[:1] == "t" and name[1:5].isdigit():
            techniques.append(name.upper())
        elif name.replace("-", "_") in TACTICS and not tactic[0]:
            tactic = TACTICS[name.replace("-", "_")]
    return [Technique(t, t, tactic[0], tactic[1]) for t in techniques]
