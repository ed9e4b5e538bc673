import os

# Offline, quiet, CPU-friendly defaults for every test (the Makefile sets the same for `make test`).
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
             "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DS_BUILD_OPS": "0"}.items():
    os.environ.setdefault(k, v)


import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@dataclasses.dataclass
class FakeCompetition:
    """The part of a Competition the sandbox reads: where its public and private data live."""

    root: Path

    @property
    def public_dir(self) -> Path:
        return self.root / "prepared" / "public"

    @property
    def private_dir(self) -> Path:
        return self.root / "prepared" / "private"


@pytest.fixture
def fake_competition(tmp_path):
    """make(public={name: text}, private={name: text}, name="comp") → a FakeCompetition with those files;
    make(None) → one whose folders do not exist."""
    def make(public: dict[str, str] | None, private: dict[str, str] | None = None, name: str = "comp"):
        c = FakeCompetition(tmp_path / name)
        if public is None:
            return c
        for folder, files in ((c.public_dir, public), (c.private_dir, private or {})):
            folder.mkdir(parents=True)
            for fname, text in files.items():
                (folder / fname).write_text(text)
        return c
    return make
