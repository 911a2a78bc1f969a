"""ARP spoofing: an address answered for by a new MAC address, or one MAC address answering for several
addresses, the two traces of ARP cache poisoning (a man in the middle claiming the gateway).

The detector keeps the first MAC each address was announced with (ARP sender fields, requests and replies) for
the life of the process; an announcement with another MAC is a *change*. ARP frames are read from the packet
batch (the reader keeps them with ``ethertype == 0x0806`` and ``l3_offset`` at the ARP header).
Thresholds and the window are in ``detectors.arp_spoof`` of soc.yaml.
"""

from __future__ import annotations

import ipaddress

import numpy as np
from pydantic import Field

from detectors.base import PacketDetector
from detectors.network.timewindows import (
    NS,
    SAMPLE,
    Columns,
    Finding,
    FlowWindows,
    WindowJudge,
    WindowSettings,
    group_rows,
    in_networks,
    ip_words,
    sorted_ips,
)
from soc.core.model import Alert, PacketBatch, Rule, Severity, Technique, ip_to_str
from soc.core.plugins import plugin

RULE = Rule(
    id="soc-net-arp-spoof",
    name="ARP spoofing",
    ruleset="soc-network",
    description="An IPv4 address was announced by a new MAC address, or one MAC address announced several.",
    reference="https://attack.mitre.org/techniques/T1557/002/",
)
TECHNIQUE = Technique("T1557.002", "Adversary-in-the-Middle: ARP Cache Poisoning", "TA0006", "Credential Access")
_ARP = 0x0806
_ARP_LEN = 28  # Ethernet/IPv4 ARP: htype, ptype, hlen, plen, op, sha, spa, tha, tpa
_MAPPED = np.array([0] * 10 + [0xFF, 0xFF], dtype=np.uint8)


class ArpSpoofSettings(WindowSettings):
    window_seconds: float = Field(60.0, gt=0)
    min_changes: int = Field(1, ge=1, description="announcements of an address by a new MAC that are reported")
    max_addresses_per_mac: int = Field(1, ge=1, description="addresses one MAC may announce (raise for routers "
                                       "with several addresses on the segment, or list their MACs below)")
    multi_address_macs: list[str] = Field(default_factory=list, description="MACs allowed to announce several")


def mac_text(value: int) -> str:
    return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))


