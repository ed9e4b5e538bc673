"""Warm start: a short supervised stage on expert steps before RL, built from the training suite only, cached.

Why: SmolLM2-135M repairs none of 96 one-line bugs out of the box, and GRPO learns nothing from groups that never
succeed; imitation of 32 repairs took it to 95/96 on the same bug kinds (/work/shared/docs/probes, ML-Agent does
the same before its RL). Both extremes carry no GRPO signal, so the warm start covers only SOME mutation kinds
(`WarmStartConfig.kinds`) and RL trains on the others (`TrainConfig.seeds.kinds`), on improve seeds and drafts:
the frontier. `success_by_kind` measures the policy on held-out seeds per task kind, before and after.

Expert step: the agent's own prompt for a seed state (a mutated compact baseline, really run: its traceback or
the grader's verdict is in the prompt) → the fix. In the `script` format the fix is a plan line plus the compact
baseline in one fenced block; in `edit` format a plan line plus the SEARCH/REPLACE blocks that undo the mutation
(the smallest unique hunks of a line diff). Trained with transformers' Trainer (loss on the response tokens only,
bf16 autocast on CPU). The result is an HF directory under `<cache>/models/warm-<recipe hash>/`, written to a
temporary directory and renamed, so a later run (or a resume) reuses it; its manifest records the recipe.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from acelib.config import ConfigError, option

RECIPE_VERSION = 1
EXAMPLES_SEED_OFFSET = 7919  # the warm-start examples are other draws than the RL seeds (seed offset 0)


@dataclasses.dataclass
class WarmStartConfig:
    enabled: bool = option(False, "run a supervised warm start on expert steps before RL (cached after the first run)")
    kinds: tuple[str, ...] = option(
        ("file_name", "missing_import", "makedirs", "header"),
        "mutation kinds whose repairs the warm start imitates (acelib.tasks.suites.mutations.KINDS); RL should "
        "train on other kinds (seeds.kinds), where the policy is neither hopeless nor saturated")
    examples_per_competition: int = option(3, "expert repairs per training competition (train split)")
    drafts: bool = option(False, "also imitate drafting: the root prompt → its compact baseline (script format)")
    epochs: int = option(2, "passes over the examples")
    lr: float = option(3e-5, "peak learning rate (linear warm-up over 10% of the steps, then constant)")
    batch_size: int = option(1, "examples per optimizer step")
    max_length: int = option(3072, "longest prompt + response in tokens; longer examples are dropped")

    def validate(self) -> None:
        if self.examples_per_competition < 0 or self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("warm_start: examples_per_competition ≥ 0, epochs ≥ 1, batch_size ≥ 1, lr > 0")
        if self.kinds:
            from acelib.tasks.suites.mutations import KINDS
            unknown = [k for k in self.kinds if k not in KINDS]
            if unknown:
                raise ConfigError(f"warm_start.kinds: unknown {unknown}; choose from {list(KINDS)}")

    def __post_init__(self) -> None:
        self.validate()


# ---------------------------------------------------------------------------------------------- expert responses
def edit_blocks(broken: str, fixed: str) -> str:
    """SEARCH/REPLACE blocks turning `broken` into `fixed` up to blank lines, as the agent's parser applies them
    (in order, each to the text the previous ones left). Hunks come from a diff of the non-blank lines (the parser
    trims blank edges of a SEARCH part, so a block must start and end on a non-blank line), one at a time against
    the partly edited script, because an earlier block can create a second copy of a later block's lines (a moved
    line); each is widened by neighbouring lines until its SEARCH text occurs exactly once."""
    from acelib.agent.parse import EditBlock, apply_edits

    current = broken.splitlines()
    b = [line.rstrip() for line in fixed.splitlines() if line.strip()]
    blocks = []
    for _ in range(2 * (len(current) + len(b)) + 1):   # each round fixes one hunk
        idx = [i for i, line in enumerate(current) if line.strip()]
        a = [current[i].rstrip() for i in idx]
        if a == b:
            break
        _, i1, i2, j1, j2 = next(op for op in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
                                 if op[0] != "equal")
        bare = [line.rstrip() for line in current]   # apply_edits' matching: trailing spaces ignored
        lo, hi = i1, i2
        while True:
            if hi > lo:
                search = bare[idx[lo]:idx[hi - 1] + 1]
                if sum(bare[p:p + len(search)] == search for p in range(len(bare) - len(search) + 1)) == 1:
                    break
            if lo == 0 and hi == len(a):
                raise ValueError("edit_blocks: no unique SEARCH text, even the whole script")
            lo, hi = max(lo - 1, 0), min(hi + 1, len(a))
        start, stop = idx[lo], idx[hi - 1] + 1
        p = idx[i1] if i1 < len(a) else stop          # where the hunk starts in `current`
        q = idx[i2 - 1] + 1 if i2 > i1 else p         # where the kept lines after it start
        block = EditBlock("\n".join(current[start:stop]), "\n".join(current[start:p] + b[j1:j2] + current[q:stop]))
        blocks.append(block)
        current = apply_edits("\n".join(current), [block]).splitlines()
    return "\n\n".join(f"<<<<<<< SEARCH\n{x.search}\n=======\n{x.replace}\n>>>>>>> REPLACE" for x in blocks)


def expert_response(state, fixed: str, response_format: str) -> str:
    """What an expert answers to `state`: a one-line plan, then the fix in the run's response format."""
    from acelib.agent.policy import fenced
    if not state.code.strip():
        return fenced(fixed, "A simple, robust baseline: read the data, fit a standard model, validate, write the "
                             "submission.")
    plan = "The last run failed; this fixes the line that broke it and keeps the rest of the script."
    if response_format == "edit":
        return f"{plan}\n\n{edit_blocks(state.code, fixed)}\n"
    return fenced(fixed, plan)


