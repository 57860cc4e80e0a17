"""Orchestration over the core: probes with history, undo and reset."""
