"""A real ComfyUI (``--cpu``, 127.0.0.1) for the host tests and benchmarks: the server, tiny model
files in the key layouts ComfyUI detects, test clips, and the graphs the tests queue."""
