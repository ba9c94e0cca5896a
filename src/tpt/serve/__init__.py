"""Managed inference servers for `tpt augment --serve vllm|sglang|llama.cpp`: start, watch, restart, stop."""
