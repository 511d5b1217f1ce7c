"""The one package that calls into ComfyUI internals, one module per concern.

Node files translate types and call this package and ``swift_core``; when ComfyUI changes, only
this package changes. Checked against ComfyUI 0.3.64, 0.8.0 and 0.33.0 (see tests/host/).

- ``checks``: input checks that need ComfyUI objects (models, VAEs), as clear input errors;
- ``fits``: requests too large for host RAM or the device, refused before allocation;
- ``auto_fit``: ``auto`` M / VAE tiles from the device's free memory;
- ``oom``: an out-of-memory window or VAE tile retried smaller;
- ``progress``: progress bar, previews, Cancel;
- ``vae_stream``: the Wan 2.2 VAE driven block by block with its causal state carried;
- ``vae_protocol``: that VAE protocol checked at run time, and core's own decode as fallback;
- ``vae_io``: the stream or core's fallback, chosen per run, for the nodes;
- ``stage1``: Stage I conditioning (core's WanImageToVideo) and sampling (core's KSampler path);
- ``csg``: Stage II, each CSG window one core masked-sampling call;
- ``rope``: RoPE positions of a gathered window, as a DIFFUSION_MODEL wrapper;
- ``video_file``: the mp4 written as frames arrive, and the VIDEO backed by it;
- ``streaming``: finished latent blocks decoded and appended to that video as they come;
- ``stage2_run``: the one Stage II run (checks, plan, sampling, the streamed video);
- ``run_card``: each node measured into the prompt's run card; ``device_meter``: the measures.
"""
