"""The crisis numbers' pure rules (messaging.crisis): what a tel: link dials and which numbers a
clinic may publish. Property-tested: a number that passes can always be dialled as shown."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.messaging import crisis

digits = st.text(alphabet="0123456789", min_size=3, max_size=15)
separators = st.sampled_from(["", " ", "-", " - "])


@given(digits, separators, st.booleans())
def test_a_number_of_3_to_15_digits_passes_and_dials_its_own_digits(
    number: str, separator: str, plus: bool
) -> None:
    shown = ("+" if plus else "") + separator.join([number[:3], number[3:]]).strip(" -")
    assert crisis.number_problem(shown) is None
    assert crisis.tel_target(shown) == ("+" if plus else "") + number


@given(st.text(min_size=1, max_size=30))
def test_whatever_passes_dials_only_digits_and_a_leading_plus(text: str) -> None:
    if crisis.number_problem(text) is None:
        target = crisis.tel_target(text)
        assert target.lstrip("+").isdigit()
        assert 3 <= len(target.lstrip("+")) <= 15


def test_letters_too_few_digits_and_a_plus_inside_are_refused() -> None:
    assert crisis.number_problem("") == "Enter the number patients dial."
    assert "digits only" in (crisis.number_problem("call 988") or "")
    assert "3 to 15 digits" in (crisis.number_problem("99") or "")
    assert "start" in (crisis.number_problem("44+116") or "")


def test_the_us_defaults_read_as_the_portal_said_before_they_were_a_setting() -> None:
    assert crisis.problems(crisis.US_DEFAULTS) == {}
    assert crisis.US_DEFAULTS.sentence() == (
        "If you are thinking about hurting yourself, or are in danger now, call or text 988 "
        "(Suicide & Crisis Lifeline) or call 911."
    )
    assert "988 (Línea de Prevención del Suicidio y Crisis) o llame al 911" in (
        crisis.US_DEFAULTS.sentence("es")
    )


def test_a_line_that_takes_no_texts_is_not_offered_for_texting() -> None:
    lines = crisis.CrisisLines("116 123", "Samaritans", "", False, "999")
    assert "call 116 123 (Samaritans) or call 999" in lines.sentence()
    assert "text" not in lines.sentence()
    assert "llame al 116 123 (Samaritans)" in lines.sentence("es")  # no Spanish name: the name
    assert crisis.problems(lines) == {}
