"""Network detectors: windowed statistics over flow batches (scans, floods, brute force, ...)."""

from detectors.network.portscan import PortScanDetector, PortScanSettings

__all__ = ["PortScanDetector", "PortScanSettings"]
