"""The full SigmaHQ Windows rule set on EVTX samples named after the technique they show: the matches (rule title ->
count) were checked by hand to fit the technique and are kept as regression tests; the index must never lose a
match the naive loop finds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from collectors.logs.evtx import iter_evtx_events
from detectors.sigma import RuleSet, SigmaEngine
from soc.core.model import Alert, Severity

EVTX = Path(__file__).resolve().parents[2] / ".." / "shared" / "evtx"

EXPECTED: dict[str, dict[str, int]] = {
    "Credential Access/CA_DCSync_4662.evtx": {
        "Active Directory Replication from Non Machine Account - DcSync Indicator": 3,
    },
    "Credential Access/sysmon_10_11_lsass_memdump.evtx": {
        "LSASS Process Memory Dump Files": 2,
        "LSASS Memory Access by Tool With Dump Keyword In Name": 1,
        "Potential Credential Dumping Activity Via LSASS": 2,
        "Suspicious Process Access to LSASS with Dbgcore/Dbghelp DLLs": 1,
        "LSASS Process Memory Dump Creation Via Taskmgr.EXE": 1,
    },
    "Credential Access/sysmon_10_1_memdump_comsvcs_minidump.evtx": {
        "Process Memory Dump Via Comsvcs.DLL": 1,
        "Potentially Suspicious Rundll32 Activity": 1,
        "WmiPrvSE Spawned A Process": 1,
        "Suspicious WmiPrvSE Child Process": 1,
        "Uncommon Process Access Rights For Target Image": 1,
    },
    "Credential Access/Powershell_4104_MiniDumpWriteDump_Lsass.evtx": {
        "Malicious PowerShell Keywords": 1,
        "Suspicious Process Discovery With Get-Process": 1,
        "PowerShell Get-Process LSASS in ScriptBlock": 1,
    },
    "Defense Evasion/DE_1102_security_log_cleared.evtx": {"Security Eventlog Cleared": 1},
    "Defense Evasion/DE_UAC_Disabled_Sysmon_12_13.evtx": {"UAC Disabled": 1},
    "Discovery/dicovery_4661_net_group_domain_admins_target.evtx": {
        "Security Eventlog Cleared": 1,
        "AD Privileged Users or Groups Reconnaissance": 6,
        "Reconnaissance Activity": 6,
        "Password Policy Enumerated": 8,
    },
    "Execution/exec_persist_rundll32_mshta_scheduledtask_sysmon_1_3_11.evtx": {
        "Wscript Shell Run In CommandLine": 2,
        "Mshtml.DLL RunHTMLApplication Suspicious Usage": 2,
        "Rundll32 Execution With Uncommon DLL Extension": 1,
        "Remotely Hosted HTA File Executed Via Mshta.EXE": 1,
        "MSHTA Execution with Suspicious File Extensions": 1,
        "Windows Shell/Scripting Processes Spawning Suspicious Programs": 2,
        "Scheduled Task Creation Via Schtasks.EXE": 1,
        "Suspicious Command Patterns In Scheduled Task Creation": 1,
    },
    "Lateral Movement/LM_4624_mimikatz_sekurlsa_pth_source_machine.evtx": {
        "Security Eventlog Cleared": 1,
        "Successful Overpass the Hash Attempt": 1,
        "Pass the Hash Activity 2": 1,
        "Outgoing Logon with New Credentials": 1,
    },
    "Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx": {
        "HackTool - CrackMapExec Execution Patterns": 3,
        "HackTool - Potential Impacket Lateral Movement Activity": 3,
        "Suspicious Redirection to Local Admin Share": 3,
        "WmiPrvSE Spawned A Process": 3,
        "Whoami.EXE Execution With Output Option": 1,
        "Local Accounts Discovery": 1,
        "Enumerate All Information With Whoami.EXE": 1,
    },
    "Lateral Movement/remote_file_copy_system_proc_file_write_sysmon_11.evtx": {
        "PsExec Service File Creation": 1,
        "PsExec Service Execution": 1,
    },
    "Persistence/DACL_DCSync_Right_Powerview_ Add-DomainObjectAcl.evtx": {
        "Security Eventlog Cleared": 1,
        "Powerview Add-DomainObjectAcl DCSync AD Extend Right": 18,
    },
}


@pytest.fixture(scope="module")
def engine(windows_rules: RuleSet) -> SigmaEngine:
    return SigmaEngine(windows_rules.rules)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_sample_matches(engine: SigmaEngine, sample: str) -> None:
    found: Counter[str] = Counter()
    for event in iter_evtx_events(EVTX / sample):
        found.update(rule.title for rule in engine.match(event))
    assert dict(found) == EXPECTED[sample]


def test_index_loses_nothing(windows_rules: RuleSet) -> None:
    """Every sample, every event: the indexed engine and the naive loop (routing only) agree exactly."""
    indexed, naive = SigmaEngine(windows_rules.rules), SigmaEngine(windows_rules.rules, naive=True)
    events = total = 0
    for path in sorted(EVTX.rglob("*.evtx")):
        for event in iter_evtx_events(path):
            events += 1
            got = [r.id for r in indexed.match(event)]
            assert got == [r.id for r in naive.match(event)], (path.name, event["winlog"]["record_id"])
            total += len(got)
    assert events == 7455
    assert total == 940


def test_alert_from_log_cleared(engine: SigmaEngine) -> None:
    sample = EVTX / "Defense Evasion" / "DE_1102_security_log_cleared.evtx"
    alerts: list[Alert] = [a for event in iter_evtx_events(sample) for a in engine.process(event)]
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.rule.name == "Security Eventlog Cleared"
    assert alert.rule.id == "d99b79d2-0a6f-4f46-ad8b-260b6e17f982"
    assert alert.rule.ruleset == "sigma"
    assert alert.severity == Severity.HIGH
    # SigmaHQ tags it with ATT&CK v18 names: the technique keeps its id, the new tactic its name
    assert [(t.id, t.tactic_id, t.tactic_name) for t in alert.techniques] == [("T1685.005", "", "Defense Impairment")]
    assert alert.group_key == "PC01.example.corp"
    assert alert.first_seen == "2019-03-19T23:35:07.524202Z"
    assert alert.ecs["winlog"] == {
        "channel": "Security",
        "event_id": 1102,
        "provider_name": "Microsoft-Windows-Eventlog",
        "computer_name": "PC01.example.corp",
        "record_id": 452811,
    }
    assert alert.evidence["events"][0]["record_id"] == 452811
    assert alert.to_ecs()["threat"]["technique"]["id"] == ["T1685.005"]
