"""Packet collectors: capture files (pcap, pcapng) and live taps become PacketBatch arrays."""

from collectors.packets.reader import CaptureReader, CaptureStats

__all__ = ["CaptureReader", "CaptureStats"]
