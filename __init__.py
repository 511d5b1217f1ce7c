"""SwiftI2V for ComfyUI: 2K image-to-video with Conditional Segment-wise Generation.

ComfyUI loads this package from custom_nodes/ and calls ``comfy_entrypoint`` (V3 schema).
Outside ComfyUI (tests, tools) there is nothing to register.
"""
try:
    from comfy_api.latest import ComfyExtension
except ImportError:      # not running inside ComfyUI
    ComfyExtension = None

if ComfyExtension is not None:
    from .nodes import NODES

    class SwiftI2VExtension(ComfyExtension):
        async def get_node_list(self):       # at start-up, in every ComfyUI version
            from .nodes.bridge import work_dir
            work_dir.sweep_at_start()
            return list(NODES)

    async def comfy_entrypoint() -> "SwiftI2VExtension":
        return SwiftI2VExtension()

