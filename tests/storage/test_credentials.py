"""Credential precedence, one variable at a time, with no network and no secret ever shown."""

from __future__ import annotations

import base64
import json
import traceback
from pathlib import Path

import pytest

from app.errors import ConfigError
from app.storage.credentials import (
    AWS_PAIR_INCOMPLETE,
    AZURE_ACCOUNT_MISSING,
    BAD_AZURE_CONNECTION_STRING,
    BAD_GOOGLE_BASE64,
    SIGNING_KEY_EMPTY,
    AzureAuth,
    Provider,
    azure_credentials,
    gcs_credentials,
    local_credentials,
    s3_credentials,
)

SECRET = "s3cr3t-value-never-shown"

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "proj-from-key",
    "private_key_id": "kid",
    "private_key": f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n-----END PRIVATE KEY-----\n",
    "client_email": "sa@proj-from-key.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}


def _b64(info: dict[str, str]) -> str:
    return base64.b64encode(json.dumps(info).encode()).decode()


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(SERVICE_ACCOUNT))
    return str(path)


@pytest.fixture
def user_file(tmp_path: Path) -> str:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps({"type": "authorized_user", "refresh_token": SECRET}))
    return str(path)


def _assert_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


# ---------------------------------------------------------------------------------------- GCS


def test_gcs_base64_key_wins_over_every_file(key_file: str) -> None:
    creds = gcs_credentials(
        {
            "GOOGLE_ACCOUNT_JSON_BASE64": _b64(SERVICE_ACCOUNT),
            "GOOGLE_APPLICATION_CREDENTIALS_SA": key_file,
            "GOOGLE_APPLICATION_CREDENTIALS": key_file,
        }
    )
    assert creds.provider is Provider.GCS
    assert creds.source == "GOOGLE_ACCOUNT_JSON_BASE64"
    assert creds.fs_kwargs["token"] == SERVICE_ACCOUNT
    assert creds.fs_kwargs["project"] == "proj-from-key"
    assert creds.gcs_signer_info == SERVICE_ACCOUNT


def test_gcs_sa_path_wins_over_application_credentials(key_file: str, user_file: str) -> None:
    creds = gcs_credentials(
        {"GOOGLE_APPLICATION_CREDENTIALS_SA": key_file, "GOOGLE_APPLICATION_CREDENTIALS": user_file}
    )
    assert creds.source == "GOOGLE_APPLICATION_CREDENTIALS_SA"
    assert creds.fs_kwargs["token"] == key_file
    assert creds.gcs_signer_file == key_file


def test_gcs_application_credentials_service_account_can_sign(key_file: str) -> None:
    creds = gcs_credentials({"GOOGLE_APPLICATION_CREDENTIALS": key_file})
    assert creds.source == "GOOGLE_APPLICATION_CREDENTIALS"
    assert creds.fs_kwargs["token"] == key_file
    assert creds.gcs_signer_file == key_file


def test_gcs_application_credentials_user_login_cannot_sign(user_file: str) -> None:
    creds = gcs_credentials({"GOOGLE_APPLICATION_CREDENTIALS": user_file})
    assert creds.fs_kwargs["token"] == user_file
    assert creds.gcs_signer_file is None
    assert creds.gcs_signer_info is None


def test_gcs_falls_back_to_application_default_credentials() -> None:
    creds = gcs_credentials({})
    assert creds.source == "application default credentials"
    assert dict(creds.fs_kwargs) == {"token": "google_default"}
    assert creds.gcs_signer_info is None and creds.gcs_signer_file is None


def test_gcs_blank_variables_count_as_unset() -> None:
    creds = gcs_credentials(
        {"GOOGLE_ACCOUNT_JSON_BASE64": " ", "GOOGLE_APPLICATION_CREDENTIALS": ""}
    )
    assert creds.fs_kwargs["token"] == "google_default"


def test_gcs_emulator_is_anonymous_but_keeps_the_signing_key() -> None:
    creds = gcs_credentials(
        {
            "STORAGE_EMULATOR_HOST": "127.0.0.1:4443",
            "GOOGLE_ACCOUNT_JSON_BASE64": _b64(SERVICE_ACCOUNT),
        }
    )
    assert creds.fs_kwargs["token"] == "anon"
    assert creds.fs_kwargs["endpoint_url"] == "http://127.0.0.1:4443"
    assert creds.endpoint_url == "http://127.0.0.1:4443"
    assert creds.gcs_signer_info == SERVICE_ACCOUNT
    assert creds.source.startswith("STORAGE_EMULATOR_HOST")


