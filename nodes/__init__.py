"""The ComfyUI side of the pack: thin V3 nodes over swift_core; ComfyUI internals in bridge/."""
from .decoder import SwiftI2VSegmentDecoder
from .reference import SwiftI2VHybridReference
from .stage1 import SwiftI2VStage1Sampler
from .stage2 import SwiftI2VStage2Sampler

NODES = [SwiftI2VStage1Sampler, SwiftI2VHybridReference, SwiftI2VStage2Sampler,
         SwiftI2VSegmentDecoder]
