"""Tracking URIs as messages and logs show them: credentials never appear."""

from __future__ import annotations

import pytest

from leadready.features.registry import redacted

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("https://ana:s3cret@mlflow.example.com/", "https://***@mlflow.example.com/"),
        ("http://token@10.0.0.5:5000", "http://***@10.0.0.5:5000"),
        ("postgresql+psycopg://app:pw@db/mlflow", "postgresql+psycopg://***@db/mlflow"),
        ("databricks://profile", "databricks://profile"),
        ("sqlite:////srv/models/mlflow.db", "sqlite:////srv/models/mlflow.db"),
        ("file:///tmp/mlruns", "file:///tmp/mlruns"),
    ],
)
def test_credentials_in_a_tracking_uri_are_redacted(uri, shown):
    assert redacted(uri) == shown


def test_an_at_sign_in_the_path_is_not_taken_for_credentials():
    assert redacted("sqlite:////srv/team@x/mlflow.db") == "sqlite:////srv/team@x/mlflow.db"
