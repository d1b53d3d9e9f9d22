"""The conversation the OpenRLHF chat-markup tests render (tests/test_stop46_openrlhf.py,
tests/test_stop47_openrlhf.py) and where TRL keeps its real chat templates."""

from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATES = Path(pytest.importorskip("trl").__file__).parent / "chat_templates"
SYS = {"role": "system", "content": "You are a careful geography tutor."}
CONV = [
    {"role": "user", "content": "Name a large city in France."},
    {"role": "assistant", "content": "Lyon."},
    {"role": "user", "content": "What is the capital of France?"},
]
RESPONSE = "The capital of France is Paris."
