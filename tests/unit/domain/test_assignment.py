import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from domain.assignment import OperatorCandidate, choose_operator, next_escalation_target

T0 = datetime(2026, 1, 12, 9, 0, tzinfo=UTC)


def op(operator_id: int, load: int = 0, last: datetime | None = None) -> OperatorCandidate:
    return OperatorCandidate(operator_id=operator_id, open_load=load, last_assigned_at=last)


class TestChooseOperator:
    def test_least_loaded_wins(self) -> None:
        assert choose_operator([op(1, 3), op(2, 1), op(3, 2)]) == 2

    def test_equal_load_goes_to_least_recently_assigned(self) -> None:
        candidates = [op(1, 1, T0 + timedelta(minutes=5)), op(2, 1, T0), op(3, 1, T0 + timedelta(minutes=1))]
        assert choose_operator(candidates) == 2

    def test_never_assigned_comes_before_any_assigned(self) -> None:
        assert choose_operator([op(1, 0, T0 - timedelta(days=365)), op(7, 0)]) == 7

    def test_full_tie_goes_to_lowest_id(self) -> None:
        assert choose_operator([op(9), op(4), op(6)]) == 4
        assert choose_operator([op(9, 0, T0), op(4, 0, T0)]) == 4

    def test_load_outweighs_waiting_time(self) -> None:
        assert choose_operator([op(1, 2), op(2, 1, T0)]) == 2

    def test_excluded_operators_are_skipped(self) -> None:
        assert choose_operator([op(1), op(2, 5), op(3, 9)], exclude={1, 2}) == 3

    def test_nobody_left(self) -> None:
        assert choose_operator([]) is None
        assert choose_operator([op(1)], exclude={1}) is None

    def test_order_of_candidates_does_not_matter(self) -> None:
        candidates = [op(1, 1, T0), op(2, 1), op(3, 0, T0), op(4, 0, T0 + timedelta(seconds=1))]
        assert {choose_operator(list(reversed(candidates))), choose_operator(candidates)} == {3}

    def test_naive_timestamps_are_rejected(self) -> None:
        with pytest.raises(ValueError):
            OperatorCandidate(operator_id=1, open_load=0, last_assigned_at=datetime(2026, 1, 1))

    def test_negative_load_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            op(1, -1)


class TestEvenDistribution:
    """300 assignments over 5 operators, as the conversation workflow would make them."""

    OPERATORS = range(1, 6)

    def test_loads_only_grow_spread_stays_within_one(self) -> None:
        load = dict.fromkeys(self.OPERATORS, 0)
        last: dict[int, datetime | None] = dict.fromkeys(self.OPERATORS)
        for n in range(300):
            chosen = choose_operator([op(i, load[i], last[i]) for i in self.OPERATORS])
            assert chosen is not None
            load[chosen] += 1
            last[chosen] = T0 + timedelta(seconds=n)
            assert max(load.values()) - min(load.values()) <= 1
        assert set(load.values()) == {60}

    def test_conversations_closing_at_once_give_pure_round_robin(self) -> None:
        last: dict[int, datetime | None] = dict.fromkeys(self.OPERATORS)
        sequence = []
        for n in range(300):
            chosen = choose_operator([op(i, 0, last[i]) for i in self.OPERATORS])
            assert chosen is not None
            sequence.append(chosen)
            last[chosen] = T0 + timedelta(seconds=n)
        assert sequence[:5] == [1, 2, 3, 4, 5]
        assert all(sequence[n] == sequence[n % 5] for n in range(300))
        assert set(Counter(sequence).values()) == {60}

    def test_loads_falling_as_conversations_close(self) -> None:
        rng = random.Random(3)
        open_conversations: list[int] = []  # assignee of each open conversation
        last: dict[int, datetime | None] = dict.fromkeys(self.OPERATORS)
        for n in range(300):
            for _ in range(rng.choice([0, 0, 1, 2])):
                if open_conversations:
                    open_conversations.pop(rng.randrange(len(open_conversations)))
            assigned = Counter(open_conversations)
            load = {i: assigned[i] for i in self.OPERATORS}
            spread_before = max(load.values()) - min(load.values())
            chosen = choose_operator([op(i, load[i], last[i]) for i in self.OPERATORS])
            assert chosen is not None
            assert load[chosen] == min(load.values())
            open_conversations.append(chosen)
            last[chosen] = T0 + timedelta(seconds=n)
            load[chosen] += 1
            # an assignment never widens the gap beyond what closings made, nor beyond one
            assert max(load.values()) - min(load.values()) <= max(spread_before, 1)


class TestEscalation:
    def test_cycles_through_three_operators_then_gives_up(self) -> None:
        candidates = [op(1, 0, T0), op(2, 0, T0 + timedelta(minutes=1)), op(3, 0, T0 + timedelta(minutes=2))]
        timed_out: set[int] = set()
        current = choose_operator(candidates)
        visited = [current]
        for _ in range(3):
            assert current is not None
            timed_out.add(current)
            current = next_escalation_target(candidates, timed_out, current)
            visited.append(current)
        assert visited == [1, 2, 3, None]

    def test_current_counts_as_timed_out_even_if_not_recorded(self) -> None:
        assert next_escalation_target([op(1), op(2, 4)], timed_out=set(), current=1) == 2

    def test_skips_everyone_who_timed_out_before_regardless_of_load(self) -> None:
        candidates = [op(1), op(2), op(3, 7)]
        assert next_escalation_target(candidates, timed_out={1}, current=2) == 3

    def test_nobody_left_keeps_the_conversation_in_the_pool(self) -> None:
        assert next_escalation_target([op(1), op(2)], timed_out={1, 2}, current=None) is None
        assert next_escalation_target([op(1)], timed_out=set(), current=1) is None

    def test_operator_coming_online_later_is_a_fresh_target(self) -> None:
        assert next_escalation_target([op(1), op(2), op(4, 3)], timed_out={1, 2}, current=2) == 4

    def test_unassigned_conversation_picks_by_fairness(self) -> None:
        assert next_escalation_target([op(1, 2), op(2, 1), op(3, 0)], timed_out={3}, current=None) == 2
