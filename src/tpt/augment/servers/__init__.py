"""Managed teacher servers for `tpt augment --serve vllm|sglang|llama.cpp`: start, watch, restart, stop.

A teacher of augment's executors (`tpt.augment.executors.Teacher`): `options` adds `--serve` and builds
the teacher, `engines` holds each engine's exact command line, `server` supervises one server process,
`supervised` is the client backend that talks to it. Named by augment by import string only; this
package imports augment, never the reverse.
"""