def test_gcs_project_from_environment() -> None:
    creds = gcs_credentials({"GOOGLE_CLOUD_PROJECT": "p1"})
    assert creds.fs_kwargs["project"] == "p1"


@pytest.mark.parametrize(
    "raw",
    [
        f"not base64 at all {SECRET}!!",
        base64.b64encode(f"{{not json {SECRET}".encode()).decode(),
        base64.b64encode(json.dumps([SECRET]).encode()).decode(),
    ],
    ids=["not-base64", "not-json", "not-an-object"],
)
def test_gcs_bad_base64_is_a_config_error_without_the_value(raw: str) -> None:
    with pytest.raises(ConfigError) as caught:
        gcs_credentials({"GOOGLE_ACCOUNT_JSON_BASE64": raw})
    assert caught.value.message == BAD_GOOGLE_BASE64
    # Neither the message nor the printed traceback (with its chained causes) shows the value.
    printed = "".join(traceback.format_exception(caught.value))
    _assert_hidden(str(caught.value), repr(caught.value), printed)
    assert caught.value.__cause__ is None


def test_gcs_missing_key_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS_SA"):
        gcs_credentials({"GOOGLE_APPLICATION_CREDENTIALS_SA": str(tmp_path / "nope.json")})


# ----------------------------------------------------------------------------------------- S3


def test_s3_access_keys_win_over_profile() -> None:
    creds = s3_credentials(
        {
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_PROFILE": "other",
        }
    )
    assert creds.provider is Provider.S3
    assert dict(creds.fs_kwargs) == {"key": "AKIAEXAMPLE", "secret": SECRET}
    assert creds.source == "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"


