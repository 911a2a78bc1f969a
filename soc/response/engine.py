"""Running playbooks on alerts: steps in order, each recorded in the audit log; a step that needs approval stops
the run until a person approves it (``approve``), a failed step stops it until ``retry``.

A run's id is derived from the playbook and the alert, so the same alert never starts the same playbook twice.
"""

from __future__ import annotations

import hashlib
import json
import re
import smtplib
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from soc.audit import AuditLog
from soc.core.config import Settings
from soc.core.model import Alert, get_field, iso_now
from soc.incidents import Incidents
from soc.response.playbook import (
    ContainStep,
    EnrichStep,
    IncidentStep,
    NotifyStep,
    Playbook,
    PlaybookError,
    ReportStep,
)
from soc.store.base import AlertQuery, AlertStore

KIND = "playbook_run"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_@][\w.@-]*)\}")


def render(template: str, context: dict[str, Any]) -> str:
    """Fill ``{a.b.c}`` placeholders from ``context`` (dotted lookups only, nothing evaluated)."""
    def value(match: re.Match[str]) -> str:
        found = get_field(context, match.group(1))
        return "?" if found is None else str(found)
    return _PLACEHOLDER.sub(value, template)


class PlaybookEngine:
    def __init__(self, settings: Settings, store: AlertStore, playbooks: list[Playbook],
                 audit: AuditLog | None = None, run_command: Callable[[list[str]], Any] | None = None) -> None:
        self.settings = settings
        self.store = store
        self.playbooks = {p.id: p for p in playbooks}
        self.audit = audit or AuditLog(store)
        self.incidents = Incidents(store, settings, self.audit)
        self.run_command = run_command or (lambda argv: subprocess.run(argv, check=True, capture_output=True,
                                                                         text=True, timeout=30))
        self._steps: dict[type, Callable[[Any, dict[str, Any], str], dict[str, Any]]] = {
            EnrichStep: self._enrich,
            NotifyStep: self._notify,
            ContainStep: self._contain,
            IncidentStep: self._incident,
            ReportStep: self._report,
        }

    # --- runs ---

    def matching(self, alert: Alert) -> list[Playbook]:
        return [p for p in self.playbooks.values() if p.trigger.matches(alert)]

    def start_all(self, alert: Alert, actor: str = "soc engine") -> list[dict[str, Any]]:
        return [self.start(p.id, alert.id, actor) for p in self.matching(alert)]

    def start(self, playbook_id: str, alert_id: str, actor: str) -> dict[str, Any]:
        playbook = self._playbook(playbook_id)
        run_id = hashlib.sha256(f"{playbook.id}\x1f{alert_id}".encode()).hexdigest()[:16]
        existing = self.store.get_record(KIND, run_id)
        if existing is not None:
            return existing
        if self.store.get(alert_id) is None:
            raise PlaybookError(f"no alert with id {alert_id}")
        run: dict[str, Any] = {"id": run_id, "playbook": playbook.id, "alert_id": alert_id, "status": "running",
                               "started_at": iso_now(), "started_by": actor, "next_step": 0, "steps": [],
                               "outputs": {}}
        self.audit.append(actor, "playbook.started", f"alert:{alert_id}", {"run": run_id, "playbook": playbook.id})
        return self._go(run, actor)

    def approve(self, run_id: str, step_id: str, actor: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        playbook = self._playbook(run["playbook"])
        waiting = playbook.steps[run["next_step"]] if run["status"] == "waiting_approval" else None
        if waiting is None or waiting.id != step_id:
            raise PlaybookError(f"run {run_id} is not waiting for approval of step {step_id!r}")
        run.setdefault("approvals", {})[step_id] = {"by": actor, "at": iso_now()}
        self.audit.append(actor, "playbook.approved", f"alert:{run['alert_id']}", {"run": run_id, "step": step_id})
        run["status"] = "running"
        return self._go(run, actor)

    def retry(self, run_id: str, actor: str) -> dict[str, Any]:
        run = self.get_run(run_id)
        if run["status"] != "failed":
            raise PlaybookError(f"run {run_id} is {run['status']}, not failed")
        run["status"] = "running"
        return self._go(run, actor)

    def get_run(self, run_id: str) -> dict[str, Any]:
        run = self.store.get_record(KIND, run_id)
        if run is None:
            raise PlaybookError(f"no playbook run with id {run_id}")
        return run

    def runs(self) -> list[dict[str, Any]]:
        return self.store.list_records(KIND)

    def _playbook(self, playbook_id: str) -> Playbook:
        try:
            return self.playbooks[playbook_id]
        except KeyError:
            raise PlaybookError(f"no playbook with id {playbook_id}") from None

    def _go(self, run: dict[str, Any], actor: str) -> dict[str, Any]:
        playbook = self._playbook(run["playbook"])
        alert = self.store.get(run["alert_id"])
        if alert is None:
            raise PlaybookError(f"alert {run['alert_id']} of run {run['id']} is gone")
        while run["next_step"] < len(playbook.steps):
            step = playbook.steps[run["next_step"]]
            entry: dict[str, Any] = {"id": step.id, "type": step.type, "at": iso_now()}
            if step.when is not None and not step.when.holds(alert):
                entry["status"] = "skipped"
            elif step.requires_approval and step.id not in run.get("approvals", {}):
                run["status"] = "waiting_approval"
                self.audit.append("soc engine", "playbook.waiting_approval", f"alert:{alert.id}",
                                  {"run": run["id"], "step": step.id})
                break
            else:
                try:
                    entry["output"] = self._steps[type(step)](step, self._context(run, alert), actor)
                    entry["status"] = "done"
                except (OSError, smtplib.SMTPException, subprocess.SubprocessError, PlaybookError) as exc:
                    entry.update(status="failed", error=str(exc))
                    run["status"] = "failed"
                    run["steps"].append(entry)
                    self.audit.append(actor, "playbook.step.failed", f"alert:{alert.id}",
                                      {"run": run["id"], "step": step.id, "error": str(exc)})
                    break
                run["outputs"][step.id] = entry["output"]
                self.audit.append(actor, f"playbook.step.{step.type}", f"alert:{alert.id}",
                                  {"run": run["id"], "step": step.id, "output": _summary(entry["output"])})
            run["steps"].append(entry)
            run["next_step"] += 1
        else:
            run["status"] = "done"
            run["finished_at"] = iso_now()
        self.store.put_record(KIND, run["id"], run)
        return run

    def _context(self, run: dict[str, Any], alert: Alert) -> dict[str, Any]:
        doc = alert.to_ecs()
        doc.update(id=alert.id, severity_label=alert.severity.label, first_seen=alert.first_seen)
        system = self.settings.system_named(alert.system) if alert.system else None
        return {
            "alert": doc,
            "system": system.model_dump(mode="json") if system else {"name": "unknown system"},
            "run": {"id": run["id"], "playbook": run["playbook"]},
            "steps": run["outputs"],
            "incident": {"id": next((o["incident_id"] for o in run["outputs"].values() if "incident_id" in o),
                                    alert.incident_id)},
        }

    # --- step types ---

    def _enrich(self, step: EnrichStep, context: dict[str, Any], actor: str) -> dict[str, Any]:
        alert = context["alert"]
        addresses = {a for a in (get_field(alert, "source.ip"), get_field(alert, "destination.ip")) if a}
        since = (datetime.fromisoformat(alert["first_seen"].replace("Z", "+00:00"))
                 - timedelta(hours=step.related_hours)).isoformat()
        related = [
            {"id": a.id, "rule": a.rule.name, "severity": a.severity.label, "first_seen": a.first_seen}
            for a in self.store.search(AlertQuery(limit=1000, include_suppressed=True))
            if a.id != alert["id"] and a.first_seen >= since[:19]
            and addresses & {get_field(a.ecs, "source.ip"), get_field(a.ecs, "destination.ip")}
        ]
        flows = [e for address in sorted(addresses) for e in self.store.events_for_address(address, limit=20)]
        return {"system": context["system"], "owner": context["system"].get("owner"), "related_alerts": related,
                "recent_flows": [_flow_summary(e) for e in flows]}

    def _notify(self, step: NotifyStep, context: dict[str, Any], actor: str) -> dict[str, Any]:
        subject, body = render(step.subject, context), render(step.body, context)
        if step.channel == "webhook":
            assert step.url is not None
            payload = json.dumps({"subject": subject, "body": body, "alert": context["alert"],
                                  "system": context["system"], "run": context["run"]}).encode()
            request = urllib.request.Request(render(step.url, context), data=payload, method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=self.settings.response.webhook_timeout) as answer:
                return {"channel": "webhook", "status": answer.status, "subject": subject}
        smtp = self.settings.response.smtp
        if smtp is None:
            raise PlaybookError("an email step needs response.smtp in soc.yaml")
        recipients = [r for r in (render(t, context) for t in step.to) if "@" in r and "?" not in r]
        if not recipients:
            raise PlaybookError(f"no e-mail address among {step.to} for this alert (is the system's contact set?)")
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = smtp.sender, ", ".join(recipients), subject
        message.set_content(body)
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(message)
        return {"channel": "email", "to": message["To"], "subject": subject}

    def _contain(self, step: ContainStep, context: dict[str, Any], actor: str) -> dict[str, Any]:
        target = get_field(context["alert"], step.target)
        if not target:
            raise PlaybookError(f"the alert has no {step.target} to block")
        containment = self.settings.response.containment
        command = ["nft", "add", "element", *containment.nft_table.split(), containment.nft_set, "{", str(target),
                   "}"]
        if not containment.enabled:
            return {"action": step.action, "target": target, "command": " ".join(command), "dry_run": True}
        self.run_command(command)
        return {"action": step.action, "target": target, "command": " ".join(command), "dry_run": False}

    def _incident(self, step: IncidentStep, context: dict[str, Any], actor: str) -> dict[str, Any]:
        alert_id = context["alert"]["id"]
        existing = context["incident"]["id"]
        if existing:
            self.incidents.link(existing, [alert_id], actor)
            return {"incident_id": existing, "opened": False}
        incident = self.incidents.open(render(step.title, context), [alert_id], actor, serious=step.serious)
        return {"incident_id": incident.id, "opened": True}

    def _report(self, step: ReportStep, context: dict[str, Any], actor: str) -> dict[str, Any]:
        incident_id = context["incident"]["id"]
        if not incident_id:
            raise PlaybookError("a report step needs an incident: put an incident step before it")
        document = self.incidents.report(incident_id, step.form, actor)
        return {"incident_id": incident_id, "form": document["form"], "draft": document}


def _flow_summary(event: dict[str, Any]) -> str:
    return (f"{get_field(event, '@timestamp')} {get_field(event, 'source.ip')}:{get_field(event, 'source.port')} -> "
            f"{get_field(event, 'destination.ip')}:{get_field(event, 'destination.port')}/"
            f"{get_field(event, 'network.transport')} {get_field(event, 'network.bytes')} bytes")


def _summary(output: dict[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of a step's output: its small fields (a report draft is kept on the incident)."""
    return {k: v for k, v in output.items() if not isinstance(v, dict | list) or k in ("to",)}

