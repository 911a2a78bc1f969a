"""Response: playbooks (playbooks/*.yml) run on alerts, with approvals for steps that disrupt service."""

from soc.response.engine import PlaybookEngine
from soc.response.playbook import Playbook, PlaybookError, load_playbooks

__all__ = ["Playbook", "PlaybookEngine", "PlaybookError", "load_playbooks"]
