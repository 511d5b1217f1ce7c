"""Our nodes cached as core caches nodes: a graph queued again with one more consumer (a
preview) runs none of the pack's nodes again."""
from swift_testing.comfy_host.graphs import pipeline

PACK_NODES = {"10", "11", "12", "112"}      # Stage I, Reference Builder, Stage II


def graph(prefix):
    g = pipeline(decoder=False, compare=False, save_name="cache", prefix=prefix, seed1=31)
    g["12"]["inputs"]["vae"] = ["4", 0]
    g["70"] = {"class_type": "SaveVideo", "inputs": {
        "video": ["12", 1], "filename_prefix": prefix, "format": "auto", "codec": "auto"}}
    return g


def test_a_new_preview_node_runs_none_of_our_nodes_again(client):
    g = graph("cache/video")
    client.run(g, timeout=900)
    ran = []

    def on_event(kind, data):
        if kind == "executing" and data.get("node") is not None:
            ran.append(data["node"])

    g["80"] = {"class_type": "PreviewAny", "inputs": {"source": ["12", 2]}}     # the plan
    client.run(g, on_event=on_event, timeout=900)
    assert "80" in ran and not PACK_NODES & set(ran), ran
    ran.clear()
    g["81"] = {"class_type": "PreviewAny", "inputs": {"source": ["12", 3]}}    # the card
    g["71"] = {"class_type": "SaveVideo", "inputs": {                          # a second save
        "video": ["12", 1], "filename_prefix": "cache/again", "format": "auto", "codec": "auto"}}
    client.run(g, on_event=on_event, timeout=900)
    assert {"71", "81"} <= set(ran) and not PACK_NODES & set(ran), ran


def renumbered(g, old, new):
    """``g`` with node ``old`` given the id ``new`` (as placing a subgraph renames its nodes)."""
    g = {new if k == old else k: v for k, v in g.items()}
    for node in g.values():
        for name, v in node["inputs"].items():
            if isinstance(v, list) and len(v) == 2 and v[0] == old:
                node["inputs"][name] = [new, v[1]]
    return g


def test_the_same_stage2_at_another_node_id_is_served_from_the_cache(client):
    """Stage II's cache key is its inputs alone (no hidden node id): the graph with Stage II
    under another id, as inside a placed subgraph, does not run it again."""
    g = graph("cache/renamed")
    g["80"] = {"class_type": "PreviewAny", "inputs": {"source": ["12", 2]}}
    client.run(g, timeout=900)
    ran = []

    def on_event(kind, data):
        if kind == "executing" and data.get("node") is not None:
            ran.append(data["node"])

    client.run(renumbered(g, "12", "112"), on_event=on_event, timeout=900)
    assert "112" not in ran and not PACK_NODES & set(ran), ran


def test_after_ten_runs_the_work_folder_keeps_only_the_cached_video(client, server):
    """Stage II's VIDEO handed to Save Video is a file in the pack's work folder: once a newer
    run replaces the cached result, nothing references it and it is removed. After ten runs
    the folder holds only the one ComfyUI's cache can still hand to Save Video again."""
    work = server.output / ".swifti2v_work"
    before = set(work.glob("*/swifti2v_stage2_*.mp4"))
    g = graph("cache/ten")
    for seed in range(10):
        g["12"]["inputs"]["seed"] = 100 + seed
        client.run(g, timeout=900)
        left = set(work.glob("*/swifti2v_stage2_*.mp4")) - before
        assert len(left) <= 1, sorted(p.name for p in left)
    assert not list(work.glob("*/*.part.mp4"))
    saved = sorted((server.output / "cache").glob("ten_*.mp4"))
    assert len(saved) == 10 and all(p.stat().st_size > 0 for p in saved)   # every save kept
