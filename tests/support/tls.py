"""Certificates from a throwaway authority made in the test, and a real TLS webhook receiver.

`Authority.create(name)` makes a CA (P-256 key, self-signed) that exists only for one test;
`authority.issue(*names)` a server certificate for those DNS names. Nothing is read from or
written to the machine's trust store: the gateway trusts the authority only through the PEM
file the test writes and names in CHAINGATE_WEBHOOK_CA_BUNDLE.

`TlsReceiver(host)` is an HTTPS server on `host` (a loopback address) that serves whichever
certificate `serve_as` names and records every connection: the name the client asked for (SNI),
the local address it reached, whether the handshake succeeded, and the request it carried.
"""

from __future__ import annotations

import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.webhook_receiver import Received


@dataclass(frozen=True)
class Issued:
    """A server certificate and its private key, in PEM."""

    cert_pem: bytes
    key_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        # ssl loads chains from files only; a private temporary directory holds them briefly.
        with tempfile.TemporaryDirectory() as folder:
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(self.cert_pem)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class Authority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_bundle(self, path: Path) -> Path:
        path.write_bytes(self.pem)
        return path

    def issue(self, *names: str) -> Issued:
        """A server certificate for the DNS `names` (the first is also the common name)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        ca_key_id = x509.SubjectKeyIdentifier.from_public_key(self.key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id), False
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class Connection:
    """One TLS connection the receiver accepted."""

    server_name: str | None  # SNI the client sent
    local_address: str  # the address of ours the client connected to
    certificate: str  # which certificate was served (the `serve_as` key)
    handshake_error: str | None = None
    request: Received | None = None


class TlsReceiver:
    """See the module docstring. `certificates` maps a label to what `serve_as(label)` serves."""

    def __init__(self, host: str, certificates: dict[str, Issued], *, port: int = 0) -> None:
        self.connections: list[Connection] = []
        self._arrived = threading.Condition()
        self._contexts = {label: c.server_context() for label, c in certificates.items()}
        self._serving = next(iter(self._contexts))
        self._lock = threading.Lock()
        receiver = self

        # Every connection starts on this context; its SNI callback records the name and
        # switches to the certificate being served.
        front = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        front.sni_callback = self._on_server_name

        class Handler(BaseHTTPRequestHandler):
            connection_record: Connection

            def setup(self) -> None:
                tls: ssl.SSLSocket = self.request
                record = Connection(None, tls.getsockname()[0], receiver._serving)
                with receiver._lock:
                    receiver.connections.append(record)
                    receiver._handshaking[id(tls)] = record
                try:
                    tls.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    record.handshake_error = f"{type(exc).__name__}: {exc}"
                    raise
                finally:
                    with receiver._lock:
                        receiver._handshaking.pop(id(tls), None)
                self.connection_record = record
                super().setup()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self.connection_record.request = Received(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                    at=time.monotonic(),
                )
                with receiver._arrived:
                    receiver._arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[Any, Any]:
                raw, address = self.socket.accept()
                # The handshake runs in the handler's thread, so one stuck client blocks nobody.
                tls = front.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
                return tls, address

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a refused handshake is recorded on its Connection

        self._handshaking: dict[int, Connection] = {}
        self._server = Server((host, port), Handler)
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _on_server_name(
        self, tls: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext
    ) -> None:
        with self._lock:
            record = self._handshaking.get(id(tls))
            serving = self._serving
        if record is not None:
            record.server_name = name
            record.certificate = serving
        tls.context = self._contexts[serving]

    def serve_as(self, label: str) -> None:
        """Serve the certificate `label` to the connections that start from now on."""
        assert label in self._contexts, label
        with self._lock:
            self._serving = label

    def wait_for_requests(self, count: int, timeout: float) -> list[Received]:
        """Block until `count` requests have arrived (or `timeout` seconds); returns them."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.requests()) >= count, timeout)
        return self.requests()

    def requests(self) -> list[Received]:
        with self._lock:
            return [c.request for c in self.connections if c.request is not None]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
