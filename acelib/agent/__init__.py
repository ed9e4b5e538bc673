"""The agent scaffold (paper box "MLE agent"): state → prompt → one LLM response → sandbox run → grade → reward.

    from acelib.agent import State, agent_messages, build_messages, step, step_batch, ScriptedPolicy, seed_states

docs/agent.md describes the loop and the prompts, docs/reward.md the step reward.
"""
from acelib.agent.config import AgentConfig, PromptConfig, SeedConfig
from acelib.agent.parse import ParsedAction, parse_action, parse_edit, parse_response, parse_validation_score
from acelib.agent.policy import EnginePolicy, Policy, PromptContext, Response, ScriptedPolicy, fenced
from acelib.agent.prompts import agent_messages, build_messages
from acelib.agent.reward import RewardConfig, step_reward
from acelib.agent.seeds import seed_states
from acelib.agent.state import State, state_id
from acelib.agent.step import StepResult, grade_submission, step, step_batch

__all__ = [
    "AgentConfig", "EnginePolicy", "ParsedAction", "Policy", "PromptConfig", "PromptContext", "Response",
    "RewardConfig", "ScriptedPolicy", "SeedConfig", "State", "StepResult", "agent_messages", "build_messages",
    "fenced", "grade_submission", "parse_action", "parse_edit", "parse_response", "parse_validation_score",
    "seed_states", "state_id", "step", "step_batch", "step_reward",
]
