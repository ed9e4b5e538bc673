import os

# Offline, quiet, CPU-friendly defaults for every test (the Makefile sets the same for `make test`).
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
             "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DS_BUILD_OPS": "0"}.items():
    os.environ.setdefault(k, v)


import pytest  # noqa: E402


@pytest.fixture
def fake_competition(tmp_path):
    """make(public={name: text}, private={name: text}, name="comp") → a custom Competition with only those files
    (what the sandbox reads: its public and private folders); make(None) → one whose folders do not exist."""
    from acelib.tasks.competition import Competition

    def make(public: dict[str, str] | None, private: dict[str, str] | None = None, name: str = "comp"):
        c = Competition(id=name, root=tmp_path / name, metric="accuracy", is_lower_better=False, id_column="id",
                        target_columns=("y",), suite="custom")
        if public is None:
            return c
        for folder, files in ((c.public_dir, public), (c.private_dir, private or {})):
            folder.mkdir(parents=True)
            for fname, text in files.items():
                (folder / fname).write_text(text)
        return c
    return make