@plugin("arp_spoof", settings=ArpSpoofSettings)
class ArpSpoofDetector(WindowJudge, PacketDetector):
    rule, technique = RULE, TECHNIQUE
    rule_id = RULE.id

    def __init__(self, settings: ArpSpoofSettings | None = None) -> None:
        self.settings = settings or ArpSpoofSettings()
        self.windows = FlowWindows(int(self.settings.window_seconds * NS))
        self.bindings: dict[int, int] = {}  # IPv4 address → the first MAC that announced it
        self._allowed = {int(m.replace(":", "").replace("-", ""), 16) for m in self.settings.multi_address_macs}

    def observe_packets(self, batch: PacketBatch) -> list[Alert]:
        if not len(batch):
            return []
        end = batch.data_offset + batch.caplen
        rows = np.flatnonzero((batch.ethertype == _ARP) & (batch.l3_offset + _ARP_LEN <= end))
        arp = batch.buffer[batch.l3_offset[rows, None] + np.arange(_ARP_LEN)]
        ipv4_over_ethernet = (arp[:, 4] == 6) & (arp[:, 5] == 4)
        rows, arp = rows[ipv4_over_ethernet], arp[ipv4_over_ethernet]
        mac = (arp[:, 8:14].astype(np.uint64) << (8 * np.arange(5, -1, -1, dtype=np.uint64))).sum(axis=1)
        spa = arp[:, 14:18].astype(np.uint64) @ (np.uint64(256) ** np.arange(3, -1, -1, dtype=np.uint64))
        announced = spa != 0  # 0.0.0.0 is an address probe (RFC 5227), not a claim
        previous = np.zeros(len(rows), dtype=np.uint64)
        first, pairs = group_rows(spa, mac)
        for p in np.argsort(first).tolist():  # in order of appearance, so the first binding is the genuine one
            i = int(first[p])
            if not announced[i]:
                continue
            ip, hw = int(spa[i]), int(mac[i])
            known = self.bindings.setdefault(ip, hw)
            if known != hw:
                previous[pairs == p] = known
        keep = announced
        if self.settings.ignore_sources:
            keep &= ~in_networks(_mapped(arp[:, 14:18]), self.settings.ignore_sources)
        ts = batch.ts_ns[rows][keep]
        zeros = np.zeros(int(keep.sum()), dtype=np.uint16)
        self.windows.add({"first_ts_ns": ts, "last_ts_ns": ts, "src_ip": _mapped(arp[keep, 14:18]),
                          "dst_ip": _mapped(arp[keep, 24:28]), "src_port": zeros, "dst_port": zeros,
                          "protocol": zeros.astype(np.uint8), "mac": mac[keep], "previous": previous[keep]},
                         int(batch.ts_ns.max()))
        return self._alerts(self.windows.closed())

    def judge(self, columns: Columns) -> list[Finding]:
        return self._changes(columns) + self._shared(columns)

    def _owner(self, mac: int, besides: str) -> str | None:
        """The address this MAC announced first, if another than ``besides``: who the spoofer really is."""
        owners = sorted(ip for ip, hw in self.bindings.items() if hw == mac)
        names = [str(ipaddress.IPv4Address(ip)) for ip in owners]
        return next((n for n in names if n != besides), None)

    def _changes(self, columns: Columns) -> list[Finding]:
        changed = np.flatnonzero(columns["previous"] != 0)
        if not len(changed):
            return []
        first, groups = group_rows(ip_words(columns["src_ip"][changed]))
        findings = []
        for g in range(len(first)):
            rows = changed[groups == g]
            if len(rows) < self.settings.min_changes:
                continue
            address = ip_to_str(columns["src_ip"][rows[0]])
            new_macs = sorted({mac_text(int(m)) for m in columns["mac"][rows]})
            genuine = mac_text(int(columns["previous"][rows[0]]))
            spoofer = self._owner(int(columns["mac"][rows[0]]), address)
            victims = sorted_ips(columns["dst_ip"][rows])
            findings.append(Finding(
                subject=address, source=spoofer, destination=None, related=[address, *victims[:SAMPLE]],
                severity=Severity.HIGH if len(rows) >= 5 else Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=(f"{address} (known at {genuine}) announced {len(rows)} time(s) by {', '.join(new_macs)}"
                         + (f" ({spoofer})" if spoofer else "") + f" to {len(victims)} host(s)"),
                ecs={"source": {"mac": new_macs[0]}},
                evidence={"kind": "changed", "address": address, "known_mac": genuine, "new_macs": new_macs,
                          "announcements": len(rows), "spoofer_ip": spoofer, "victims": victims[:SAMPLE]},
            ))
        return findings

    def _shared(self, columns: Columns) -> list[Finding]:
        s = self.settings
        first, groups = group_rows(columns["mac"])
        findings = []
        for g in range(len(first)):
            mac = int(columns["mac"][first[g]])
            rows = np.flatnonzero(groups == g)
            addresses = sorted_ips(columns["src_ip"][rows])
            if len(addresses) <= s.max_addresses_per_mac or mac in self._allowed:
                continue
            if (columns["previous"][rows] != 0).any():
                continue  # already reported as changes of the addresses it took over
            findings.append(Finding(
                subject=mac_text(mac), related=addresses[:SAMPLE], severity=Severity.MEDIUM,
                first_ns=int(columns["first_ts_ns"][rows].min()), last_ns=int(columns["last_ts_ns"][rows].max()),
                count=len(rows),
                message=f"{mac_text(mac)} announced {len(addresses)} addresses: {', '.join(addresses[:SAMPLE])}",
                ecs={"source": {"mac": mac_text(mac)}},
                evidence={"kind": "shared", "mac": mac_text(mac), "addresses": addresses[:SAMPLE],
                          "announcements": len(rows), "victims": sorted_ips(columns["dst_ip"][rows])[:SAMPLE]},
            ))
        return findings


def _mapped(ipv4: np.ndarray) -> np.ndarray:
    """(n, 4) IPv4 bytes to the (n, 16) IPv4-mapped form the rest of the engine uses."""
    return np.hstack([np.broadcast_to(_MAPPED, (len(ipv4), 12)), ipv4]).astype(np.uint8)
