"""Field mapping from Sigma's taxonomy to our events, as pySigma processing pipelines, and Windows log-source routing.

Windows (``soc_windows``, for the Winlogbeat-style events of ``collectors/logs/evtx.py``):

=====================================  ==========================================================
Sigma field                            event field
=====================================  ==========================================================
``EventID``                            ``winlog.event_id``
``Channel``                            ``winlog.channel``
``Provider_Name``                      ``winlog.provider_name``
``Computer`` / ``ComputerName``        ``winlog.computer_name``
``EventRecordID``                      ``winlog.record_id``
any other name (``Image``, ...)        ``winlog.event_data.<Name>`` (EventData and UserData fields)
=====================================  ==========================================================

Windows categories are routed, not rewritten: pySigma's Sysmon pipeline adds ``EventID: 1`` to a
``process_creation`` rule and points it at the Sysmon channel; we do the same at routing time, giving each Sysmon
event the categories of its event id (:data:`SYSMON_CATEGORIES`; 12 is ``registry_add`` or ``registry_delete``
by its ``EventType``), and each PowerShell event its ``ps_*`` category (:data:`SERVICE_EVENT_CATEGORIES`).  So a
``process_creation`` rule only ever sees Sysmon event 1, exactly as if the condition had been added, without
testing ``EventID`` on every other Sysmon event.  (Security 4688 is not routed to ``process_creation``: its field
names differ and the rules' ``Image`` would need the audit pipeline's renaming.)

Everything else (``soc_ecs``), by log source, Sigma taxonomy name to ECS:

- ``webserver`` and ``proxy``: ``c-uri`` url.original, ``c-uri-query`` url.query, ``c-uri-stem`` url.path,
  ``c-uri-extension`` url.extension, ``cs-method`` http.request.method, ``sc-status`` http.response.status_code,
  ``c-useragent`` user_agent.original, ``cs-referrer``/``cs-referer`` http.request.referrer, ``cs-host``/``r-dns``
  url.domain, ``c-ip`` source.ip, ``s-ip``/``dst_ip`` destination.ip, ``cs-bytes`` http.request.bytes,
  ``sc-bytes`` http.response.bytes, ``cs-username`` user.name, ``cs-version`` http.version,
  ``cs-mime-type`` http.request.mime_type, ``cs-cookie`` http.request.cookie.
- ``dns``: ``query``/``QueryName`` dns.question.name, ``record_type`` dns.question.type, ``answer``
  dns.answers.data, ``response_code``/``rcode`` dns.response_code, ``parent_domain``
  dns.question.registered_domain, ``src_ip``/``dst_ip`` source.ip/destination.ip.
- ``firewall`` (and any ``network`` product): ``src_ip`` source.ip, ``dst_ip`` destination.ip, ``src_port``
  source.port, ``dst_port`` destination.port, ``action`` event.action, ``protocol`` network.transport,
  ``username`` user.name.
- Linux ``auditd``: ``type`` to ``auditd.log.record_type``, every other name (``a0``, ``exe``, ``key``,
  ``SYSCALL``, ...) to ``auditd.log.<name>``, where the auditd parser keeps the record's raw keys.
- Linux ``process_creation``/``file_event``/``network_connection``: ``Image`` process.executable,
  ``CommandLine`` process.command_line, ``ParentImage`` process.parent.executable, ``ParentCommandLine``
  process.parent.command_line, ``User`` user.name, ``CurrentDirectory`` process.working_directory,
  ``ProcessId`` process.pid, ``ParentProcessId`` process.parent.pid, ``TargetFilename`` file.path,
  ``DestinationIp``/``DestinationPort``/``DestinationHostname`` destination.ip/port/domain, ``SourceIp``/
  ``SourcePort`` source.ip/port.
- Names not listed stay as written and are looked up as a (dotted) path in the event.

The Elasticsearch backend's pipelines (``ecs_windows``, ``ecs_zeek_beats``, ...) are available by name too, for
events indexed by Winlogbeat's own ingest pipelines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sigma.pipelines.elasticsearch import pipelines as _es_pipelines
from sigma.processing.conditions import (
    FieldNameProcessingCondition,
    FieldNameProcessingItemAppliedCondition,
    IncludeFieldCondition,
    LogsourceCondition,
)
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import AddFieldnamePrefixTransformation, FieldMappingTransformation

from detectors.sigma.errors import UnknownPipeline
from soc.core.model import Event

WINDOWS_FIELDS = {
    "EventID": "winlog.event_id",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Computer": "winlog.computer_name",
    "ComputerName": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
}

_HTTP_FIELDS = {
    "c-uri": "url.original",
    "c-uri-query": "url.query",
    "c-uri-stem": "url.path",
    "c-uri-extension": "url.extension",
    "cs-method": "http.request.method",
    "sc-status": "http.response.status_code",
    "c-useragent": "user_agent.original",
    "cs-user-agent": "user_agent.original",
    "cs-referrer": "http.request.referrer",
    "cs-referer": "http.request.referrer",
    "cs-host": "url.domain",
    "r-dns": "url.domain",
    "c-ip": "source.ip",
    "s-ip": "destination.ip",
    "dst_ip": "destination.ip",
    "cs-bytes": "http.request.bytes",
    "sc-bytes": "http.response.bytes",
    "cs-username": "user.name",
    "cs-version": "http.version",
    "cs-mime-type": "http.request.mime_type",
    "cs-cookie": "http.request.cookie",
}

_DNS_FIELDS = {
    "query": "dns.question.name",
    "QueryName": "dns.question.name",
    "record_type": "dns.question.type",
    "answer": "dns.answers.data",
    "response_code": "dns.response_code",
    "rcode": "dns.response_code",
    "parent_domain": "dns.question.registered_domain",
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
}

_FLOW_FIELDS = {
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
    "src_port": "source.port",
    "dst_port": "destination.port",
    "action": "event.action",
    "protocol": "network.transport",
    "username": "user.name",
}

_LINUX_FIELDS = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "User": "user.name",
    "CurrentDirectory": "process.working_directory",
    "ProcessId": "process.pid",
    "ParentProcessId": "process.parent.pid",
    "TargetFilename": "file.path",
    "DestinationIp": "destination.ip",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "SourceIp": "source.ip",
    "SourcePort": "source.port",
}


def _as_mapping(mapping: dict[str, str]) -> dict[str | None, str | list[str]]:
    return {k: v for k, v in mapping.items()}


def _mapping(identifier: str, mapping: dict[str, str], **logsource: str) -> ProcessingItem:
    return ProcessingItem(
        identifier=identifier,
        transformation=FieldMappingTransformation(_as_mapping(mapping)),
        rule_conditions=[LogsourceCondition(**logsource)],
    )


def _prefix_others(identifier: str, prefix: str, mapped_by: str | None, **logsource: str) -> ProcessingItem:
    """``prefix`` before every field name of the log source that is not already a dotted path (nor mapped by the
    item ``mapped_by``)."""
    conditions: list[FieldNameProcessingCondition] = [IncludeFieldCondition(fields=["\\w+\\."], mode="re")]
    if mapped_by is not None:
        conditions.insert(0, FieldNameProcessingItemAppliedCondition(mapped_by))
    return ProcessingItem(
        identifier=identifier,
        transformation=AddFieldnamePrefixTransformation(prefix),
        field_name_conditions=conditions,
        field_name_condition_negation=True,
        field_name_condition_linking=any,  # negated: a name matching none of the conditions
        rule_conditions=[LogsourceCondition(**logsource)],
    )


def soc_windows() -> ProcessingPipeline:
    """Sigma Windows field names to the Winlogbeat layout of ``collectors/logs/evtx.py``."""
    return ProcessingPipeline(
        name="soc: Windows event logs (Winlogbeat layout, raw event data)",
        priority=20,
        items=[
            _mapping("soc_windows_system_fields", WINDOWS_FIELDS, product="windows"),
            # every name not mapped above is an event data field
            _prefix_others("soc_windows_event_data", "winlog.event_data.", "soc_windows_system_fields",
                           product="windows"),
        ],
    )


def soc_ecs() -> ProcessingPipeline:
    """Sigma taxonomy of Linux, web, proxy, DNS, firewall and network rules to ECS."""
    return ProcessingPipeline(
        name="soc: Sigma taxonomy to ECS (Linux, web, proxy, DNS, firewall, network)",
        priority=20,
        items=[
            _mapping("soc_ecs_webserver", _HTTP_FIELDS, category="webserver"),
            _mapping("soc_ecs_proxy", _HTTP_FIELDS, category="proxy"),
            _mapping("soc_ecs_dns", _DNS_FIELDS, category="dns"),
            _mapping("soc_ecs_firewall", _FLOW_FIELDS, category="firewall"),
            _mapping("soc_ecs_linux_process", _LINUX_FIELDS, product="linux", category="process_creation"),
            _mapping("soc_ecs_linux_file", _LINUX_FIELDS, product="linux", category="file_event"),
            _mapping("soc_ecs_linux_network", _LINUX_FIELDS, product="linux", category="network_connection"),
            _mapping("soc_ecs_auditd_type", {"type": "auditd.log.record_type"}, product="linux", service="auditd"),
            # auditd keys (a0, exe, key, SYSCALL, ...) as collectors/logs keeps them
            _prefix_others("soc_ecs_auditd", "auditd.log.", None, product="linux", service="auditd"),
        ],
    )


def soc_default() -> ProcessingPipeline:
    """What the engine uses unless told otherwise: both of ours (each only touches its own log sources)."""
    pipeline = soc_windows() + soc_ecs()
    pipeline.name = "soc"
    return pipeline


PIPELINES: dict[str, Callable[[], ProcessingPipeline]] = {
    "soc": soc_default,
    "soc_windows": soc_windows,
    "soc_ecs": soc_ecs,
    **_es_pipelines,
}


def get_pipeline(names: str | list[str] | None) -> ProcessingPipeline:
    """Pipelines by name, chained in the order given (``None`` is our default)."""
    if names is None:
        names = ["soc"]
    if isinstance(names, str):
        names = [names]
    pipeline = ProcessingPipeline()
    for name in names:
        try:
            pipeline = pipeline + PIPELINES[name]()
        except KeyError:
            raise UnknownPipeline(f"unknown pipeline {name!r}: use one of {', '.join(sorted(PIPELINES))}") from None
    return pipeline


# --- Windows log-source routing -------------------------------------------------------------------------------

SYSMON_CATEGORIES: dict[int, tuple[str, ...]] = {
    1: ("process_creation",),
    2: ("file_change",),
    3: ("network_connection",),
    4: ("sysmon_status",),
    5: ("process_termination",),
    6: ("driver_load",),
    7: ("image_load",),
    8: ("create_remote_thread",),
    9: ("raw_access_thread",),
    10: ("process_access",),
    11: ("file_event",),
    13: ("registry_set", "registry_event"),
    14: ("registry_rename", "registry_event"),
    15: ("create_stream_hash",),
    16: ("sysmon_status",),
    17: ("pipe_created",),
    18: ("pipe_created",),
    19: ("wmi_event",),
    20: ("wmi_event",),
    21: ("wmi_event",),
    22: ("dns_query",),
    23: ("file_delete",),
    24: ("clipboard_capture",),
    25: ("process_tampering",),
    26: ("file_delete_detected",),
    27: ("file_block_executable",),
    28: ("file_block_shredding",),
    29: ("file_executable_detected",),
    255: ("sysmon_error",),
}

# (service, event id) -> categories, for the non-Sysmon channels SigmaHQ names by category
SERVICE_EVENT_CATEGORIES: dict[tuple[str, int], tuple[str, ...]] = {
    ("powershell", 4103): ("ps_module",),
    ("powershell", 4104): ("ps_script",),
    ("powershell-classic", 400): ("ps_classic_start",),
    ("powershell-classic", 600): ("ps_classic_provider_start",),
    ("powershell-classic", 800): ("ps_classic_script",),
}


def event_categories(event: Event, logsource: dict[str, Any]) -> tuple[str | None, ...]:
    """The categories an event belongs to: its own, else the ones its Windows channel and event id imply."""
    category = logsource.get("category")
    if category:
        return (category,)
    if logsource.get("product") != "windows":
        return (None,)
    winlog = event.get("winlog") or {}
    try:
        event_id = int(str(winlog.get("event_id")))
    except ValueError:
        return (None,)
    service = logsource.get("service")
    if service == "sysmon":
        if event_id == 12:
            event_type = str((winlog.get("event_data") or {}).get("EventType", "")).lower()
            kind = "registry_delete" if event_type.startswith("delete") else "registry_add"
            return (kind, "registry_event")
        return SYSMON_CATEGORIES.get(event_id, (None,))
    return SERVICE_EVENT_CATEGORIES.get((str(service), event_id), (None,))
