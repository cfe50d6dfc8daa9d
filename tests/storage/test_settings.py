"""REELGATE_STORAGE_URL and the S3 variables choose the backend (contract 11); a malformed URL stops start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate.config import ConfigError, Settings
from reelgate.storage import DirectoryStorage, S3Location, S3Storage, storage_from_settings


def test_the_default_is_the_assets_directory_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings.from_env({"REELGATE_DATA_DIR": str(tmp_path)})
    storage = storage_from_settings(settings)
    assert isinstance(storage, DirectoryStorage) and settings.assets_dir == tmp_path / "assets"


def test_a_file_url_names_the_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"REELGATE_STORAGE_URL": f"file://{tmp_path}/shared%20media"})
    assert isinstance(storage_from_settings(settings), DirectoryStorage)
    assert settings.assets_dir == tmp_path / "shared media"


def test_an_s3_url_with_the_aws_variables_makes_the_s3_backend() -> None:
    settings = Settings.from_env({
        "REELGATE_STORAGE_URL": "s3://media-bucket/reelgate/prod/",
        "REELGATE_S3_ENDPOINT_URL": "http://minio.internal:9000/",
        "REELGATE_S3_PRESIGN_SECONDS": "300",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-example",
        "AWS_DEFAULT_REGION": "eu-west-1",
    })  # fmt: skip
    storage = storage_from_settings(settings)
    assert isinstance(storage, S3Storage)
    assert storage.location == S3Location(bucket="media-bucket", prefix="reelgate/prod",
                                          endpoint_url="http://minio.internal:9000", region="eu-west-1",
                                          access_key_id="AKIDEXAMPLE", secret_access_key="secret-example",
                                          presign_seconds=300)  # fmt: skip
    assert "secret-example" not in repr(settings) and "secret-example" not in repr(storage.location)
    assert Settings.from_env({"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-west-1"}).aws_region == "us-west-2"


def test_credentials_left_out_come_from_botocores_chain() -> None:
    storage = storage_from_settings(Settings.from_env({"REELGATE_STORAGE_URL": "s3://bucket"}))
    assert isinstance(storage, S3Storage)
    assert storage.location == S3Location(bucket="bucket")  # no prefix, AWS itself, keys from a role or ~/.aws


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///prefix", "http://bucket/x", "file://relative/path", "file:relative", "assets", "s3://b/p?x=1"],
)
def test_a_malformed_storage_url_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="REELGATE_STORAGE_URL"):
        Settings.from_env({"REELGATE_STORAGE_URL": url})
