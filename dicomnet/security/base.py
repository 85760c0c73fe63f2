"""The pluggable security layer between a socket and the protocol engine.

The selector loop never reads or writes a socket itself: it asks the connection's
``SecurityLayer``. ``PlainLayer`` passes bytes straight through; a TLS layer (PS3.15
annex B) drives ``ssl.MemoryBIO`` behind the same five methods, so adding it needs no
change to the loop. Every method is non-blocking: ``BlockingIOError`` means "try again
when the socket is ready", and ``wants_write`` tells the loop which readiness to wait for.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod

# Linux caps one sendmsg at IOV_MAX (1024) buffers; stay well below.
MAX_BUFFERS_PER_SEND = 512


class SecurityLayer(ABC):
    """One connection's byte transport, possibly transformed (encrypted)."""

    sock: socket.socket
    independent_directions = False
    """True when ``recv_into`` may run on one thread while ``send`` runs on another (no
    state shared between reading and writing): the loop then reads without the lock a
    sender holds while it writes."""

    def attach(self, sock: socket.socket, server_side: bool) -> None:
        """Bind the layer to a connected, non-blocking socket."""
        self.sock = sock
        self.server_side = server_side

    @abstractmethod
    def handshake(self) -> bool:
        """Advance the security handshake; True once data may flow. Raises on failure."""

    @property
    def wants_write(self) -> bool:
        """True while the layer itself has bytes to push (handshake, alerts)."""
        return False

    @abstractmethod
    def recv_into(self, buffer: memoryview) -> int:
        """Read application bytes into ``buffer``; 0 means the peer closed."""

    @abstractmethod
    def send(self, buffers: list[memoryview]) -> int:
        """Write application bytes from ``buffers`` (in order); return how many were taken."""

    def flush(self) -> None:  # noqa: B027 (optional: a layer that holds no bytes)
        """Write bytes the layer holds itself (``wants_write``); raises ``OSError``."""

    def pending(self) -> int:
        """Application bytes already decoded inside the layer, readable without the socket."""
        return 0

    def close(self) -> None:
        self.sock.close()


class PlainLayer(SecurityLayer):
    """No security: bytes pass through unchanged (``DicomNetSecurityMode.None_``)."""

    independent_directions = True  # the kernel orders a socket's two directions itself

    def handshake(self) -> bool:
        return True

    def recv_into(self, buffer: memoryview) -> int:
        return self.sock.recv_into(buffer)

    def send(self, buffers: list[memoryview]) -> int:
        return self.sock.sendmsg(buffers[:MAX_BUFFERS_PER_SEND])
