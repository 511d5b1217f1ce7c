"""Batch SwiftI2V videos through ComfyUI's HTTP API: ``python -m swift_batch --help``."""
from .client import ComfyClient, ComfyError, PromptError, ServerUnreachable

__all__ = ["ComfyClient", "ComfyError", "PromptError", "ServerUnreachable"]
