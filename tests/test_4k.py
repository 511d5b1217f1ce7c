"""4K (3840x2176) and other multiples of 32: every size rule, the tile choice, the tiling itself
and the nodes' size inputs, at the real 4K shapes (pure functions: no model runs)."""
import json
from pathlib import Path

import pytest
import torch

from swift_core.fit import TILE_STEP, choose_m, choose_tile
from swift_core.memory import GIB, WAN22_TI2V_5B
from swift_core.rules import SwiftInputError
from swift_core.sizes import VideoSize, size_from_image
from swift_core.tiling import tile_starts, tiled_apply

ROOT = Path(__file__).resolve().parents[1]
SIZES = [(3840, 2176), (4096, 2304), (3072, 1728), (2560, 1408), (1920, 1088), (2208, 1248)]


@pytest.mark.parametrize("width,height", SIZES)
def test_size_rules_at_4k_and_other_multiples_of_32(width, height):
    size = size_from_image(width + 17, height + 9, width, height, 81)   # any image size
    assert (size.width, size.height, size.blocks) == (width, height, 21)
    w1, h1 = size.stage1                             # Stage I at W/4 x H/4, multiples of 16
    assert w1 % 16 == 0 and h1 % 16 == 0 and abs(4 * w1 - width) <= 32 and abs(4 * h1 - height) <= 32
    c, t, lh, lw = size.latent_shape()
    assert (c, t, lh * 16, lw * 16) == (48, 21, height, width)        # Wan 2.2: 16 px a latent
    assert lh % 2 == 0 and lw % 2 == 0                              # whole DiT patches (2x2)
    assert (h1 // 8) % 2 == 0 and (w1 // 8) % 2 == 0                # Stage I's too (Wan 2.1, /8)
    assert size_from_image(width, height, 0, 0, 81).width == width  # 0 = from the image


def test_4k_stage1_is_960x544():
    assert VideoSize(3840, 2176, 81).stage1 == (960, 544)
    with pytest.raises(SwiftInputError, match="height"):
        VideoSize(3840, 2160, 81)                     # 2160 (UHD) is not a multiple of 32


@pytest.mark.parametrize("card_gib", [24, 16, 12])
def test_4k_tiles_cover_the_frame_and_the_plan_is_never_degenerate(card_gib):
    budget = (card_gib - 1) * GIB
    tile = choose_tile(budget, 2176, 3840, decode=True).value
    assert tile % TILE_STEP == 0 or tile == 3840
    for length in (2176, 3840):                       # in latent units, as the VAE stream tiles
        starts = tile_starts(length // 16, tile // 16, 64 // 16)
        assert starts[0] == 0 and starts[-1] + min(tile // 16, length // 16) == length // 16
    assert 1 <= choose_m(budget, WAN22_TI2V_5B, 21, 136, 240, 1).value <= 3


def test_4k_below_m_1_is_refused_with_the_size_that_fits():
    with pytest.raises(SwiftInputError, match=r"even m=1 .* at 3840x2176.*at most \d+x\d+ with "
                                              r"this aspect fits"):
        choose_m(2 * GIB, WAN22_TI2V_5B, 21, 136, 240, 1)


def test_tiling_a_4k_latent_gives_back_every_value():
    """Identity through the tiles of a 4K latent (136x240): the ramps blend to exactly 1
    everywhere, so no row or column is lost or weighted twice."""
    x = torch.rand(1, 2, 1, 136, 240)
    out = tiled_apply(x, lambda t, state: t, 64, 4, 1.0, {})
    assert out.shape == x.shape and torch.allclose(out, x, atol=1e-6)


def test_every_size_input_of_the_nodes_takes_4k():
    schemas = json.loads((ROOT / "tests" / "data" / "node_schemas.json").read_text())
    seen = 0
    for node, schema in schemas.items():
        if not node.startswith("SwiftI2V"):
            continue
        for e in schema["inputs"]:
            if e["name"] in ("width", "height") and e["type"] == "INT":
                assert e["max"] >= 3840 and e["min"] <= 0 or e["min"] <= 32, (node, e)
                seen += 1
    assert seen >= 6
