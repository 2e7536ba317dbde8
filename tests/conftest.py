"""Shared test fixtures and paths."""

import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The read-only shared material (papers, real media fixtures) lies beside the checkout.
SHARED = pathlib.Path(os.environ.get("EMOJAX_SHARED", REPO.parent / "shared"))
MEDIA_FIXTURE = SHARED / "fixtures" / "media" / "bigbuckbunny.mp4"


@pytest.fixture
def shared_dir() -> pathlib.Path:
  if not SHARED.exists():
    pytest.fail(f"shared material not found at {SHARED}; set EMOJAX_SHARED")
  return SHARED
