"""``get_path`` over HTTP against the local S3 endpoint: large objects streamed to private files in /tmp.

The object side of ``files.py`` is covered in test_files.py with an in-memory store; here the real S3 source
and transports do it: a 64 MiB object byte for byte in a process of its own (its peak memory measured), the
second process within the TTL (no request), the revalidation after it (one 304, no body), an object changed
between two reads, and a /tmp too full for the object (refused before the body is read).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from confstage import Config, SourceError
from confstage.transport.botocore import add_client_hook

pytestmark = pytest.mark.integration

BUCKET = "objects-bucket"
URL = f"s3://{BUCKET}/app"
MIB = 1 << 20

# A process of its own: warms up on a small object (clients made, modules imported), then fetches the large one
# and reports its peak RSS growth (VmHWM, KiB), the file's digest and its mode; then reads the file
# whole, so that the test sees the same measure register a 64 MiB buffer.
CHILD = r"""
import hashlib, json, os, stat, sys

import confstage


def peak_kib():  # VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's across exec)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


config = confstage.Config(sys.argv[1], stage="PRD", cache_dir=sys.argv[2], ttl=3600)
config.get_path("small.bin")
before = peak_kib()
path = config.get_path("model.bin")
after = peak_kib()
digest = hashlib.sha256()
with open(path, "rb") as file:
    for chunk in iter(lambda: file.read(1 << 20), b""):
        digest.update(chunk)
whole = open(path, "rb").read()  # what holding it whole would cost: shows the measure can see 64 MiB
held = peak_kib()
print(json.dumps({"growth_kib": after - before, "whole_kib": held - after, "sha256": digest.hexdigest(),
                  "mode": stat.S_IMODE(os.stat(path).st_mode)}))
"""


class Seen(NamedTuple):
    """What the botocore clients sent: requests by operation, and the status of each S3 GetObject answer."""

    requests: Counter[str]
    statuses: list[int]


@pytest.fixture(name="seen")
def fixture_seen() -> Iterator[Seen]:
    seen = Seen(Counter(), [])

    def hook(client: Any) -> None:
        def sent(event_name: str, **_: Any) -> None:
            seen.requests[event_name.split(".", 1)[1]] += 1

        def answered(response_dict: dict[str, Any], **_: Any) -> None:
            seen.statuses.append(response_dict["status_code"])

        client.meta.events.register("before-send", sent)
        client.meta.events.register("before-parse.s3.GetObject", answered)

    remove = add_client_hook(hook)
    yield seen
    remove()


@pytest.fixture(name="s3")
def fixture_s3(boto: Any) -> Any:
    client = boto("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="app/PRD/small.bin", Body=b"\x00small\xff")
    return client


def _data(size: int, seed: bytes) -> bytes:
    """``size`` bytes that do not compress to nothing and differ per seed (a hash chain, 1 MiB at a time)."""
    block = hashlib.shake_256(seed).digest(MIB)
    return (block * (size // MIB + 1))[:size]


def _client(tmp_path: Path, **kwargs: Any) -> Config:
    return Config(URL, stage="PRD", cache_dir=str(tmp_path / "cache"), **kwargs)


@pytest.mark.parametrize("transport", ["botocore", "lite"])
def test_a_64_mib_object_is_streamed_to_a_private_file_in_bounded_memory(
    transport: str, s3: Any, aws_endpoint: str, tmp_path: Path
) -> None:
    """Bytes identical, mode 0600, and the fetching process's peak memory grows by at most 24 MiB."""
    data = _data(64 * MIB, b"model-v1")
    s3.put_object(Bucket=BUCKET, Key="app/PRD/model.bin", Body=data)
    env = {**os.environ, "CONFSTAGE_TRANSPORT": transport, "AWS_LAMBDA_FUNCTION_NAME": "fn"}
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    cache = str(tmp_path / "cache")
    result = subprocess.run(
        [sys.executable, "-c", CHILD, URL, cache], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert report["mode"] == 0o600
    print(f"{transport}: peak RSS growth {report['growth_kib'] / 1024:.1f} MiB for 64 MiB")  # the closing note
    assert report["growth_kib"] <= 24 * 1024, f"peak RSS grew by {report['growth_kib'] / 1024:.1f} MiB"
    assert report["whole_kib"] >= 60 * 1024  # the measure works: the file held whole shows up


def test_a_second_process_within_the_ttl_makes_no_request_and_one_304_after_it(
    s3: Any, tmp_path: Path, seen: Seen
) -> None:
    """A new client on the same /tmp (what a second process is to the cache) reads the file with no request."""
    data = _data(3 * MIB, b"rules")
    s3.put_object(Bucket=BUCKET, Key="app/PRD/model.bin", Body=data)
    first = _client(tmp_path, ttl=3600).get_path("model.bin")
    assert first.read_bytes() == data
    assert seen.requests["s3.GetObject"] == 1

    assert _client(tmp_path, ttl=3600).get_path("model.bin") == first
    assert seen.requests["s3.GetObject"] == 1  # no request within the TTL

    again = _client(tmp_path, ttl=0).get_path("model.bin")  # past its TTL: revalidated
    assert again == first
    assert seen.requests["s3.GetObject"] == 2
    assert seen.statuses == [200, 304]  # one conditional request, answered without a body
    assert first.read_bytes() == data


def test_an_object_changed_between_reads_gets_a_new_file_and_the_old_path_stays_complete(
    s3: Any, tmp_path: Path, seen: Seen
) -> None:
    old, new = _data(2 * MIB, b"v1"), _data(2 * MIB + 17, b"v2")
    s3.put_object(Bucket=BUCKET, Key="app/PRD/model.bin", Body=old)
    client = _client(tmp_path, ttl=0)
    held = client.get_path("model.bin")
    s3.put_object(Bucket=BUCKET, Key="app/PRD/model.bin", Body=new)
    fresh = client.get_path("model.bin")
    assert fresh != held
    assert fresh.read_bytes() == new
    assert held.read_bytes() == old  # a reader holding the old path keeps a complete file
    assert seen.statuses == [200, 200]
    leftovers = [p.name for p in fresh.parent.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_an_object_larger_than_the_space_left_is_refused_before_its_body_is_read(
    s3: Any, tmp_path: Path, seen: Seen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/tmp (as the file system reports it) has 8 MiB left: a 16 MiB object is refused, naming both sizes."""
    s3.put_object(Bucket=BUCKET, Key="app/PRD/model.bin", Body=_data(16 * MIB, b"big"))
    real = shutil.disk_usage

    def nearly_full(path: Any) -> Any:
        usage = real(path)
        return usage._replace(free=8 * MIB)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    client = _client(tmp_path)
    with pytest.raises(SourceError, match=r"16\.0 MiB, more than the 8\.0 MiB left") as refused:
        client.get_path("model.bin")
    assert refused.value.operation == "get_path"
    directory = tmp_path / "cache" / "objects"
    assert [p.name for p in directory.iterdir() if p.suffix in (".bin",) or ".tmp-" in p.name] == []
    assert seen.requests["s3.GetObject"] == 1  # the answer's Content-Length decided it; the body was not read


def test_absent_objects_fall_through_and_a_document_layout_is_refused(s3: Any, tmp_path: Path) -> None:
    from confstage import ConfigurationError, KeyNotFoundError

    with pytest.raises(KeyNotFoundError):
        _client(tmp_path).get_path("nothing.bin")
    document = Config(f"{URL}?layout=document", stage="PRD", cache_dir=str(tmp_path / "cache"))
    with pytest.raises(ConfigurationError, match="one per key"):
        document.get_path("model.bin")
