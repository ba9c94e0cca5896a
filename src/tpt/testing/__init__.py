"""Test doubles shipped with tpt: a fault-injecting OpenAI-compatible server (openai_stub)."""
