"""kms-env://: console-encrypted environment variables decrypted over HTTP against the local KMS."""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest

from confstage import Config, DecryptError, KeyNotFoundError
from confstage.sources.kms_env import KmsEnvSource

SECRET = "hunter2-très-secret"


def encrypt(boto: Any, key_id: str, plaintext: str, context: dict[str, str] | None) -> str:
    kwargs: dict[str, Any] = {"EncryptionContext": context} if context else {}
    blob = boto("kms").encrypt(KeyId=key_id, Plaintext=plaintext.encode(), **kwargs)["CiphertextBlob"]
    return base64.b64encode(blob).decode()


@pytest.fixture(name="function_name")
def fixture_function_name(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "helloStagedWorld")
    return "helloStagedWorld"


@pytest.mark.integration
def test_decrypts_console_ciphertext_with_the_function_context(
    boto: Any, kms_key: str, function_name: str, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """A ciphertext made with EncryptionContext LambdaFunctionName decrypts, once per process."""
    monkeypatch.setenv("PRD_db_password", encrypt(boto, kms_key, SECRET, {"LambdaFunctionName": function_name}))
    config = Config("kms-env://", stage="PRD", cache_dir="")
    assert config.get("db_password") == SECRET
    config.clear()
    assert config.get("db_password") == SECRET
    assert requests_made["kms.Decrypt"] == 1


@pytest.mark.integration
def test_falls_back_to_no_encryption_context(
    boto: Any, kms_key: str, function_name: str, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """A ciphertext made without a context decrypts on the second attempt."""
    monkeypatch.setenv("api_key", encrypt(boto, kms_key, "plain-context-less", None))
    assert Config("kms-env://", stage="DEV", cache_dir="").get("api_key") == "plain-context-less"
    assert requests_made["kms.Decrypt"] == 2


@pytest.mark.integration
def test_keys_parameter_limits_what_it_serves(
    boto: Any, kms_key: str, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """?keys=a,b serves only those keys; others fall through to the next source untouched."""
    monkeypatch.setenv("secret_a", encrypt(boto, kms_key, "A", None))
    monkeypatch.setenv("plain_b", "B")
    config = Config("kms-env://?keys=secret_a kms-env://?keys=x env://", stage="DEV", cache_dir="")
    assert config.get_many(["secret_a", "plain_b"]) == {"secret_a": "A", "plain_b": "B"}
    assert requests_made["kms.Decrypt"] == 1


@pytest.mark.integration
def test_a_ciphertext_for_another_function_fails_naming_the_variable(
    boto: Any, kms_key: str, function_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ciphertext bound to another function's context is a DecryptError naming the variable only, for that key."""
    blob = encrypt(boto, kms_key, SECRET, {"LambdaFunctionName": "someoneElse"})
    monkeypatch.setenv("DEV_token", blob)
    monkeypatch.setenv("DEV_other", encrypt(boto, kms_key, "fine", {"LambdaFunctionName": function_name}))
    fetched = KmsEnvSource().fetch("DEV", ["token", "other"])
    assert dict(fetched) == {"other": "fine"}
    error = fetched.errors["token"]
    assert isinstance(error, DecryptError)
    message = str(error)
    assert "DEV_token" in message
    assert blob not in message
    assert SECRET not in message
    assert error.operation == "kms:Decrypt"


@pytest.mark.integration
@pytest.mark.parametrize("value", ["not base64 at all!", "", "QUJD"])
def test_not_a_ciphertext_raises_decrypt_error(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A value that is not base64 KMS ciphertext is a DecryptError naming the variable, never the value."""
    monkeypatch.setenv("DEV_bad", value)
    error = KmsEnvSource().fetch("DEV", ["bad"]).errors["bad"]
    assert isinstance(error, DecryptError)
    assert "DEV_bad" in str(error)
    if value:
        assert value not in str(error)


def test_absent_variable_is_not_found_without_calling_kms() -> None:
    """A variable that is not set is 'not found' and costs no KMS call (the dead endpoint would fail)."""
    with pytest.raises(KeyNotFoundError):
        Config("kms-env://", stage="DEV", cache_dir="").get("missing")


@pytest.mark.integration
def test_get_many_decrypts_each_variable_once_in_parallel(
    boto: Any, kms_key: str, function_name: str, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """A get_many of five encrypted variables costs five Decrypt calls and returns every plaintext."""
    expected = {f"secret_{i}": f"value-{i}-ü" for i in range(5)}
    for key, value in expected.items():
        monkeypatch.setenv(f"PRD_{key}", encrypt(boto, kms_key, value, {"LambdaFunctionName": function_name}))
    config = Config("kms-env://", stage="PRD", cache_dir="")
    assert config.get_many(expected) == expected
    config.clear()
    assert config.get_many(expected) == expected
    assert requests_made["kms.Decrypt"] == 5
