"""tshark and pyshark under a time budget: a run that cannot finish is cut, keeps its rows and says where."""

from __future__ import annotations

from pathlib import Path

from collectors.protocols.budget import pyshark_packets, tshark_fields

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
FULL_MIX = SHARED / "pcaps" / "throughput" / "ordinary_mix.pcap"
EXFIL = SHARED / "pcaps" / "attacks" / "ntop__dns_exfiltration.pcap"


def test_tshark_within_budget_is_complete() -> None:
    result = tshark_fields(EXFIL, ["dns.id"], "dns", budget_s=120)
    assert result.complete
    assert len(result.rows) == 300
    assert result.last_frame == 300
    assert result.rows[0] == ["1", "0x391d"]


def test_tshark_over_budget_is_cut_and_keeps_rows() -> None:
    # the 526k-packet mix takes tshark minutes (one VNC trace in it stalls the dissector); 3 s cannot finish it
    result = tshark_fields(FULL_MIX, ["frame.len"], budget_s=3)
    assert not result.complete
    assert result.cut is not None
    assert result.cut.startswith("budget of 3 s spent; stopped after frame ")
    assert f"({len(result.rows)} rows kept) of a {FULL_MIX.stat().st_size}-byte capture" in result.cut
    assert all(row[0] == str(i + 1) for i, row in enumerate(result.rows))


def test_tshark_error_is_reported() -> None:
    result = tshark_fields(EXFIL, ["no.such.field"], budget_s=60)
    assert not result.complete
    assert result.cut is None
    assert result.error is not None and result.error.startswith("tshark exited with")


def test_pyshark_over_budget_is_cut() -> None:
    result = pyshark_packets(FULL_MIX, lambda packet: packet.highest_layer, budget_s=3)
    assert result.cut is not None and result.cut.startswith("budget of 3 s spent; stopped after frame ")
    assert result.error is None
    assert len(result.rows) == result.last_frame


def test_pyshark_within_budget_is_complete() -> None:
    result = pyshark_packets(EXFIL, lambda packet: packet.dns.qry_name, "dns", budget_s=120)
    assert result.complete
    assert len(result.rows) == 300
    assert result.rows[0].startswith("dnscat.546b03f5")
