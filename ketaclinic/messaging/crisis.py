"""The crisis numbers a patient is shown: a crisis line (reached by call, and by text where it
takes texts) and the emergency number. Pure: no Django.

The shipped defaults are the US numbers (988 Suicide & Crisis Lifeline, call or text; 911 in
immediate danger), cited in docs/sources/portal.md. A clinic elsewhere changes them on its
set-up screen; what it saves is checked here, and the sentences patients read are built here so
that every page and message says the same.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_NUMBER = 20
MAX_NAME = 80
_NUMBER_CHARACTERS = set("0123456789+-() ")


@dataclass(frozen=True)
class CrisisLines:
    line_number: str
    line_name: str
    line_name_es: str
    line_takes_texts: bool
    emergency_number: str

    @property
    def line_tel(self) -> str:
        return tel_target(self.line_number)

    @property
    def emergency_tel(self) -> str:
        return tel_target(self.emergency_number)

    def sentence(self, language: str = "en") -> str:
        """One sentence for a page or message: what to call (or text) when."""
        if language == "es":
            how = "llame o envíe un mensaje de texto al" if self.line_takes_texts else "llame al"
            name = self.line_name_es or self.line_name
            return (
                f"Si está pensando en hacerse daño o está en peligro ahora, {how} "
                f"{self.line_number} ({name}) o llame al {self.emergency_number}."
            )
        how = "call or text" if self.line_takes_texts else "call"
        return (
            f"If you are thinking about hurting yourself, or are in danger now, {how} "
            f"{self.line_number} ({self.line_name}) or call {self.emergency_number}."
        )


US_DEFAULTS = CrisisLines(
    line_number="988",
    line_name="Suicide & Crisis Lifeline",
    line_name_es="Línea de Prevención del Suicidio y Crisis",
    line_takes_texts=True,
    emergency_number="911",
)


def tel_target(number: str) -> str:
    """What a tel: link dials: the digits, with a leading + kept ("+44 116 123" -> "+44116123")."""
    digits = "".join(c for c in number if c.isdigit())
    return f"+{digits}" if number.strip().startswith("+") else digits


def number_problem(number: str) -> str | None:
    """Why `number` cannot be dialled as typed, or None. Short codes (3 digits: 988, 911, 112)
    and full international numbers (up to 15 digits) are both allowed."""
    text = number.strip()
    if not text:
        return "Enter the number patients dial."
    if len(text) > MAX_NUMBER or not set(text) <= _NUMBER_CHARACTERS:
        return "Use digits only, with spaces, dashes, brackets or a leading + (like 988 or +44 116 123)."
    if "+" in text[1:]:
        return "A + may only stand at the start of the number."
    digits = sum(c.isdigit() for c in text)
    if not 3 <= digits <= 15:
        return "A number has 3 to 15 digits."
    return None


def problems(lines: CrisisLines) -> dict[str, str]:
    """Field name -> what to fix; empty when the lines can be published."""
    found: dict[str, str] = {}
    for field in ("line_number", "emergency_number"):
        problem = number_problem(getattr(lines, field))
        if problem:
            found[field] = problem
    if not lines.line_name.strip():
        found["line_name"] = "Enter the name patients know the crisis line by."
    for field in ("line_name", "line_name_es"):
        if len(getattr(lines, field)) > MAX_NAME:
            found[field] = f"At most {MAX_NAME} characters."
    return found
