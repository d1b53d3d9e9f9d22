"""Rewards computed by HTTP endpoints: another rewardkit server, vLLM / SGLang scoring APIs."""
