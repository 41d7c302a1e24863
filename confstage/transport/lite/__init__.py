"""The lite transport: the runtime's AWS reads with the standard library and SigV4, no boto3 on Lambda's cold path.

The package holds what only lite uses: ``transport`` (``LiteTransport``, its retries and credentials), ``http``
(HTTP/1.1 on a socket, every operation within the call's deadline), ``connections`` (keep-alive pools and the S3
``Body``), ``answers`` (an answer to botocore's output shape or an error), ``container`` (the container credential
provider) and ``trust`` (the system's CAs, loaded lazily). What the transport selection and other transports share
stays one level up (``sigv4``, ``protocols``, ``endpoints``).

This module imports nothing: the selection rule imports ``container`` without loading the transport, and no
submodule's import of a sibling passes back through the package.
"""
