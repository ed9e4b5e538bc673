import os

# Offline, quiet, CPU-friendly defaults for every test (the Makefile sets the same for `make test`).
for k, v in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MPLBACKEND": "Agg", "HF_HUB_OFFLINE": "1",
             "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "DS_BUILD_OPS": "0"}.items():
    os.environ.setdefault(k, v)