def test_s3_session_token_travels_with_the_keys() -> None:
    creds = s3_credentials(
        {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": "tok"}
    )
    assert creds.fs_kwargs["token"] == "tok"
    assert "AWS_SESSION_TOKEN" in creds.source


@pytest.mark.parametrize("present", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
def test_s3_half_a_key_pair_is_a_config_error(present: str) -> None:
    with pytest.raises(ConfigError) as caught:
        s3_credentials({present: SECRET})
    assert caught.value.message == AWS_PAIR_INCOMPLETE
    _assert_hidden(str(caught.value))


def test_s3_profile() -> None:
    creds = s3_credentials({"AWS_PROFILE": "ml"})
    assert dict(creds.fs_kwargs) == {"profile": "ml"}
    assert creds.source == "AWS_PROFILE"


def test_s3_default_chain_passes_no_credentials() -> None:
    # botocore then walks env, shared files, web identity (IRSA) and instance roles itself.
    creds = s3_credentials({"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "r"})
    assert dict(creds.fs_kwargs) == {}
    assert creds.source == "AWS default credential chain"


def test_s3_endpoint_and_region() -> None:
    creds = s3_credentials({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"})
    assert creds.fs_kwargs["endpoint_url"] == "http://127.0.0.1:9000"
    assert creds.fs_kwargs["client_kwargs"] == {"region_name": "eu-west-1"}
    assert creds.endpoint_url == "http://127.0.0.1:9000"


def test_s3_default_region_is_left_to_botocore() -> None:
    assert "client_kwargs" not in s3_credentials({"AWS_DEFAULT_REGION": "us-east-1"}).fs_kwargs


# -------------------------------------------------------------------------------------- Azure

CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devacct;"
    f"AccountKey={base64.b64encode(SECRET.encode()).decode()};"
    "BlobEndpoint=http://127.0.0.1:10000/devacct;"
)


def test_azure_connection_string_wins_and_needs_no_account_name() -> None:
    creds = azure_credentials(
        {
            "AZURE_STORAGE_CONNECTION_STRING": CONNECTION_STRING,
            "AZURE_STORAGE_TENANT_ID": "t",
            "AZURE_STORAGE_CLIENT_ID": "c",
            "AZURE_STORAGE_CLIENT_SECRET": SECRET,
        }
    )
    assert creds.azure_auth is AzureAuth.CONNECTION_STRING
    assert dict(creds.fs_kwargs) == {"connection_string": CONNECTION_STRING}
    assert creds.azure_account_name == "devacct"
    assert creds.azure_account_key == base64.b64encode(SECRET.encode()).decode()
    assert creds.azure_account_url == "http://127.0.0.1:10000/devacct"


def test_azure_connection_string_without_account_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        azure_credentials({"AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={SECRET}"})
    assert caught.value.message == BAD_AZURE_CONNECTION_STRING
    _assert_hidden(str(caught.value))


def test_azure_account_key() -> None:
    creds = azure_credentials(
        {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": SECRET}
    )
    assert creds.azure_auth is AzureAuth.ACCOUNT_KEY
    assert dict(creds.fs_kwargs) == {"account_name": "acct", "account_key": SECRET}
    assert creds.azure_account_url == "https://acct.blob.core.windows.net"


def test_azure_service_principal_builds_client_secret_kwargs() -> None:
    creds = azure_credentials(
        {
            "AZURE_STORAGE_ACCOUNT_NAME": "acct",
            "AZURE_STORAGE_TENANT_ID": "tenant",
            "AZURE_STORAGE_CLIENT_ID": "client",
            "AZURE_STORAGE_CLIENT_SECRET": SECRET,
        }
    )
    assert creds.azure_auth is AzureAuth.CLIENT_SECRET
    assert dict(creds.fs_kwargs) == {
        "account_name": "acct",
        "tenant_id": "tenant",
        "client_id": "client",
        "client_secret": SECRET,
    }
    assert "ClientSecretCredential" in creds.source


def test_azure_partial_service_principal_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        azure_credentials(
            {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_CLIENT_SECRET": SECRET}
        )
    assert "AZURE_STORAGE_TENANT_ID, AZURE_STORAGE_CLIENT_ID" in caught.value.message
    _assert_hidden(str(caught.value))


def test_azure_default_credential() -> None:
    creds = azure_credentials({"AZURE_STORAGE_ACCOUNT_NAME": "acct"})
    assert creds.azure_auth is AzureAuth.DEFAULT
    assert dict(creds.fs_kwargs) == {"account_name": "acct", "anon": False}
    assert creds.source == "DefaultAzureCredential"


def test_azure_account_name_is_required() -> None:
    with pytest.raises(ConfigError) as caught:
        azure_credentials({"AZURE_STORAGE_CLIENT_SECRET": SECRET})
    assert caught.value.message == AZURE_ACCOUNT_MISSING


def test_azure_account_name_may_come_from_the_uri() -> None:
    creds = azure_credentials({}, account_name="fromuri")
    assert creds.azure_account_name == "fromuri"


# -------------------------------------------------------------------------------------- local


def test_local_signing_key_from_environment() -> None:
    creds = local_credentials({"OPSML_SIGNING_KEY": SECRET})
    assert creds.signing_key == SECRET.encode()
    assert creds.source == "OPSML_SIGNING_KEY"


def test_local_signing_key_is_random_per_process_when_unset() -> None:
    first, second = local_credentials({}), local_credentials({})
    assert first.signing_key is not None and len(first.signing_key) == 32
    assert first.signing_key == second.signing_key
    assert "per-process" in first.source


def test_local_empty_signing_key_is_rejected() -> None:
    with pytest.raises(ConfigError) as caught:
        local_credentials({"OPSML_SIGNING_KEY": "  "})
    assert caught.value.message == SIGNING_KEY_EMPTY


# ------------------------------------------------------------------------------------ secrecy


def test_no_credential_value_in_repr_str_or_description(key_file: str) -> None:
    every = [
        gcs_credentials({"GOOGLE_ACCOUNT_JSON_BASE64": _b64(SERVICE_ACCOUNT)}),
        gcs_credentials({"GOOGLE_APPLICATION_CREDENTIALS_SA": key_file}),
        s3_credentials({"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET}),
        s3_credentials(
            {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "x", "AWS_SESSION_TOKEN": SECRET}
        ),
        azure_credentials({"AZURE_STORAGE_CONNECTION_STRING": CONNECTION_STRING}),
        azure_credentials({"AZURE_STORAGE_ACCOUNT_NAME": "a", "AZURE_STORAGE_ACCOUNT_KEY": SECRET}),
        azure_credentials(
            {
                "AZURE_STORAGE_ACCOUNT_NAME": "a",
                "AZURE_STORAGE_TENANT_ID": "t",
                "AZURE_STORAGE_CLIENT_ID": "c",
                "AZURE_STORAGE_CLIENT_SECRET": SECRET,
            }
        ),
        local_credentials({"OPSML_SIGNING_KEY": SECRET}),
    ]
    encoded = base64.b64encode(SECRET.encode()).decode()
    for creds in every:
        shown = [repr(creds), str(creds), creds.describe(), f"{creds!r}", f"{[creds]}"]
        _assert_hidden(*shown)
        assert all(encoded not in text for text in shown)
        assert creds.provider.value in repr(creds)