def example_draw(cfg) -> dict:
    """Which mutations the warm start imitates (`acelib.agent.seeds.seed_jobs` / `seed_states` arguments): train
    split, drawn apart from the RL seeds by a seed offset."""
    ws = cfg.warm_start
    return dict(split="train", kinds=ws.kinds, per_competition=ws.examples_per_competition, improve=False,
                seed=cfg.seed + EXAMPLES_SEED_OFFSET)


def examples(cfg, competitions: dict[str, str]) -> list[tuple[list[dict], str]]:
    """(chat messages, expert response) pairs from the training suite: mutations of the warm-start kinds (train
    split, really run for their outputs) and, with `drafts`, root drafts."""
    from acelib.agent import agent_messages
    from acelib.agent.seeds import seed_states
    from acelib.agent.state import State
    from acelib.tasks import load
    from acelib.tasks.suites import compact_baseline

    ws = cfg.warm_start
    states = seed_states(list(competitions), **example_draw(cfg), config=cfg.agent, limits=cfg.sandbox,
                         workers=cfg.resources.sandbox_workers)
    if ws.drafts:
        states += [State(competition_id=c) for c in competitions]
    comps = {c: load(root) for c, root in competitions.items()}
    out = []
    for s in states:
        fixed = compact_baseline(s.competition_id)
        messages = agent_messages(s, comps[s.competition_id], cfg.agent, cfg.sandbox.timeout_s)
        out.append((messages, expert_response(s, fixed, cfg.agent.response_format)))
    return out


# ---------------------------------------------------------------------------------------------- the stage
def recipe(cfg, base_model_dir: str, competitions: dict[str, str]) -> dict:
    """Everything the warm-started weights depend on (its hash names the cache directory)."""
    return {"v": RECIPE_VERSION, "base": cfg.model, "base_dir": str(base_model_dir),
            "warm_start": dataclasses.asdict(cfg.warm_start), "competitions": sorted(competitions),
            "response_format": cfg.agent.response_format, "prompt": dataclasses.asdict(cfg.agent.prompt),
            "seed": cfg.seed}


def warm_start_task(cfg, base_model_dir: str, competitions: dict[str, str], log_file: str) -> tuple[str, str]:
    """`warm_start` as the trainer runs it, in a Ray task of its own (its memory is freed when it ends) with its
    output in `log_file`: (model directory, one line saying what happened)."""
    from acelib.trainer.learner_group import redirect_output, set_torch_threads
    redirect_output(log_file)
    # Ray starts a task with num_cpus=0 under OMP_NUM_THREADS=1: torch then trains on one core (17.8 s per step of
    # the CPU preset's warm start, against 9.4 s with both cores)
    set_torch_threads(cfg.resources.torch_threads)
    cached = (cache_dir_for(cfg, base_model_dir, competitions) / "warm_start.json").is_file()
    model = warm_start(cfg, base_model_dir, competitions)
    stats = json.loads((model / "warm_start.json").read_text())
    how = "cached" if cached else f"built: {stats['examples']} examples × {cfg.warm_start.epochs} epochs in " \
                                  f"{stats['train_s']:.0f} s"
    return str(model), f"warm start ({how}): {model}"


