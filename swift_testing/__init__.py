"""Test support shared by tests/ and bench/ (never shipped to users): tiny random Wan models, tiny
training datasets, a torchrun helper, a memory probe, and a real ComfyUI server for host tests."""
