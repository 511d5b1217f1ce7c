"""Which of a node's outputs the prompt running consumes, read from ComfyUI's queue instead of
hidden PROMPT / UNIQUE_ID inputs (those would put the node's id into its cache key: the same
node at another id, as inside every placed subgraph, would not share its cached result).

Core internals, checked at run time: the executing context (prompt and node id) and
``PromptServer.instance.prompt_queue.currently_running`` (items ``(number, prompt_id, prompt,
...)``). Where either is missing or changed the answer is None (not known), never a guess.
"""
from __future__ import annotations

from .checks import output_used
from .run_card import executing


def running_prompt(prompt_id: str) -> dict | None:
    """The API-format prompt ComfyUI is running as ``prompt_id``, or None."""
    try:
        from server import PromptServer
        items = list(PromptServer.instance.prompt_queue.currently_running.values())
    except (ImportError, AttributeError, TypeError):
        return None
    for item in items:
        if isinstance(item, (list, tuple)) and len(item) > 2 and str(item[1]) == prompt_id \
                and isinstance(item[2], dict):
            return item[2]
    return None


def output_consumed(index: int) -> bool | None:
    """Whether any node of the prompt running takes output ``index`` of the node executing;
    None where ComfyUI does not say (no context, a node made during execution)."""
    prompt_id, node_id = executing()
    if prompt_id is None or node_id is None:
        return None
    prompt = running_prompt(prompt_id)
    if prompt is None or node_id not in prompt:
        return None
    return output_used(prompt, node_id, index)
