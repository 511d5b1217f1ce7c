import pytest
from hypothesis import given
from hypothesis import strategies as st

from swift_core import plan_segments, window_positions


def test_paper_partition():
    plan = plan_segments(21, m=3, n=1)
    assert [s.current for s in plan] == [(1, 2, 3), (4, 5, 6), (7, 8, 9), (10, 11, 12),
                                         (13, 14, 15), (16, 17, 18), (19, 20)]
    assert [s.context for s in plan] == [(0,), (0, 3), (0, 6), (0, 9), (0, 12), (0, 15), (0, 18)]
    assert plan[0].window == (0, 1, 2, 3)


def test_without_csg_is_one_window():
    (only,) = plan_segments(21, m=20, n=1)
    assert only.context == (0,) and only.current == tuple(range(1, 21))
    assert len(plan_segments(21, m=100, n=3)) == 1


@given(st.integers(2, 200), st.integers(1, 12), st.integers(0, 6))
def test_plan_properties(blocks, m, n):
    plan = plan_segments(blocks, m, n)
    owned = [b for s in plan for b in s.current]
    assert sorted(owned) == list(range(1, blocks)) == owned          # each block once, in order
    for k, s in enumerate(plan):
        assert s.index == k
        assert s.context[0] == 0 and len(set(s.window)) == len(s.window)
        assert max(s.context) < min(s.current)                      # context precedes current
        assert list(s.window) == sorted(s.window)
        assert len(s.window) <= 1 + n + m and len(s.current) <= m
        expected_nb = [b for b in range(min(s.current) - n, min(s.current)) if b > 0]
        assert list(s.context[1:]) == expected_nb                   # the N blocks just before


@pytest.mark.parametrize("args,msg", [((21, 0, 1), "m=0"), ((21, 3, -1), "n=-1"),
                                      ((1, 3, 1), "num_blocks=1")])
def test_plan_errors(args, msg):
    with pytest.raises(ValueError, match=msg):
        plan_segments(*args)


def test_positions():
    seg = plan_segments(21)[2]
    assert window_positions(seg, "window").tolist() == [0, 1, 2, 3, 4]
    assert window_positions(seg, "absolute").tolist() == [0, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="rope='relative'"):
        window_positions(seg, "relative")


def test_replan_from_keeps_final_segments_and_covers_the_rest():
    from swift_core import replan_from
    plan = plan_segments(21, 3, 1)
    new = replan_from(plan, 2, 2, 1)
    assert new[:2] == plan[:2]
    assert [s.index for s in new] == list(range(len(new)))
    assert new[2].current == (7, 8) and new[2].context == (0, 6)
    covered = [b for s in new for b in s.current]
    assert covered == list(range(1, 21))
    assert len(new[2].current) == 2 and len(plan[0].current) == 3
    # re-planned as a plan of m=2 from block 7 would be
    assert new[2:] == plan_segments(21, 2, 1, first=7, first_index=2)
