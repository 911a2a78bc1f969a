"""Auditors' exports: each incident's timeline (detected, acknowledged, contained, reported, closed — who and
when — and whether the reporting deadlines were met), with its whole audit trail, as JSON, CSV or HTML."""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from soc.audit.chain import AuditLog
from soc.incidents import Incident, Incidents

MILESTONES = ("detected", "acknowledged", "contained", "reported", "closed")


def _in_range(moment: str, start: str | None, end: str | None) -> bool:
    return (start is None or moment[: len(start)] >= start) and (end is None or moment[: len(end)] <= end)


def incident_timeline(incident: Incident, incidents: Incidents, trail: list[dict[str, Any]]) -> dict[str, Any]:
    subjects = {f"incident:{incident.id}", *(f"alert:{a}" for a in incident.alert_ids)}
    records = [r for r in trail if r["subject"] in subjects]
    acknowledged = next((r for r in records if r["action"] in ("alert.acknowledged", "alert.in_progress")), None)
    contained = incident.phases.get("contain") or next(
        ({"at": r["at"], "by": r["actor"]} for r in records if r["action"] == "playbook.step.contain"), None)
    initial = next((r for r in incident.reports if r["form"] == "initial"), None)
    milestones = {
        "detected": {"at": incident.discovered_at, "by": "soc engine"},
        "acknowledged": {"at": acknowledged["at"], "by": acknowledged["actor"]} if acknowledged else None,
        "contained": {"at": contained["at"], "by": contained["by"]} if contained else None,
        "reported": {"at": initial["at"], "by": initial["by"]} if initial else None,
        "closed": {"at": incident.closed_at, "by": incident.closed_by} if incident.closed_at else None,
    }
    return {
        "incident": incident.id,
        "title": incident.title,
        "system": incident.system,
        "status": incident.status,
        "milestones": milestones,
        "deadlines": incidents.deadlines(incident),
        "audit_trail": records,
    }


def export_history(incidents: Incidents, audit: AuditLog, start: str | None, end: str | None, fmt: str,
                   actor: str) -> str:
    """The timelines of incidents opened between ``start`` and ``end`` (ISO dates or times, inclusive)."""
    trail = audit.records()
    verification = audit.verify()
    chosen = [i for i in incidents.all() if _in_range(i.created_at, start, end)]
    timelines = [incident_timeline(i, incidents, trail) for i in chosen]
    audit.append(actor, "audit.exported", "audit:history",
                 {"from": start, "to": end, "format": fmt, "incidents": [i.id for i in chosen]})
    chain = {"verified": verification.ok, "records": verification.records, "problems": verification.problems}
    if fmt == "json":
        return json.dumps({"from": start, "to": end, "audit_chain": chain, "incidents": timelines}, indent=2)
    if fmt == "csv":
        return _csv(timelines)
    if fmt == "html":
        return _html(timelines, chain, start, end)
    raise ValueError(f"unknown export format {fmt!r}: use json, csv or html")


def _csv(timelines: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["incident", "title", "system", "milestone", "at", "by", "deadline", "due", "met"])
    for t in timelines:
        for name in MILESTONES:
            step = t["milestones"][name] or {}
            writer.writerow([t["incident"], t["title"], t["system"], name, step.get("at", ""), step.get("by", ""),
                             "", "", ""])
        for d in t["deadlines"]:
            writer.writerow([t["incident"], t["title"], t["system"], f"deadline:{d['form']}", d["done"] or "", "",
                             d["rule"], d["due"] or "", "" if d["met"] is None else str(d["met"]).lower()])
    return buffer.getvalue()


def _html(timelines: list[dict[str, Any]], chain: dict[str, Any], start: str | None, end: str | None) -> str:
    e = html.escape
    status = "verified" if chain["verified"] else "BROKEN: " + "; ".join(chain["problems"])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Incident history</title>",
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;"
        "padding:4px 8px}.bad{color:#b00}.ok{color:#070}</style></head><body>",
        f"<h1>Incident history {e(start or '…')} – {e(end or '…')}</h1>",
        f"<p>Audit chain: <strong class='{'ok' if chain['verified'] else 'bad'}'>{e(status)}</strong> "
        f"({chain['records']} records)</p>",
    ]
    for t in timelines:
        parts.append(f"<h2>{e(t['incident'])}: {e(t['title'])}</h2><p>System: {e(str(t['system']))}; "
                     f"status: {e(t['status'])}</p><table><tr><th>milestone</th><th>at</th><th>by</th></tr>")
        for name in MILESTONES:
            step = t["milestones"][name] or {}
            parts.append(f"<tr><td>{e(name)}</td><td>{e(step.get('at') or '—')}</td>"
                         f"<td>{e(step.get('by') or '')}</td></tr>")
        parts.append("</table><table><tr><th>deadline</th><th>due</th><th>done</th><th>met</th></tr>")
        for d in t["deadlines"]:
            met = "pending" if d["met"] is None else ("yes" if d["met"] else "NO")
            parts.append(f"<tr><td>{e(d['rule'])}</td><td>{e(d['due'] or '—')}</td><td>{e(d['done'] or '—')}</td>"
                         f"<td class='{'ok' if d['met'] else 'bad'}'>{met}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
