"""A run whose executor died is told apart from one that failed by its exception type, not by its traceback text."""
from __future__ import annotations

from concurrent.futures import Future

import pytest

from acelib.agent import AgentConfig, step_batch
from acelib.agent.policy import fenced
from acelib.agent.state import State
from acelib.sandbox import executor_lost


class FailingPool:
    """A sandbox pool whose every run fails with `exc` (what an ExecutorClient Future raises)."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def submit(self, code, competition, limits=None) -> Future:
        fut = Future()
        fut.set_exception(self.exc)
        return fut


def test_ray_actor_errors_are_executor_losses_other_errors_are_not():
    ray_exceptions = pytest.importorskip("ray.exceptions")
    assert executor_lost(ray_exceptions.ActorDiedError())
    assert executor_lost(ray_exceptions.RayActorError())
    assert executor_lost(ray_exceptions.ActorUnavailableError("node gone", b"\0" * 16))
    # a traceback that merely mentions the name is not a lost executor (the old text search said it was)
    assert not executor_lost(RuntimeError("RayActorError in the program's output"))
    assert not executor_lost(TimeoutError("no executor was live"))


@pytest.mark.parametrize("lost", [True, False])
def test_step_batch_marks_a_lost_executor_on_the_masked_sample(lost):
    ray_exceptions = pytest.importorskip("ray.exceptions")
    exc = ray_exceptions.ActorDiedError() if lost else RuntimeError("RayActorError: said by the grader")
    parent = State("toy", code="print(1)\n", plan="P.", exec_status="error", output="boom")
    competition = type("Comp", (), {"id": "toy"})()
    r = step_batch([parent], [fenced("print(2)\n")], competition, sandbox=FailingPool(exc), config=AgentConfig())[0]
    assert r.masked and r.info["outcome"] == "infra_error"
    assert r.info["executor_lost"] is lost
    assert type(exc).__name__ in r.info["error"]       # the traceback is still kept for infra_errors.log
