"""Where lite's TLS context finds its trusted CAs: the system's store, loaded a CA at a time when it can be.

::

    client_context(environ)        the one context lite's connections share (check_hostname, CERT_REQUIRED)
    └── locations(environ)         which file to parse at once and which directory to look CAs up in
        └── covers(dir, bundle)    whether the directory's hash links lead to every certificate of the bundle

``ssl.create_default_context()`` parses the system bundle whole: about 35 ms, half of lite's cold path, to find
the one root AWS's chain ends at. OpenSSL also reads a *hashed directory* (``capath``), where each CA is a file
named by its subject's hash, looked up only when a handshake asks for that subject. So when the system ships
its bundle also as such a directory, lite loads the directory alone: the same store, one file read per
handshake instead of a hundred-odd certificates parsed up front.

"The same store" is checked, not assumed: the directory stands for the bundle only when the system's own tool
writes both (OpenSSL's built-in directory beside its built-in bundle, or ``update-ca-trust``'s extraction) and
its hash links lead to every certificate of the bundle, byte for byte (about 1 ms to check). A CA appended to
the bundle by hand, the directory left un-hashed, or a bundle replaced by one's own, fails that, and the bundle
is parsed as before: the trust is never narrower than ``ssl.create_default_context()``'s.

==========================================  ===========================================================
environment                                 trust
==========================================  ===========================================================
``AWS_CA_BUNDLE`` or ``REQUESTS_CA_BUNDLE``  that file alone, parsed at once (as today, and as botocore)
``SSL_CERT_FILE``, another bundle           that file, parsed at once, and the directory (OpenSSL's rule)
the system bundle, hashed twin covering it  the directory alone, a CA read when a handshake needs it
the system bundle, no such twin             the bundle, parsed at once, and the directory (as today)
no readable bundle                          the directory alone (OpenSSL skips a file it cannot open)
==========================================  ===========================================================

The directory is ``SSL_CERT_DIR``, else OpenSSL's built-in one (``/usr/lib/ssl/certs``, i.e. ``/etc/ssl/certs``,
on Debian and Ubuntu); ``SSL_CERT_DIR`` stays on the path even when a twin is used. Red Hat's family, Amazon
Linux 2023 among it, keeps no hash links in its built-in directory (``/etc/pki/tls/certs``); ``update-ca-trust``
extracts them, when it does, beside the bundle in ``/etc/pki/ca-trust/extracted/pem/directory-hash``. The
variables are read from the transport's environment (``os.environ`` unless a test injects one).
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping

from confstage.errors import ConfigurationError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: typing costs more than this module, and no NamedTuple for that
if TYPE_CHECKING:
    import ssl

__all__ = ["Locations", "certificates", "client_context", "covers", "locations"]

_HASHED = re.compile(r"[0-9a-f]{8}\.[0-9]+")  # a CA; ``<hash>.r<n>`` is a CRL
_BEGIN = b"CERTIFICATE-----"  # after "-----BEGIN "
_END = b"-----END CERTIFICATE-----"
_BUNDLE_ENV = ("AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


class Locations:
    """What to load: ``cafile`` parsed at once (``None``: skipped), ``capath`` read per lookup; ``source`` names
    them for errors."""

    __slots__ = ("cafile", "capath", "source")

    def __init__(self, cafile: str | None, capath: str | None, source: str) -> None:
        self.cafile = cafile
        self.capath = capath
        self.source = source

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Locations):
            return NotImplemented
        return (self.cafile, self.capath, self.source) == (other.cafile, other.capath, other.source)

    def __hash__(self) -> int:
        return hash((self.cafile, self.capath, self.source))

    def __repr__(self) -> str:
        return f"Locations(cafile={self.cafile!r}, capath={self.capath!r}, source={self.source!r})"


def certificates(pem: bytes) -> list[bytes] | None:
    """The base64 bodies of the PEM certificates in ``pem``, whitespace removed (the DER, compared without
    decoding); ``None`` when it holds anything else (a ``TRUSTED CERTIFICATE``, a CRL, a torn block)."""
    found = []
    for block in pem.split(b"-----BEGIN ")[1:]:
        end = block.find(_END)
        if not block.startswith(_BEGIN) or end < 0:
            return None
        found.append(block[len(_BEGIN) : end].translate(None, b" \t\r\n"))
    return found


def covers(directory: str, bundle: Collection[bytes]) -> bool:
    """Whether every certificate of ``bundle`` (``certificates``' bodies) is one a hash link in ``directory``
    leads to: each link's file is read (about 1 ms for Debian's 144 CAs, against 15 to 35 ms to parse the same CAs
    as a bundle), so a directory that merely holds as many CAs, or other ones, never stands in for a bundle."""
    wanted = set(bundle)
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if wanted and _HASHED.fullmatch(entry.name):
                    with open(entry.path, "rb") as linked:
                        wanted.difference_update(certificates(linked.read()) or ())
    except OSError:  # unlisted, or a dangling link: this directory cannot be vouched for
        return False
    return not wanted


def locations(environ: Mapping[str, str], defaults: ssl.DefaultVerifyPaths | None = None) -> Locations:
    """The trust ``client_context`` loads for ``environ``; ``defaults`` are OpenSSL's built-in paths (tests)."""
    for name in _BUNDLE_ENV:
        if environ.get(name):
            return Locations(environ[name], None, name)
    if defaults is None:
        import ssl

        defaults = ssl.get_default_verify_paths()
    cafile = environ.get(defaults.openssl_cafile_env) or defaults.openssl_cafile
    capath = environ.get(defaults.openssl_capath_env) or defaults.openssl_capath
    bundle = os.path.realpath(cafile)
    try:
        with open(bundle, "rb") as opened:
            pem = opened.read()
    except OSError:  # OpenSSL skips a file it cannot open, and finds its CAs in the directory alone
        return Locations(None, capath, "the system CA directory")
    if bundle != os.path.realpath(defaults.openssl_cafile):  # a bundle of one's own
        return Locations(cafile, capath, defaults.openssl_cafile_env)
    held = certificates(pem)
    if held == []:  # an empty bundle adds nothing to the directory (and OpenSSL refuses to load one by name)
        return Locations(None, capath, "the system CA directory")
    # Only a directory the system's own tool writes from the bundle may stand for it: OpenSSL's built-in one
    # (Debian's update-ca-certificates), or update-ca-trust's extraction beside its bundle; and only if it does.
    twins = [defaults.openssl_capath]
    if os.path.basename(bundle) == "tls-ca-bundle.pem":
        twins.append(os.path.join(os.path.dirname(bundle), "directory-hash"))
    twin = next((t for t in twins if held is not None and covers(t, held)), None)
    if twin is None:
        return Locations(cafile, capath, "the system CA store")
    # SSL_CERT_DIR stays on the path, as OpenSSL keeps it: looked up lazily, it costs nothing unasked.
    same = os.path.realpath(twin) == os.path.realpath(capath)
    return Locations(None, twin if same else f"{twin}{os.pathsep}{capath}", "the system CA directory")


def client_context(environ: Mapping[str, str], defaults: ssl.DefaultVerifyPaths | None = None) -> ssl.SSLContext:
    """A client context as ``ssl.create_default_context()`` makes one (hostnames checked, certificates
    required), trusting ``locations(environ, defaults)``; ``ConfigurationError`` names what could not be loaded."""
    import ssl

    found = locations(environ, defaults)
    try:
        return ssl.create_default_context(cafile=found.cafile, capath=found.capath)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"{found.source} could not be loaded: {exc}") from exc
