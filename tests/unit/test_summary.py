"""The run's headline: first third vs last third of the steps, valid rate on debug + improve, z-test."""
import json
import math

import pytest

from acelib.trainer.summary import headline, main, report


def _row(step, debug_n, debug_valid, improve_n=0, improve_valid_changed=0, draft_n=0):
    return {"step": step, "samples/debug": debug_n, "samples/valid_changed/debug": debug_valid,
            "samples/improve": improve_n, "samples/valid_changed/improve": improve_valid_changed,
            "samples/draft": draft_n, "samples/valid_changed/draft": 0, "rate/identical_to_parent": 0.25}


def test_thirds_rates_and_the_two_sided_z_test_by_hand():
    # 6 steps: first third = steps 1-2 (4 of 32 valid), last third = steps 5-6 (20 of 32); middle ignored
    rows = [_row(1, 8, 1, 8, 1), _row(2, 8, 1, 8, 1), _row(3, 16, 16), _row(4, 16, 0),
            _row(5, 8, 5, 8, 5), _row(6, 8, 5, 8, 5, draft_n=8)]
    h = headline(rows)
    assert h["steps"] == 6 and h["thirds_of"] == 2
    assert h["valid_rate_first_third"] == 4 / 32 and h["valid_rate_last_third"] == 20 / 32
    p1, p2, pooled = 4 / 32, 20 / 32, 24 / 64          # pooled two-proportion z statistic
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (2 / 32))
    assert h["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)   # two-sided normal tail
    assert h["debug_valid_rate_first_third"] == 2 / 16 and h["improve_valid_rate_last_third"] == 10 / 16
    assert h["draft_valid_rate_last_third"] == 0.0 and h["draft_valid_rate_first_third"] is None
    text = report({**h, "run_dir": "/r", "mlflow_run_id": "abc"})
    assert "12% in the first third of 6 steps → 62% in the last third" in text and "a significant rise" in text


def test_no_signal_has_no_p_value_and_says_so(tmp_path, capsys):
    rows = [_row(s, 8, 0) for s in range(1, 4)]
    h = headline(rows)
    assert h["p_value"] is None and h["valid_rate_first_third"] == 0.0
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"mlflow_run_id": "r1"}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main([str(run)])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    out = json.loads(last)                                   # the last line is one JSON object
    assert {"steps", "valid_rate_first_third", "valid_rate_last_third", "p_value", "run_dir",
            "mlflow_run_id"} <= set(out) and out["steps"] == 3 and out["mlflow_run_id"] == "r1"
