"""EVTX files from ../shared/evtx become Winlogbeat-style ECS events."""

from pathlib import Path

from collectors.logs.base import Diagnostics
from collectors.logs.evtx import EvtxSource, channel_service, iter_evtx_events


def test_security_logon_layout(evtx_dir: Path) -> None:
    path = evtx_dir / "Lateral Movement" / "LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx"
    events = list(iter_evtx_events(path))
    assert [e["event"]["code"] for e in events] == ["1102", "4624", "4672", "4688", "4688", "4688"]
    logon = events[1]
    assert logon["@timestamp"] == "2019-03-18T11:06:29.911579Z"
    assert logon["event"]["kind"] == "event"
    assert logon["event"]["provider"] == "Microsoft-Windows-Security-Auditing"
    assert logon["winlog"]["event_id"] == 4624
    assert logon["winlog"]["channel"] == "Security"
    assert logon["winlog"]["provider_name"] == "Microsoft-Windows-Security-Auditing"
    assert logon["winlog"]["computer_name"] == "PC01.example.corp"
    assert logon["winlog"]["record_id"] == 432903
    assert logon["host"]["name"] == "PC01.example.corp"
    assert logon["log"]["file"]["path"] == str(path)
    data = logon["winlog"]["event_data"]
    assert data["LogonType"] == "9"
    assert data["LogonProcessName"] == "seclogo"
    assert data["TargetUserName"] == "user01"
    assert data["IpAddress"] == "::1"
    assert logon["soc"]["logsource"] == {"product": "windows", "category": None, "service": "security"}


def test_sysmon_values_are_strings(evtx_dir: Path) -> None:
    events = list(iter_evtx_events(evtx_dir / "UACME_59_Sysmon.evtx", include_original=True))
    assert [e["winlog"]["record_id"] for e in events] == list(range(2164886, 2164893))
    create = events[3]
    assert create["winlog"]["event_id"] == 1
    assert create["soc"]["logsource"]["service"] == "sysmon"
    assert create["winlog"]["event_data"]["ProcessId"] == "18404"
    assert create["winlog"]["event_data"]["ParentCommandLine"] == "Akagi_64.exe  59 cmd.exe"
    assert create["winlog"]["event_data"]["RuleName"] == ""
    assert create["event"]["original"].startswith('{"Event":')


def test_unnamed_data_and_user_data(evtx_dir: Path) -> None:
    crash = list(iter_evtx_events(evtx_dir / "Defense Evasion" / "DE_WinEventLogSvc_Crash_System_7036.evtx"))
    assert crash[0]["winlog"]["event_id"] == 7036  # <EventID Qualifiers="16384">
    assert crash[0]["winlog"]["event_data"]["param1"] == "Windows Error Reporting Service"
    assert crash[0]["winlog"]["event_data"]["param2"] == "running"
    cleared = list(iter_evtx_events(evtx_dir / "Defense Evasion" / "DE_104_system_log_cleared.evtx"))
    assert cleared[0]["winlog"]["event_data"] == {
        "SubjectUserName": "user01",
        "SubjectDomainName": "EXAMPLE",
        "Channel": "System",
    }
    assert cleared[0]["soc"]["logsource"]["service"] == "system"


def test_channel_services() -> None:
    assert channel_service("Microsoft-Windows-Sysmon/Operational") == "sysmon"
    assert channel_service("Microsoft-Windows-PowerShell/Operational") == "powershell"
    assert channel_service("Windows PowerShell") == "powershell-classic"
    assert channel_service("Application") == "application"
    assert channel_service("Microsoft-Windows-TerminalServices-RemoteConnectionManager/Operational") == (
        "terminalservices-remoteconnectionmanager"
    )
    assert channel_service(None) is None


def test_whole_corpus_parses_without_loss(evtx_dir: Path) -> None:
    diag = Diagnostics()
    total = sum(1 for f in sorted(evtx_dir.rglob("*.evtx")) for _ in iter_evtx_events(f, diagnostics=diag))
    assert total == 7455
    assert diag.stats.malformed == {}
    assert diag.stats.logsources["windows/-/sysmon"] == 2452
    assert diag.stats.logsources["windows/-/security"] == 1577
    assert diag.stats.logsources["windows/-/powershell"] == 7
    assert diag.stats.logsources["windows/-/powershell-classic"] == 4


def test_damaged_files_are_counted_not_fatal(evtx_dir: Path, tmp_path: Path) -> None:
    data = bytearray((evtx_dir / "UACME_59_Sysmon.evtx").read_bytes())
    data[0x1000 + 0x200 + 300 : 0x1000 + 0x200 + 900] = b"\xab" * 600  # the first chunk's string table
    damaged = tmp_path / "damaged.evtx"
    damaged.write_bytes(data)
    not_evtx = tmp_path / "text.evtx"
    not_evtx.write_text("hello\n")
    dead = tmp_path / "dead.jsonl"
    diag = Diagnostics(dead_letter=dead)
    assert list(iter_evtx_events(damaged, diagnostics=diag)) == []
    assert list(iter_evtx_events(not_evtx, diagnostics=diag)) == []
    diag.close()
    assert diag.stats.malformed == {"evtx_chunk": 1, "evtx_file": 1}
    assert len(dead.read_text().splitlines()) == 2


def test_source_poll_until_done(evtx_dir: Path) -> None:
    source = EvtxSource([evtx_dir / "UACME_59_Sysmon.evtx"])
    assert len(source.poll(max_events=5)) == 5
    assert len(source.poll(max_events=5)) == 2
    assert source.poll() == [] and source.done


def test_source_resumes_after_last_record(evtx_dir: Path) -> None:
    path = evtx_dir / "UACME_59_Sysmon.evtx"
    first = EvtxSource([path])
    taken = []
    for event in first:
        taken.append(event["winlog"]["record_id"])
        if len(taken) == 3:
            break
    second = EvtxSource([path])
    second.restore(first.position())
    assert [e["winlog"]["record_id"] for e in second] == list(range(2164889, 2164893))
