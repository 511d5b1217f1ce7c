"""Stage II training for SwiftI2V (paper Sec. 3.2, App. B.1): CSG teacher forcing on diffusers'
Wan 2.2 TI2V transformer, run by torchrun with FSDP2 and torch's distributed checkpointing.

    torchrun --nproc_per_node 8 -m swift_train.train --data samples/ --base wan2.2_ti2v_5B_fp16.safetensors --out run/
    python -m swift_train.export --run run/ --out swifti2v_stage2.safetensors

Needs requirements-train.txt (never requirements.txt). The step itself is plain torch in
``swift_core.training``; this package only loads, shards, checkpoints and exports.
"""