def cache_dir_for(cfg, base_model_dir: str, competitions: dict[str, str]) -> Path:
    """Where the warm start of this recipe is cached (named by the recipe's hash)."""
    from acelib.models import cache_root
    rec = recipe(cfg, base_model_dir, competitions)
    key = hashlib.sha256(json.dumps(rec, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / f"warm-{cfg.model}-{key}"


def warm_start(cfg, base_model_dir: str, competitions: dict[str, str]) -> Path:
    """The warm-started model directory for this recipe: from the cache, or trained now (then cached)."""
    rec = recipe(cfg, base_model_dir, competitions)
    target = cache_dir_for(cfg, base_model_dir, competitions)
    if (target / "warm_start.json").is_file():
        print(f"warm start: cached {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    pairs = examples(cfg, competitions)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        stats = train_sft(base_model_dir, pairs, cfg.warm_start, tmp / "model", seed=cfg.seed)
        (tmp / "model" / "warm_start.json").write_text(json.dumps({"recipe": rec, **stats}, indent=1, default=str))
        os.rename(tmp / "model", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"warm start: {stats['examples']} examples × {cfg.warm_start.epochs} epochs in {stats['train_s']:.0f} s "
          f"→ {target}")
    return target


def train_sft(base_model_dir: str, pairs: list[tuple[list[dict], str]], ws: WarmStartConfig, out_dir: Path,
              seed: int = 0) -> dict:
    """Supervised fine-tuning on (messages, response) pairs with transformers' Trainer; loss on response tokens."""
    import torch
    from transformers import (AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer,
                              TrainingArguments)

    tok = AutoTokenizer.from_pretrained(base_model_dir)
    data = []
    for messages, response in pairs:
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        answer = tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        if len(prompt) + len(answer) <= ws.max_length:
            data.append({"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer})
    if not data:
        raise ValueError("warm start: no example fits warm_start.max_length; raise it or shorten the prompt budgets")
    model = AutoModelForCausalLM.from_pretrained(base_model_dir, dtype=torch.float32)
    steps = ws.epochs * -(-len(data) // ws.batch_size)
    args = TrainingArguments(
        output_dir=str(out_dir.parent / "trainer"), per_device_train_batch_size=ws.batch_size,
        num_train_epochs=ws.epochs, learning_rate=ws.lr, warmup_steps=max(1, steps // 10),
        lr_scheduler_type="constant_with_warmup", bf16=True, use_cpu=not torch.cuda.is_available(),
        logging_steps=max(1, steps // 8), save_strategy="no", report_to=[], seed=seed, data_seed=seed,
        disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=data,
                      data_collator=DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=-100))
    t0 = time.perf_counter()
    result = trainer.train()
    train_s = time.perf_counter() - t0
    # saved in the base checkpoint's own dtype, so engines run it as they run the base model (bf16 for SmolLM2)
    model.to(getattr(torch, str(getattr(model.config, "dtype", None) or "float32").removeprefix("torch."))
             ).save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    for f in ("generation_config.json",):
        if (Path(base_model_dir) / f).is_file():
            shutil.copy(Path(base_model_dir) / f, out_dir / f)
    return {"examples": len(data), "dropped_too_long": len(pairs) - len(data), "steps": steps,
            "train_s": train_s, "final_loss": float(result.training_loss),
            "tokens": sum(len(d["input_ids"]) for d in data) * ws.epochs}


# ---------------------------------------------------------------------------------------------- measuring it
def success_by_kind(model_dir: str, competitions: dict[str, str], kinds, per_kind: int, samples: int, cfg,
                    split: str = "eval", include_drafts: bool = True, seed: int = 0) -> dict[str, dict]:
    """One step from held-out seeds of each mutation kind (and from root drafts): valid rate, format errors and
    the share of responses identical to the broken script, per task kind. The policy samples at the run's
    temperature, in the run's response format."""
    from acelib.agent import agent_messages, step_batch
    from acelib.agent.seeds import seed_states
    from acelib.agent.state import State, normalise_code
    from acelib.rollout import make_engine
    from acelib.rollout.base import SamplingParams
    from acelib.sandbox import SandboxPool
    from acelib.tasks import load

    comps = {c: load(root) for c, root in competitions.items()}
    tasks: list[tuple[str, State]] = []
    for kind in kinds:
        for s in seed_states(list(competitions), split=split, kinds=[kind], per_competition=per_kind, improve=False,
                             seed=seed, config=cfg.agent, limits=cfg.sandbox, workers=cfg.resources.sandbox_workers):
            tasks.append((kind, s))
    if include_drafts:
        tasks += [("draft", State(competition_id=c)) for c in competitions]
    engine = make_engine(cfg.components().rollout, model_dir, backend=cfg.backend, seed=seed)
    try:
        prompts = [agent_messages(s, comps[s.competition_id], cfg.agent, cfg.sandbox.timeout_s) for _, s in tasks]
        outs = engine.generate(prompts, SamplingParams(temperature=cfg.temperature,
                                                       max_new_tokens=cfg.max_new_tokens), n=samples)
    finally:
        engine.close()
    flat = [(kind, s, o.text) for (kind, s), group in zip(tasks, outs) for o in group]
    with SandboxPool(workers=cfg.resources.sandbox_workers, limits=cfg.sandbox) as pool:
        results = step_batch([s for _, s, _ in flat], [t for _, _, t in flat], [comps[s.competition_id] for _, s, _
                                                                                   in flat], pool, cfg.agent)
    report: dict[str, dict] = {}
    for (kind, s, _), r in zip(flat, results):
        k = report.setdefault(kind, {"samples": 0, "valid": 0, "format_error": 0, "identical_to_broken": 0})
        k["samples"] += 1
        k["valid"] += r.info.get("outcome") == "valid"
        k["format_error"] += r.info.get("outcome") == "format_error"
        k["identical_to_broken"] += bool(s.code.strip()) and normalise_code(r.child.code) == normalise_code(s.code)
    for k in report.values():
        k["valid_rate"] = k["valid"] / k["samples"]
    return report
