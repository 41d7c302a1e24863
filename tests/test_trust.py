"""transport/lite/trust.py: lite's TLS context trusts what ``ssl.create_default_context()`` trusts, loading the system's
hashed CA directory lazily where its links lead to every certificate of the bundle.

Real handshakes on 127.0.0.1 against servers signed by throwaway CAs. The hashed directories are named as OpenSSL
names them (``openssl x509 -hash``); without the openssl command those tests are skipped, and the bundle-only
ones still run.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import itertools
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confstage.errors import ConfigurationError
from confstage.transport import AwsRequest
from confstage.transport.lite.transport import LiteTransport
from confstage.transport.lite.trust import Locations, certificates, client_context, covers, locations

from .scripted import Answer, Scripted

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="no openssl command to name hash links with")


class Authority(NamedTuple):
    """A throwaway CA: its PEM, OpenSSL's subject hash of it, and a server context for 127.0.0.1/localhost."""

    name: str
    pem: bytes
    subject_hash: str
    server: ssl.SSLContext


def _authority(name: str, where: Path) -> Authority:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"confstage test {name}")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = ca.public_bytes(serialization.Encoding.PEM)
    (where / f"{name}.pem").write_bytes(pem)
    chain = where / f"{name}-server.pem"
    chain.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(chain)
    subject_hash = ""
    if OPENSSL is not None:
        subject_hash = subprocess.run(
            [OPENSSL, "x509", "-hash", "-noout", "-in", str(where / f"{name}.pem")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    return Authority(name, pem, subject_hash, server)


@pytest.fixture(scope="module", name="cas")
def fixture_cas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Authority]:
    """Three throwaway CAs, A, B and C, each with a server certificate for 127.0.0.1 and localhost."""
    where = tmp_path_factory.mktemp("cas")
    return {name: _authority(name, where) for name in "ABC"}


@pytest.fixture(scope="module", name="listener")
def fixture_listener() -> Iterator[socket.socket]:
    """One listening socket on 127.0.0.1 that every handshake of the module uses."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(5)
        yield sock


def handshake(context: ssl.SSLContext, listener: socket.socket, ca: Authority, host: str = "127.0.0.1") -> None:
    """One TLS handshake from ``context`` to a server whose certificate ``ca`` signed; raises what the client
    raised."""

    def serve() -> None:
        conn, _ = listener.accept()
        conn.settimeout(5)
        try:
            with ca.server.wrap_socket(conn, server_side=True):
                pass
        except (OSError, ssl.SSLError):
            pass  # the client refused us: its error is the one the test reads
        finally:
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname()[:2], timeout=5) as raw:
            context.wrap_socket(raw, server_hostname=host).close()
    finally:
        thread.join(5)


def verifies(context: ssl.SSLContext, listener: socket.socket, ca: Authority) -> bool:
    try:
        handshake(context, listener, ca)
    except ssl.SSLCertVerificationError:
        return False
    return True


class System:
    """A system's CA store in a temporary directory: a bundle file and OpenSSL's built-in hashed directory."""

    def __init__(self, root: Path, bundle: Iterable[Authority] = (), hashed: Iterable[Authority] = ()) -> None:
        self.bundle = root / "ssl" / "cert.pem"
        self.directory = root / "ssl" / "certs"
        self.directory.mkdir(parents=True)
        self.bundle.write_bytes(b"".join(ca.pem for ca in bundle))
        link(self.directory, hashed)

    @property
    def defaults(self) -> ssl.DefaultVerifyPaths:
        return paths(self.bundle, self.directory)


def paths(bundle: Path, directory: Path) -> ssl.DefaultVerifyPaths:
    """OpenSSL's built-in paths, as ``ssl.get_default_verify_paths()`` reports them, pointed at a test's files."""
    return ssl.DefaultVerifyPaths(
        str(bundle), str(directory), "SSL_CERT_FILE", str(bundle), "SSL_CERT_DIR", str(directory)
    )


def link(directory: Path, cas: Iterable[Authority]) -> None:
    """Each CA as a file in ``directory`` and a ``<subject hash>.0`` link to it, as ``openssl rehash`` makes."""
    for ca in cas:
        assert ca.subject_hash, "naming a hash link needs the openssl command"
        (directory / f"{ca.name}.pem").write_bytes(ca.pem)
        (directory / f"{ca.subject_hash}.0").symlink_to(f"{ca.name}.pem")


@needs_openssl
def test_a_hashed_directory_covering_the_bundle_is_loaded_alone_and_lazily(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """Where the built-in directory's links lead to every CA of the bundle, the bundle is not parsed: no CA is in
    the context until a handshake asks for its subject, and then just that one."""
    system = System(tmp_path, bundle=[cas["A"], cas["B"]], hashed=[cas["A"], cas["B"]])
    assert locations({}, system.defaults) == Locations(None, str(system.directory), "the system CA directory")
    context = client_context({}, system.defaults)
    assert context.cert_store_stats()["x509_ca"] == 0
    handshake(context, listener, cas["A"])
    assert context.cert_store_stats()["x509_ca"] == 1
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        handshake(context, listener, cas["C"])


@needs_openssl
def test_the_context_checks_hostnames_and_requires_a_certificate(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """The lazy context is a client context as create_default_context makes one: a trusted CA's certificate
    for another name is refused."""
    system = System(tmp_path, bundle=[cas["A"]], hashed=[cas["A"]])
    context = client_context({}, system.defaults)
    assert (context.check_hostname, context.verify_mode) == (True, ssl.CERT_REQUIRED)
    assert context.verify_flags == ssl.create_default_context().verify_flags
    assert context.minimum_version == ssl.create_default_context().minimum_version
    handshake(context, listener, cas["A"], host="localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"[Hh]ostname mismatch"):
        handshake(context, listener, cas["A"], host="elsewhere.example")


@needs_openssl
def test_the_trust_is_the_bundle_and_the_directory_whatever_each_holds(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """Over every bundle and directory made of A, B and C (64 systems), a server verifies exactly when its CA is
    in the bundle or the directory, as with ``ssl.create_default_context()``; the bundle is skipped only when
    the directory holds all of it (a CA appended by hand, or a bundle replaced by one of the same size, keeps it
    parsed)."""
    subsets = [combo for size in range(4) for combo in itertools.combinations("ABC", size)]
    for n, (bundle, hashed) in enumerate(itertools.product(subsets, subsets)):
        system = System(tmp_path / str(n), bundle=[cas[c] for c in bundle], hashed=[cas[c] for c in hashed])
        found = locations({}, system.defaults)
        assert (found.cafile is None) == set(bundle).issubset(hashed), (bundle, hashed, found)
        context = client_context({}, system.defaults)
        trusted = {name for name in "ABC" if verifies(context, listener, cas[name])}
        assert trusted == set(bundle) | set(hashed), (bundle, hashed, found)


def test_without_a_hashed_directory_the_bundle_is_parsed(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """A system with a bundle and no directory (or an empty one): the bundle is loaded at once, as before."""
    missing = System(tmp_path / "missing", bundle=[cas["A"]])
    missing.directory.rmdir()
    empty = System(tmp_path / "empty", bundle=[cas["A"]])
    for system in (missing, empty):
        assert locations({}, system.defaults).cafile == str(system.bundle)
        context = client_context({}, system.defaults)
        assert context.cert_store_stats()["x509_ca"] == 1
        handshake(context, listener, cas["A"])
        assert not verifies(context, listener, cas["B"])


@needs_openssl
def test_update_ca_trusts_extraction_beside_its_bundle_is_the_twin(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """Red Hat's layout (Amazon Linux 2023): no links in /etc/pki/tls/certs, the bundle a link to
    ca-trust/extracted/pem/tls-ca-bundle.pem, and its hashed twin in directory-hash beside it."""
    extracted = tmp_path / "ca-trust" / "extracted" / "pem"
    (extracted / "directory-hash").mkdir(parents=True)
    (extracted / "tls-ca-bundle.pem").write_bytes(cas["A"].pem)
    link(extracted / "directory-hash", [cas["A"]])
    tls = tmp_path / "tls"
    (tls / "certs").mkdir(parents=True)
    (tls / "certs" / "ca-bundle.crt").symlink_to(extracted / "tls-ca-bundle.pem")
    (tls / "cert.pem").symlink_to(extracted / "tls-ca-bundle.pem")
    defaults = paths(tls / "cert.pem", tls / "certs")
    found = locations({}, defaults)
    assert found == Locations(None, f"{extracted / 'directory-hash'}{os.pathsep}{tls / 'certs'}", found.source)
    context = client_context({}, defaults)
    assert context.cert_store_stats()["x509_ca"] == 0
    handshake(context, listener, cas["A"])
    assert not verifies(context, listener, cas["B"])


@needs_openssl
def test_ssl_cert_file_and_ssl_cert_dir_are_honoured(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """SSL_CERT_FILE naming a bundle of one's own is parsed beside the directory (OpenSSL's rule); naming the
    system bundle by another path changes nothing; SSL_CERT_DIR stays on the path beside the system's twin."""
    system = System(tmp_path / "system", bundle=[cas["A"]], hashed=[cas["A"]])
    own = tmp_path / "own.pem"
    own.write_bytes(cas["B"].pem)
    found = locations({"SSL_CERT_FILE": str(own)}, system.defaults)
    assert found == Locations(str(own), str(system.directory), "SSL_CERT_FILE")
    context = client_context({"SSL_CERT_FILE": str(own)}, system.defaults)
    assert verifies(context, listener, cas["A"])
    assert verifies(context, listener, cas["B"])

    alias = tmp_path / "alias.pem"
    alias.symlink_to(system.bundle)
    assert locations({"SSL_CERT_FILE": str(alias)}, system.defaults).cafile is None

    extra = tmp_path / "extra"
    extra.mkdir()
    link(extra, [cas["C"]])
    found = locations({"SSL_CERT_DIR": str(extra)}, system.defaults)
    assert found == Locations(None, f"{system.directory}{os.pathsep}{extra}", found.source)
    context = client_context({"SSL_CERT_DIR": str(extra)}, system.defaults)
    assert verifies(context, listener, cas["A"])
    assert verifies(context, listener, cas["C"])
    assert not verifies(context, listener, cas["B"])


