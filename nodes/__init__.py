"""The ComfyUI side of the pack: thin V3 nodes over swift_core; ComfyUI internals in bridge/."""
from .clips import SwiftI2VLoadClips
from .decoder import SwiftI2VSegmentDecoder
from .degrade import SwiftI2VStage1StandIn
from .reference import SwiftI2VHybridReference
from .sample_writer import SwiftI2VSampleWriter
from .seam_report import SwiftI2VSeamReport
from .stage1 import SwiftI2VStage1Sampler
from .stage1_sample_writer import SwiftI2VStage1SampleWriter
from .stage2 import SwiftI2VStage2Sampler
from .transition import SwiftI2VStageTransition

NODES = [SwiftI2VStage1Sampler, SwiftI2VHybridReference, SwiftI2VStage2Sampler,
         SwiftI2VSegmentDecoder, SwiftI2VLoadClips, SwiftI2VStageTransition,
         SwiftI2VStage1StandIn, SwiftI2VSampleWriter, SwiftI2VStage1SampleWriter, SwiftI2VSeamReport]
