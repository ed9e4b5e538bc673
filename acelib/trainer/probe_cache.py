"""The probe of the starting policy, cached next to the warm start it measures.

Why: on 2 cores the probe before RL (48 responses, really run) costs ~4 of a run's ~20 minutes, and it measures the
same thing every time a preset is rerun: a cached warm start is a fixed, content-addressed model, and the probe
tasks are fixed by the seed. So the first run from a warm start stores its step-0 probe and later runs reuse it
(printed and logged as cached); the probe after the last step is always measured. `probe.cache: false` measures
it anyway.

The key holds everything the result depends on: the model directory (the warm start's own hash), the learner's
dtype (the engines sample the learner's exported weights), the engine options and sampling parameters, the seed, the
number of responses, the agent and sandbox settings, and the rendered prompt of every probe task (so a change in
prompt code is a new key, not a stale hit).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from acelib.files import atomic_write
from acelib.trainer.payloads import ProbeResult

CACHE_VERSION = 1


def cache_file(key: dict, root: Path | None = None) -> Path:
    """Where the probe for `key` is stored: `$ACELIB_CACHE_DIR/probes/<model dir name>-<hash of key>.json`."""
    if root is None:
        from acelib.models import cache_root
        root = cache_root().parent     # cache_root() is $ACELIB_CACHE_DIR/models
    digest = hashlib.sha256(json.dumps({"v": CACHE_VERSION, **key}, sort_keys=True, default=str).encode())
    return Path(root) / "probes" / f"{Path(str(key['model'])).name}-{digest.hexdigest()[:16]}.json"


def load(path: Path) -> ProbeResult | None:
    """The cached probe, or None when there is none (or it cannot be read: then it is measured again)."""
    try:
        return ProbeResult(**json.loads(Path(path).read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        print(f"warning: ignoring the unreadable probe cache {path} ({e}); the probe runs again")
        return None


def save(path: Path, result: ProbeResult) -> None:
    """Store a measured probe (written to a temporary sibling and renamed: readers never see half a file). A probe
    whose generation failed (nothing counted) is not stored."""
    if result.counts()[1] == 0:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(dataclasses.asdict(result)))


def key(cfg, model_dir: str, states: list, competitions: dict[str, str]) -> dict:
    """What the starting policy's probe depends on (module docstring); `states` are the probe tasks, `competitions`
    the prepared competitions (id → root), whose descriptions and data previews the prompts show."""
    from acelib import __version__
    from acelib.agent import agent_messages
    from acelib.config import to_dict
    from acelib.tasks import load as load_competition

    comps = cfg.components()
    loaded = {cid: load_competition(competitions[cid]) for cid in dict.fromkeys(s.competition_id for s in states)}
    prompts = [agent_messages(s, loaded[s.competition_id], comps.agent, comps.sandbox.timeout_s) for s in states]
    # where weights travel and how long rollouts wait to batch do not change the probe (one exclusive engine call)
    rollout = {k: v for k, v in dataclasses.asdict(comps.rollout).items() if k not in ("sync_dir", "batch_window_s")}
    return {"model": str(model_dir), "learner_dtype": comps.learner.dtype, "backend": cfg.backend,
            "rollout": rollout, "temperature": cfg.temperature, "top_p": cfg.top_p, "top_k": cfg.top_k,
            "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed, "samples": cfg.probe.samples,
            "agent": to_dict(comps.agent), "sandbox": dataclasses.asdict(comps.sandbox),
            "prompts": prompts, "acelib": __version__}
