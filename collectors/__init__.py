"""Packet, flow and log collectors: the outside world becomes events."""
