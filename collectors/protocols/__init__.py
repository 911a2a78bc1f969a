"""Protocol metadata from packets: DNS, HTTP/1.x and TLS ClientHello parsed from PacketBatch payloads into ECS
events (``dns.*``, ``http.*``/``url.*``, ``tls.*``) with their Sigma log source, plus a time-boxed tshark runner
for dissection beyond our own parsers."""

from collectors.protocols.base import PARSERS, ExtractorStats, Incomplete, Malformed, ProtocolParser
from collectors.protocols.extractor import ProtocolExtractor, extract_file

__all__ = [
    "PARSERS",
    "ExtractorStats",
    "Incomplete",
    "Malformed",
    "ProtocolExtractor",
    "ProtocolParser",
    "extract_file",
]
