"""TLS (PS3.15 annex B) as a ``SecurityLayer``: ``ssl.SSLObject`` over two memory BIOs.

The socket carries only ciphertext, moved by this layer between the socket and the
BIOs; the ``ssl`` module never touches the socket, so the layer works over any byte
stream and the loop drives it like any other (handshake, alerts and close_notify are
bytes the loop writes when the socket takes them). Records read from the socket but not
yet decrypted count as ``pending``: the loop reads them without waiting for the socket
to become readable again (where they would otherwise sit for ever).

Failures become ``TlsError`` with the specific LEADTOOLS ``DicomExceptionCode``
(``tls_error_code``) and a sentence saying what was wrong.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable

from ..errors import DicomExceptionCode as Code
from .base import SecurityLayer

# Ciphertext taken from the socket per read: many records, one system call.
_READ_CHUNK = 256 << 10
# Plaintext encrypted per send. Small enough that the peer decrypts the first records of
# a message while the rest is being encrypted (with 1 MiB, a 0.5 MB instance was
# encrypted whole before its first byte left: 20-30% fewer instances per second), large
# enough that a send is still eight records and one system call.
_WRITE_CHUNK = 128 << 10

# OpenSSL reasons (of received alerts and local checks) and their LEADTOOLS codes.
_MALFORMED_HANDSHAKE = (Code.DecodeError, "the peer sent a malformed TLS handshake message")
_REASONS: dict[str, tuple[Code, str]] = {
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": (
        Code.CertificateExpired,
        "the peer says our certificate has expired",
    ),
    "SSLV3_ALERT_BAD_CERTIFICATE": (Code.BadCertificate, "the peer refused our certificate"),
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": (
        Code.UnsupportedCertificate,
        "the peer cannot use our certificate",
    ),
    "SSLV3_ALERT_CERTIFICATE_REVOKED": (
        Code.CertificateRevoked,
        "the peer says our certificate is revoked",
    ),
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": (
        Code.CertificateUnknown,
        "the peer refused our certificate",
    ),
    "TLSV1_ALERT_UNKNOWN_CA": (Code.UnknownCa, "the peer does not trust the CA of our certificate"),
    "SSLV3_ALERT_HANDSHAKE_FAILURE": (
        Code.HandshakeFailure,
        "the peer found no acceptable security parameters (or wanted a certificate)",
    ),
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": (
        Code.HandshakeFailure,
        "the peer requires a client certificate and we sent none",
    ),
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": (
        Code.HandshakeFailure,
        "the peer sent no certificate and one is required",
    ),
    "NO_SHARED_CIPHER": (Code.HandshakeFailure, "no cipher suite in common with the peer"),
    "NO_SUITABLE_SIGNATURE_ALGORITHM": (
        Code.HandshakeFailure,
        "no signature algorithm in common with the peer",
    ),
    "TLSV1_ALERT_PROTOCOL_VERSION": (Code.ProtocolVersion, "the peer refused our TLS versions"),
    "UNSUPPORTED_PROTOCOL": (
        Code.ProtocolVersion,
        "the peer offered only TLS versions this profile forbids",
    ),
    "NO_PROTOCOLS_AVAILABLE": (Code.ProtocolVersion, "no TLS version is allowed by these settings"),
    "WRONG_VERSION_NUMBER": (Code.UnexpectedMessage, "the peer does not speak TLS (plain DICOM?)"),
    "UNKNOWN_PROTOCOL": (Code.UnexpectedMessage, "the peer does not speak TLS"),
    "HTTP_REQUEST": (Code.UnexpectedMessage, "the peer sent HTTP, not TLS"),
    "RECORD_LAYER_FAILURE": (
        Code.UnexpectedMessage,
        "the peer sent bytes that are not TLS records",
    ),
    "UNEXPECTED_MESSAGE": (Code.UnexpectedMessage, "the peer sent a TLS message out of order"),
    "SSLV3_ALERT_UNEXPECTED_MESSAGE": (
        Code.UnexpectedMessage,
        "the peer received a TLS message out of order",
    ),
    "EXCESSIVE_MESSAGE_SIZE": _MALFORMED_HANDSHAKE,
    "LENGTH_TOO_SHORT": _MALFORMED_HANDSHAKE,
    "LENGTH_MISMATCH": _MALFORMED_HANDSHAKE,
    "BAD_PACKET_LENGTH": _MALFORMED_HANDSHAKE,
    "PACKET_LENGTH_TOO_LONG": (Code.RecordOverflow, "the peer sent a TLS record that is too long"),
    "ENCRYPTED_LENGTH_TOO_LONG": (
        Code.RecordOverflow,
        "the peer sent a TLS record that is too long",
    ),
    "DECRYPTION_FAILED_OR_BAD_RECORD_MAC": (
        Code.BadRecordMac,
        "a TLS record failed its integrity check",
    ),
    "TLSV1_ALERT_DECODE_ERROR": (Code.DecodeError, "the peer could not decode our TLS message"),
    "TLSV1_ALERT_DECRYPT_ERROR": (Code.DecryptError, "the peer could not verify our handshake"),
    "SSLV3_ALERT_ILLEGAL_PARAMETER": (
        Code.IllegalParameter,
        "the peer found an illegal handshake parameter",
    ),
    "TLSV1_ALERT_ACCESS_DENIED": (Code.AccessDenied, "the peer denied access"),
    "TLSV1_ALERT_INSUFFICIENT_SECURITY": (
        Code.InsufficientSecurity,
        "the peer wants stronger cipher suites",
    ),
    "TLSV1_ALERT_INTERNAL_ERROR": (Code.InternalError, "the peer reported an internal TLS error"),
    "TLSV1_ALERT_USER_CANCELLED": (Code.UserCanceled, "the peer cancelled the handshake"),
    "NO_RENEGOTIATION": (Code.NoRenegotiation, "the peer asked for a renegotiation"),
    "UNEXPECTED_EOF_WHILE_READING": (
        Code.NetConnectionReset,
        "the peer closed the connection without close_notify",
    ),
}
_X509_FIRST, _X509_LAST = 2, 32  # X509_V_ERR_* numbers mapped to codes 160..190
_X509_APPLICATION_VERIFICATION = 50


class TlsError(OSError):
    """A TLS failure: ``code`` is the LEADTOOLS code, the message says what was wrong."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.code.name})"


