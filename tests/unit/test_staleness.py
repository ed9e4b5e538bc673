from acelib.trainer.staleness import AdmissionControl


def test_sync_admission_is_one_step_of_groups_at_a_time():
    a = AdmissionControl(groups_per_step=2, max_staleness=0)
    assert a.admit(steps_done=0, wanted=5) == 2      # only this step's groups
    assert a.admit(steps_done=0, wanted=1) == 0      # nothing more until the learner steps
    assert a.admit(steps_done=1, wanted=5) == 2


def test_async_admission_runs_at_most_max_staleness_steps_ahead():
    a = AdmissionControl(groups_per_step=3, max_staleness=2)
    assert a.capacity(0) == 9                     # (0 + 2 + 1) * 3
    assert a.admit(0, 10) == 9
    assert a.capacity(0) == 0 and a.capacity(1) == 3
    a.cancel(2)                                   # abandoned groups give their slots back
    assert a.capacity(0) == 2


def test_resume_rebuilds_admission_from_the_checkpoint_alone():
    """Review F2: groups in flight at a crash are gone, so a resume at step N has exactly N·B groups started; any
    state written outside the checkpoint (e.g. step N+1's counter in run.json) must not shrink the capacity."""
    for B, S, n in [(1, 0, 5), (2, 1, 3), (32, 2, 7)]:
        a = AdmissionControl.resumed(B, S, steps_done=n)
        assert a.capacity(n) == (S + 1) * B                  # a full pipeline again, never 0


def test_groups_finishing_in_order_are_at_most_max_staleness_old():
    # Simulate: admit whenever possible; the learner consumes groups in admission order, B per step.
    B, s = 2, 1
    a = AdmissionControl(B, s)
    version, started_at, consumed = 0, [], 0
    for _ in range(20):
        n = a.admit(version, 100)
        started_at += [version] * n
        batch = started_at[consumed:consumed + B]
        consumed += B
        assert all(version - v <= s for v in batch)
        version += 1


def test_a_filtered_learner_step_does_not_stall_admission():
    # Regression: admission used the policy version, which stays put when every group of a step is filtered
    # (zero reward variance); with one group per step the run then deadlocked after its first step.
    a = AdmissionControl(groups_per_step=1, max_staleness=1)
    assert a.admit(steps_done=0, wanted=5) == 2
    assert a.admit(steps_done=0, wanted=5) == 0
    assert a.admit(steps_done=1, wanted=5) == 1   # a batch was consumed, no update made, the policy unchanged
