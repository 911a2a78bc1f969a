"""Seeded scenarios of a small data center: background traffic among its servers plus one injected attack, written
as a pcap with a labels file beside it.

Each attack is a small class registered by name (``ATTACKS``); a scenario is the background plus one of them.
Background rates follow a daily rhythm (quiet at night, busiest mid-morning); the default start is 09:00 UTC.
"""

from __future__ import annotations

import base64
import ipaddress
import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from lab.labels import AttackLabel, CaptureLabels
from lab.traffic import Capture, flow_key, mac_of

_NS = 1_000_000_000
DEFAULT_START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# --- the data center ------------------------------------------------------------------------------------------
LOCAL_NETS = ("10.10.0.0/16",)
GATEWAY = "10.10.0.1"
WEB, DNS_SERVER, FTP, BASTION, MAIL = "10.10.1.10", "10.10.1.53", "10.10.1.21", "10.10.1.22", "10.10.1.25"
DB, FILES, BACKUP, MONITOR = "10.10.2.20", "10.10.2.40", "10.10.3.30", "10.10.3.40"
APPS = [f"10.10.2.{n}" for n in range(50, 60)]
SERVERS = [WEB, DNS_SERVER, FTP, BASTION, MAIL, DB, FILES, *APPS]
ADMINS = [f"10.10.10.{n}" for n in range(100, 105)]
WORKSTATIONS = [f"10.10.10.{n}" for n in range(100, 130)]
NTP_SERVER = "192.0.2.123"
SITES = ["93.184.216.34", "151.101.1.69", "142.250.72.14", "104.16.132.229", "13.107.42.14"]
INTERNAL_NAMES = ["portal.gov.example", "mail.gov.example", "intranet.gov.example", "db.gov.example",
                  "files.gov.example", "updates.vendor.example", "cdn.vendor.example", "www.example.com",
                  "login.microsoftonline.com", "time.example.net"]


def activity(ts_ns: int) -> float:
    """Share of peak load at this time of day: 0.15 at night, 1.0 around 11:00 UTC."""
    hour = (ts_ns / _NS / 3600) % 24
    return 0.15 + 0.85 * max(0.0, math.sin(math.pi * (hour - 6) / 12)) ** 1.5


class Scene:
    """The capture being built, its random source and the ephemeral ports in use."""

    def __init__(self, seed: int, start_ns: int, duration_ns: int) -> None:
        self.rng = random.Random(seed)
        self.start_ns, self.end_ns = start_ns, start_ns + duration_ns
        self.capture = Capture(GATEWAY, [ipaddress.IPv4Network(n) for n in LOCAL_NETS])

    def port(self) -> int:
        return self.rng.randint(32768, 60999)

    def arrivals(self, per_second: float, start_ns: int | None = None, end_ns: int | None = None) -> list[int]:
        """Times of a Poisson process at ``per_second`` × the daily rhythm."""
        t, end = float(start_ns or self.start_ns), float(end_ns or self.end_ns)
        times: list[int] = []
        while True:
            t += self.rng.expovariate(per_second * activity(int(t))) * _NS
            if t >= end:
                return times
            times.append(int(t))