def tls_error_code(exc: ssl.SSLError) -> tuple[Code, str]:
    """The LEADTOOLS code of an ``ssl`` error and a sentence for the log."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        number = exc.verify_code
        if _X509_FIRST <= number <= _X509_LAST:
            code = Code(158 + number)
        elif number == _X509_APPLICATION_VERIFICATION:
            code = Code.ApplicationVerification
        else:
            code = Code.CertificateVerifyFailed
        return code, f"the peer's certificate failed verification: {exc.verify_message}"
    if isinstance(exc, ssl.SSLEOFError):
        return Code.NetConnectionReset, "the peer closed the connection in the middle of TLS"
    reason = exc.reason or ""
    known = _REASONS.get(reason)
    if known is not None:
        return known
    return Code.NetSecurityBreach, f"TLS failed: {exc.reason or exc}"


VerifyHook = Callable[[ssl.SSLObject], None]
"""Called once the handshake is done, before data flows; raises ``TlsError`` to refuse."""


class TlsLayer(SecurityLayer):
    """One TLS connection over a non-blocking socket."""

    def __init__(self, context: ssl.SSLContext, on_handshake: VerifyHook | None = None) -> None:
        self.context = context
        self.on_handshake = on_handshake
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl: ssl.SSLObject | None = None
        self._unsent = memoryview(b"")  # ciphertext the socket did not take yet
        self._eof = False
        # True while the incoming BIO holds only part of a record: nothing is readable
        # until the socket brings the rest.
        self._starved = False

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        return self._ssl

    def attach(self, sock: socket.socket, server_side: bool) -> None:
        super().attach(sock, server_side)
        self._ssl = self.context.wrap_bio(self._incoming, self._outgoing, server_side=server_side)

    def _object(self) -> ssl.SSLObject:
        if self._ssl is None:
            raise TlsError(Code.TLSInternalError, "the TLS layer is not attached")
        return self._ssl

    # -- ciphertext to and from the socket ---------------------------------------------

    def _fill(self) -> None:
        """Move ciphertext from the socket into the incoming BIO (BlockingIOError when
        there is none)."""
        try:
            data = self.sock.recv(_READ_CHUNK)
        except (BlockingIOError, InterruptedError):
            self._starved = True
            raise
        self._starved = False
        if not data:
            self._eof = True
            self._incoming.write_eof()
            return
        self._incoming.write(data)

    def flush(self) -> None:
        """Write what TLS produced (records, alerts) as far as the socket takes it."""
        if self._outgoing.pending:
            produced = self._outgoing.read()
            if self._unsent:
                produced = bytes(self._unsent) + produced
            self._unsent = memoryview(produced)
        while self._unsent:
            try:
                sent = self.sock.send(self._unsent)
            except (BlockingIOError, InterruptedError):
                return
            self._unsent = self._unsent[sent:]

    @property
    def wants_write(self) -> bool:
        return bool(self._unsent) or self._outgoing.pending > 0

    # -- SecurityLayer -----------------------------------------------------------------

    def handshake(self) -> bool:
        tls = self._object()
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_quietly()
                if self._eof:
                    raise TlsError(
                        Code.NetConnectionReset,
                        "the peer closed the connection during the TLS handshake",
                    ) from None
                try:
                    self._fill()
                except (BlockingIOError, InterruptedError):
                    return False
            except ssl.SSLError as exc:
                self._flush_quietly()  # the alert that tells the peer why
                code, message = tls_error_code(exc)
                raise TlsError(code, message) from exc
        self._flush_quietly()
        if self.on_handshake is not None:
            self.on_handshake(tls)
        return True

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except OSError:
            pass  # a reset peer: the next read reports it

    def recv_into(self, buffer: memoryview) -> int:
        """Decrypt into ``buffer`` every record already at hand (one TLS read gives one
        record, 16 kB at most: a large read must not cost the loop a turn per record);
        the socket is read only when nothing was decrypted yet."""
        tls = self._object()
        size, total = len(buffer), 0
        while total < size:
            try:
                # with a buffer, read returns the count (typeshed says bytes)
                n: int = tls.read(size - total, buffer[total:])  # type: ignore[assignment]
            except ssl.SSLWantReadError:
                if total:
                    break
                if self._outgoing.pending:
                    self.flush()  # TLS 1.3 session tickets, key updates
                if self._eof:
                    return 0
                self._fill()  # BlockingIOError: wait for the socket
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break  # close_notify, or TCP closed without it: the end (0) comes next
            except ssl.SSLError as exc:
                code, message = tls_error_code(exc)
                raise TlsError(code, message) from exc
            if not n:
                break
            total += n
        if self._outgoing.pending:
            self.flush()
        return total

    def send(self, buffers: list[memoryview]) -> int:
        self.flush()
        if self._unsent:
            raise BlockingIOError(errno.EAGAIN, "the socket is full")
        tls = self._object()
        # One write for all the buffers: each TLS write makes records of its own, and
        # a PDU is a few small headers before its fragment (three records, two of them
        # a few bytes, where one will do).
        pieces: list[memoryview] = []
        size = 0
        for buffer in buffers:
            room = _WRITE_CHUNK - size
            if room <= 0:
                break
            piece = buffer[:room]
            pieces.append(piece)
            size += len(piece)
        if not pieces:
            return 0
        try:
            taken: int = tls.write(pieces[0] if len(pieces) == 1 else b"".join(pieces))
        except ssl.SSLError as exc:
            code, message = tls_error_code(exc)
            raise TlsError(code, message) from exc
        self.flush()
        return taken

    def pending(self) -> int:
        tls = self._ssl
        if tls is None:
            return 0
        return tls.pending() + (0 if self._starved else self._incoming.pending)

    def close(self) -> None:
        tls = self._ssl
        if tls is not None and not self._eof:
            try:
                tls.unwrap()  # queues close_notify
            except (ssl.SSLError, ValueError):
                pass
            self._flush_quietly()
        self.sock.close()