@needs_openssl
def test_aws_ca_bundle_is_the_whole_trust_and_a_missing_one_is_named(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """AWS_CA_BUNDLE (else REQUESTS_CA_BUNDLE) replaces the system store, as botocore does; one that cannot be
    loaded is a ConfigurationError naming the variable."""
    system = System(tmp_path, bundle=[cas["A"]], hashed=[cas["A"]])
    own = tmp_path / "own.pem"
    own.write_bytes(cas["B"].pem)
    for name in ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        context = client_context({name: str(own)}, system.defaults)
        assert verifies(context, listener, cas["B"])
        assert not verifies(context, listener, cas["A"])
        with pytest.raises(ConfigurationError, match=f"^{name} could not be loaded"):
            client_context({name: str(tmp_path / "missing.pem")}, system.defaults)


@needs_openssl
def test_a_missing_bundle_leaves_the_directory_and_a_dangling_link_keeps_the_bundle(
    tmp_path: Path, cas: dict[str, Authority], listener: socket.socket
) -> None:
    """No bundle: OpenSSL skips it, so the directory alone. A directory with a dangling link cannot vouch for
    the bundle, which is then parsed."""
    system = System(tmp_path / "nobundle", hashed=[cas["A"]])
    system.bundle.unlink()
    assert locations({}, system.defaults) == Locations(None, str(system.directory), "the system CA directory")
    handshake(client_context({}, system.defaults), listener, cas["A"])

    system = System(tmp_path / "dangling", bundle=[cas["A"]], hashed=[cas["A"]])
    (system.directory / "0badc0de.0").symlink_to("gone.pem")
    assert locations({}, system.defaults).cafile == str(system.bundle)
    handshake(client_context({}, system.defaults), listener, cas["A"])


@needs_openssl
def test_lite_makes_its_first_https_call_with_the_lazy_context(
    tmp_path: Path, cas: dict[str, Authority], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lite transport's context is trust.client_context's: over the system's hashed directory it verifies
    an endpoint signed by a system CA, loading that one CA."""
    system = System(tmp_path, bundle=[cas["A"], cas["B"]], hashed=[cas["A"], cas["B"]])
    monkeypatch.setattr(ssl, "get_default_verify_paths", lambda: system.defaults)
    server = Scripted(Answer(body=b'{"KeyId": "k"}'), tls=cas["A"].server).start()
    environ = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1"}
    transport = LiteTransport(environ=environ)
    try:
        request = AwsRequest("kms", "Decrypt", {"CiphertextBlob": b"\x00"}, endpoint_url=server.url)
        assert transport.call(request)["KeyId"] == "k"
        assert transport._ssl_context().cert_store_stats()["x509_ca"] == 1  # A alone, looked up
    finally:
        transport.close()
        server.stop()


def _pem(der: bytes, width: int, newline: bytes) -> bytes:
    body = base64.b64encode(der)
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return b"-----BEGIN CERTIFICATE-----" + newline + newline.join(lines) + newline + b"-----END CERTIFICATE-----"


@given(
    ders=st.lists(st.binary(min_size=1, max_size=300), max_size=5),
    width=st.integers(1, 80),
    newline=st.sampled_from([b"\n", b"\r\n"]),
    comments=st.lists(st.sampled_from([b"", b"# Label\n", b"\n\n", b"subject=CN = x\n"]), min_size=6, max_size=6),
)
def test_certificates_reads_the_same_der_however_the_pem_is_wrapped(
    ders: list[bytes], width: int, newline: bytes, comments: list[bytes]
) -> None:
    """A bundle's certificates compare equal to a directory's however each file wraps its lines or labels its
    blocks (Debian and update-ca-trust write them differently)."""
    pem = b"".join(comment + _pem(der, width, newline) + newline for comment, der in zip(comments, ders, strict=False))
    found = certificates(pem + comments[-1])
    assert found is not None
    assert [base64.b64decode(body) for body in found] == ders
    assert found == certificates(b"".join(_pem(der, 64, b"\n") + b"\n" for der in ders))


def test_certificates_refuses_what_is_not_a_plain_certificate() -> None:
    """A trusted certificate, a CRL or a torn block makes the bundle unreadable here, so it is parsed by OpenSSL."""
    good = _pem(b"\x30\x03\x02\x01\x01", 64, b"\n")
    assert certificates(good) == [base64.b64encode(b"\x30\x03\x02\x01\x01")]
    for bad in (
        good.replace(b"CERTIFICATE", b"TRUSTED CERTIFICATE"),
        good.replace(b"CERTIFICATE", b"X509 CRL"),
        good[: -len(b"-----END CERTIFICATE-----")],
    ):
        assert certificates(good + b"\n" + bad) is None


def test_covers_is_false_for_a_directory_that_cannot_be_listed(tmp_path: Path) -> None:
    """No directory vouches for anything, not even for an empty bundle's nothing."""
    assert not covers(str(tmp_path / "absent"), [])
    assert covers(str(tmp_path), [])
