"""Network detectors: windowed statistics over flow batches (scans, floods, brute force, ...)."""

from detectors.network.adminshare import AdminShareDetector, AdminShareSettings
from detectors.network.arpspoof import ArpSpoofDetector, ArpSpoofSettings
from detectors.network.beacon import BeaconDetector, BeaconSettings
from detectors.network.bruteforce import BruteForceDetector, BruteForceSettings
from detectors.network.dnstunnel import DnsTunnelDetector, DnsTunnelSettings
from detectors.network.exfiltration import ExfiltrationDetector, ExfiltrationSettings
from detectors.network.flood import FloodDetector, FloodSettings
from detectors.network.lateral import LateralMovementDetector, LateralSettings
from detectors.network.portscan import PortScanDetector, PortScanSettings

__all__ = [
    "AdminShareDetector",
    "AdminShareSettings",
    "ArpSpoofDetector",
    "ArpSpoofSettings",
    "BeaconDetector",
    "BeaconSettings",
    "BruteForceDetector",
    "BruteForceSettings",
    "DnsTunnelDetector",
    "DnsTunnelSettings",
    "ExfiltrationDetector",
    "ExfiltrationSettings",
    "FloodDetector",
    "FloodSettings",
    "LateralMovementDetector",
    "LateralSettings",
    "PortScanDetector",
    "PortScanSettings",
]
