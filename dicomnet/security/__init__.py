"""Security layers that plug between the socket and the protocol engine (PS3.15)."""

from .base import PlainLayer, SecurityLayer

__all__ = ["PlainLayer", "SecurityLayer"]
