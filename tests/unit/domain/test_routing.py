import pytest

from domain.routing import RegionRule, branch_for_region

DEFAULT = 1
RULES = [
    RegionRule(region="RU-SVE", branch_id=10),
    RegionRule(region="Свердловская область", branch_id=10),
    RegionRule(region="Ханты-Мансийский автономный округ", branch_id=20),
    RegionRule(region="ru", branch_id=30),
    RegionRule(region="KZ-ALA", branch_id=40),
    RegionRule(region="AD", branch_id=50),
]


@pytest.mark.parametrize(
    ("region", "branch"),
    [
        ("RU-SVE", 10),
        ("ru-sve", 10),
        ("  RU-SVE ", 10),
        ("СВЕРДЛОВСКАЯ ОБЛАСТЬ", 10),
        ("Ханты-Мансийский автономный округ", 20),
        ("RU", 30),
        ("RU-MOW", 30),  # no rule of its own: the country rule catches it
        ("KZ-AST", DEFAULT),  # a rule for one Kazakh region is not a country rule
        ("Москва", DEFAULT),  # names are never split or guessed
        ("AD-07", 50),
        ("Ad-Dakhiliyah", DEFAULT),  # a hyphenated name (Oman) is not a code: not Andorra's "AD"
        ("DE-BY", DEFAULT),
        (None, DEFAULT),
        ("", DEFAULT),
        ("   ", DEFAULT),
    ],
)
def test_branch_for_region(region: str | None, branch: int) -> None:
    assert branch_for_region(RULES, region, DEFAULT) == branch


def test_exact_rule_beats_country_rule_listed_first() -> None:
    rules = [RegionRule(region="RU", branch_id=30), RegionRule(region="RU-SVE", branch_id=10)]
    assert branch_for_region(rules, "RU-SVE", DEFAULT) == 10


def test_first_of_duplicate_rules_wins() -> None:
    rules = [RegionRule(region="RU-SVE", branch_id=10), RegionRule(region="ru-sve", branch_id=11)]
    assert branch_for_region(rules, "RU-SVE", DEFAULT) == 10


def test_no_rules_means_default() -> None:
    assert branch_for_region([], "RU-SVE", DEFAULT) == DEFAULT


def test_blank_rule_is_rejected() -> None:
    with pytest.raises(ValueError):
        RegionRule(region="  ", branch_id=10)