def background(scene: Scene) -> None:
    """Ordinary work of the data center; no attack flows."""
    rng, cap = scene.rng, scene.capture
    for t in scene.arrivals(0.5):  # citizens on the web portal
        client = f"203.0.113.{rng.randint(1, 254)}"
        cap.tcp(t, client, scene.port(), WEB, 443, [(True, rng.randint(400, 900)), (False, rng.randint(2000, 30000))],
                rtt_ns=rng.randint(20, 80) * 1_000_000)
    for t in scene.arrivals(1.0):  # name lookups from the offices
        cap.dns(t, rng.choice(WORKSTATIONS), scene.port(), DNS_SERVER, rng.choice(INTERNAL_NAMES),
                answer=f"10.10.1.{rng.randint(2, 250)}", txid=rng.randint(0, 65535))
    for t in scene.arrivals(0.3):  # browsing
        cap.tcp(t, rng.choice(WORKSTATIONS), scene.port(), rng.choice(SITES), 443,
                [(True, rng.randint(300, 900)), (False, rng.randint(5000, 60000))], rtt_ns=30_000_000)
    for t in scene.arrivals(0.4):  # applications querying the database
        rounds = [(True, rng.randint(200, 600)), (False, rng.randint(500, 8000))] * rng.randint(1, 3)
        cap.tcp(t, rng.choice(APPS), scene.port(), DB, 5432, rounds, rtt_ns=300_000)
    for t in scene.arrivals(1 / 120):  # administrators to the bastion, and on to the application servers
        cap.tcp(t, rng.choice(ADMINS), scene.port(), BASTION, 22,
                [(False, 41), (True, 41), (True, 1500), (False, 1800), (True, 3000), (False, 20000)])
    for t in scene.arrivals(1 / 60):
        cap.tcp(t, BASTION, scene.port(), rng.choice(APPS), 22,
                [(False, 41), (True, 41), (True, 1500), (False, 1800), (True, 2000), (False, 9000)])
    for t in scene.arrivals(0.05):  # mail in from the internet, and offices reading it
        cap.tcp(t, f"198.18.{rng.randint(0, 255)}.{rng.randint(1, 254)}", scene.port(), MAIL, 25,
                [(False, 200), (True, 100), (False, 50), (True, rng.randint(3000, 40000)), (False, 50)],
                rtt_ns=40_000_000)
    for t in scene.arrivals(0.1):
        cap.tcp(t, rng.choice(WORKSTATIONS), scene.port(), MAIL, 993, [(True, 300), (False, rng.randint(2000, 50000))])
    for t in scene.arrivals(1 / 60):  # backups pull from the servers (rsync daemon)
        cap.tcp(t, BACKUP, scene.port(), rng.choice(SERVERS), 873,
                [(True, 300), (False, rng.randint(500_000, 3_000_000))])
    for t in scene.arrivals(0.15):  # file shares
        cap.tcp(t, rng.choice(WORKSTATIONS), scene.port(), FILES, 445,
                [(True, 300), (False, 300), (True, 500), (False, rng.randint(3000, 30000))])
    for t in scene.arrivals(1 / 100):  # an office uploading reports by FTP, logging in once
        cap.tcp(t, rng.choice(WORKSTATIONS), scene.port(), FTP, 21,
                [(False, 60), (True, 16), (False, 30), (True, 16), (False, 30), (True, rng.randint(2000, 9000)),
                 (False, 24), (True, 6), (False, 14)])
    for t in scene.arrivals(0.25):  # ARP for the gateway
        cap.arp_exchange(t, rng.choice(WORKSTATIONS + SERVERS), GATEWAY)
    # periodic jobs: health checks of every server every 30 s, the DNS server's clock every 64 s
    for offset in range(0, (scene.end_ns - scene.start_ns) // _NS, 30):
        for server in SERVERS:
            t = scene.start_ns + offset * _NS + SERVERS.index(server) * 50_000_000
            cap.tcp(t, MONITOR, scene.port(), server, 443, [(True, 120), (False, 300)], rtt_ns=400_000)
    for offset in range(5, (scene.end_ns - scene.start_ns) // _NS, 64):
        cap.udp(scene.start_ns + offset * _NS, DNS_SERVER, 123, NTP_SERVER, 123, b"\x23" + bytes(47),
                b"\x24" + bytes(47), rtt_ns=20_000_000)


# --- attacks ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Injected:
    """What an attack added: its flows (label keys) and its time span."""

    attacker: str
    victims: list[str]
    start_ns: int
    end_ns: int
    flow_keys: list[str]
    subject: str = ""


class Attack(ABC):
    name: ClassVar[str]
    detector: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def inject(self, scene: Scene, t0: int) -> Injected:
        """Add the attack's frames starting at ``t0``."""


ATTACKS: dict[str, type[Attack]] = {}


def register(cls: type[Attack]) -> type[Attack]:
    ATTACKS[cls.name] = cls
    return cls


def _ports(rng: random.Random, count: int, must: tuple[int, ...]) -> list[int]:
    ports = set(must) | set(rng.sample(range(1, 10000), count - len(must)))
    return rng.sample(sorted(ports), len(ports))


@register
class SynScan(Attack):
    name, detector = "syn_scan", "soc-net-portscan"
    description = "nmap -sS style half-open scan of the web server from the internet"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, t = "198.51.100.7", [], t0
        sport = 41000 + scene.rng.randint(0, 999)
        for port in _ports(scene.rng, 300, (80, 443)):
            open_port = port in (80, 443)
            t = scene.capture.tcp(t, attacker, sport, WEB, port, answer="accept" if open_port else "reset",
                                  close="half", rtt_ns=30_000_000) + 5_000_000
            keys.append(flow_key(attacker, sport, WEB, port, 6))
        return Injected(attacker, [WEB], t0, t, keys)


@register
class ConnectScan(Attack):
    name, detector = "connect_scan", "soc-net-portscan"
    description = "full-connect scan of the database server from a compromised office computer"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, t = "10.10.10.113", [], t0
        for port in _ports(scene.rng, 150, (22, 5432)):
            sport = scene.port()
            open_port = port in (22, 5432)
            t = scene.capture.tcp(t, attacker, sport, DB, port, answer="accept" if open_port else "reset",
                                  close="rst", rtt_ns=400_000) + 10_000_000
            keys.append(flow_key(attacker, sport, DB, port, 6))
        return Injected(attacker, [DB], t0, t, keys)


@register
class UdpScan(Attack):
    name, detector = "udp_scan", "soc-net-portscan"
    description = "UDP scan of the DNS server; closed ports answer ICMP port unreachable"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, t = "198.51.100.9", [], t0
        sport = 53000 + scene.rng.randint(0, 999)
        for port in _ports(scene.rng, 100, (53,)):
            if port == 53:
                scene.capture.dns(t, attacker, sport, DNS_SERVER, "version.bind", qtype="TXT", answer="9.18")
            else:
                scene.capture.udp(t, attacker, sport, DNS_SERVER, port, b"", None)
                scene.capture.port_unreachable(t + 300_000, attacker, sport, DNS_SERVER, port)
                keys.append(flow_key(DNS_SERVER, 0, attacker, 0, 1))
            keys.append(flow_key(attacker, sport, DNS_SERVER, port, 17))
            t += 20_000_000
        return Injected(attacker, [DNS_SERVER], t0, t, sorted(set(keys)))


@register
class HorizontalScan(Attack):
    name, detector = "horizontal_scan", "soc-net-portscan"
    description = "one office computer sweeping SMB (445) across the server network"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, victims, t = "10.10.10.117", [], [], t0
        for n in range(1, 81):
            host = f"10.10.2.{n}"
            sport = scene.port()
            answer = "accept" if host == FILES else "reset" if host in SERVERS else "silent"
            scene.capture.tcp(t, attacker, sport, host, 445, answer=answer, close="rst")
            keys.append(flow_key(attacker, sport, host, 445, 6))
            victims.append(host)
            t += 100_000_000
        return Injected(attacker, victims, t0, t, keys)


@register
class SynFlood(Attack):
    name, detector = "syn_flood", "soc-net-flood"
    description = "SYN flood on the web portal from spoofed internet addresses"

    def inject(self, scene: Scene, t0: int) -> Injected:
        rng, keys, t = scene.rng, [], t0
        for n in range(3000):
            first_octet = rng.choice([45, 77, 89, 112, 185])  # internet space, none of the lab's own ranges
            source = f"{first_octet}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            sport = rng.randint(1024, 65535)
            # the backlog answers the first few hundred, then the server drops the rest
            scene.capture.tcp(t, source, sport, WEB, 443, answer="accept" if n < 256 else "silent", close="abandon")
            keys.append(flow_key(source, sport, WEB, 443, 6))
            t += 1_000_000
        return Injected("spoofed", [WEB], t0, t, keys, subject=WEB)


def _login_attempts(scene: Scene, t0: int, attacker: str, server: str, port: int, attempts: int,
                    dialogue: list[tuple[bool, int]], spacing_ns: int) -> Injected:
    keys, t = [], t0
    for _ in range(attempts):
        sport = scene.port()
        end = scene.capture.tcp(t, attacker, sport, server, port, dialogue, rtt_ns=25_000_000)
        keys.append(flow_key(attacker, sport, server, port, 6))
        t = max(t + spacing_ns, end) + scene.rng.randint(0, spacing_ns // 4)
    return Injected(attacker, [server], t0, t, keys)


@register
class SshBruteForce(Attack):
    name, detector = "ssh_bruteforce", "soc-net-bruteforce"
    description = "SSH password guessing on the bastion from the internet (three passwords per connection)"

    def inject(self, scene: Scene, t0: int) -> Injected:
        dialogue = [(False, 41), (True, 41), (True, 1500), (False, 1100), (True, 48), (False, 500), (True, 100),
                    (False, 52)] + [(True, 150), (False, 60)] * 3
        return _login_attempts(scene, t0, "198.51.100.23", BASTION, 22, 60, dialogue, 1_000_000_000)


@register
class FtpBruteForce(Attack):
    name, detector = "ftp_bruteforce", "soc-net-bruteforce"
    description = "FTP login guessing on the file-transfer server"

    def inject(self, scene: Scene, t0: int) -> Injected:
        dialogue = [(False, 60)] + [(True, 16), (False, 34), (True, 18), (False, 24)] * 3
        return _login_attempts(scene, t0, "198.51.100.41", FTP, 21, 50, dialogue, 700_000_000)


@register
class DnsTunnel(Attack):
    name, detector = "dns_tunnel", "soc-net-dns-tunnel"
    description = "data smuggled out in base32 labels of queries for one domain, TXT answers back"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, t = "10.10.10.121", [], t0
        for n in range(400):
            chunk = base64.b32encode(scene.rng.randbytes(scene.rng.randint(28, 38))).decode().rstrip("=").lower()
            name = f"{chunk[:52]}.{chunk[52:]}.{n:04x}.t.cdn-sync.example" if len(chunk) > 52 else \
                f"{chunk}.{n:04x}.t.cdn-sync.example"
            sport = scene.port()
            scene.capture.dns(t, attacker, sport, DNS_SERVER, name, qtype="TXT",
                              answer=base64.b64encode(scene.rng.randbytes(60)).decode(), txid=n)
            keys.append(flow_key(attacker, sport, DNS_SERVER, 53, 17))
            t += 200_000_000
        return Injected(attacker, [DNS_SERVER], t0, t, keys)


@register
class Beaconing(Attack):
    name, detector = "beaconing", "soc-net-beacon"
    description = "malware on an office computer calling its command server every 20 s with 15% jitter"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, c2, keys, t, last = "10.10.10.108", "203.0.113.66", [], t0, t0
        while t < scene.end_ns - 5 * _NS:
            sport = scene.port()
            last = scene.capture.tcp(t, attacker, sport, c2, 443, [(True, 350), (False, scene.rng.randint(180, 220))],
                                     rtt_ns=60_000_000)
            keys.append(flow_key(attacker, sport, c2, 443, 6))
            t += int(20 * _NS * (1 + scene.rng.uniform(-0.15, 0.15)))
        return Injected(attacker, [c2], t0, last, keys)


@register
class Exfiltration(Attack):
    name, detector = "exfiltration", "soc-net-exfiltration"
    description = "the file server uploading 12 MB to an unknown internet host"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, drop = FILES, "198.51.100.200"
        sport = scene.port()
        end = scene.capture.tcp(t0, attacker, sport, drop, 443, [(True, 600), (False, 4000), (True, 12_000_000)],
                                rtt_ns=50_000_000)
        return Injected(attacker, [drop], t0, end, [flow_key(attacker, sport, drop, 443, 6)])


@register
class ArpSpoof(Attack):
    name, detector = "arp_spoof", "soc-net-arp-spoof"
    description = "an office computer claiming the gateway's address to its neighbours (man in the middle)"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker = "10.10.10.126"
        victims = [w for w in WORKSTATIONS if w != attacker][:10]
        t = t0
        for _ in range(30):
            for victim in victims:
                scene.capture.arp_reply(t, GATEWAY, mac_of(attacker), victim)
                t += 1_000_000
            t += 2 * _NS
        return Injected(attacker, victims, t0, t, [], subject=GATEWAY)


@register
class LateralMovement(Attack):
    name, detector = "lateral_movement", "soc-net-lateral"
    description = "a compromised office computer logging on to a dozen servers over SMB, RDP and SSH"

    def inject(self, scene: Scene, t0: int) -> Injected:
        attacker, keys, victims, t = "10.10.10.111", [], [], t0
        targets = [*APPS, DB, FILES]
        for n, host in enumerate(targets):
            port = (445, 3389, 22)[n % 3]
            sport = scene.port()
            t = scene.capture.tcp(t, attacker, sport, host, port, [(True, 800), (False, 900), (True, 4000),
                                                                    (False, 6000)]) + 6 * _NS
            keys.append(flow_key(attacker, sport, host, port, 6))
            victims.append(host)
        return Injected(attacker, victims, t0, t, keys)


SCENARIOS: tuple[str, ...] = ("baseline", *ATTACKS)


def generate(scenario: str, out_dir: Path, seed: int = 1, duration: float = 300.0,
             start: datetime = DEFAULT_START) -> tuple[Path, CaptureLabels]:
    """Write ``OUT/SCENARIO.pcap`` and ``OUT/SCENARIO.labels.json``; the same seed gives the same bytes."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
    start_ns = int(start.timestamp()) * _NS
    scene = Scene(seed, start_ns, int(duration * _NS))
    background(scene)
    attacks = []
    if scenario != "baseline":
        attack = ATTACKS[scenario]()
        injected = attack.inject(scene, start_ns + int(min(60.0, duration / 5) * _NS))
        attacks.append(AttackLabel(
            attack=scenario, detector=attack.detector, subject=injected.subject or injected.attacker,
            attacker=injected.attacker, victims=injected.victims, start_ns=injected.start_ns,
            end_ns=injected.end_ns, flow_keys=injected.flow_keys, note=attack.description))
    pcap = out_dir / f"{scenario}.pcap"
    scene.capture.write(pcap)
    labels = CaptureLabels(capture=pcap.name, scenario=scenario, seed=seed, start_ns=start_ns,
                           end_ns=max(scene.end_ns, *(a.end_ns for a in attacks)) if attacks else scene.end_ns,
                           attacks=attacks, description="lab data center: background traffic"
                           + (f" plus {scenario}" if attacks else " only"))
    labels.write(out_dir / f"{scenario}.labels.json")
    return pcap, labels
