"""Medication classes that interact with ketamine/esketamine, and a name -> class matcher.

Pure module: standard library only. The effect text and citations come from
clinical-reference §3.3; severities per route live in the screening policy, not here.

The matcher is deliberately small and token-based: it recognises common generic and
brand names so a medication list from the chart can be turned into interacting classes
for screening. It is an aid, not a drug database: anything it does not recognise is
reported back as unmatched so a clinician reconciles it by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType


class InteractingClass(StrEnum):
    BENZODIAZEPINE = "benzodiazepine"
    NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC = "non_benzodiazepine_sedative_hypnotic"
    OPIOID = "opioid"
    LAMOTRIGINE = "lamotrigine"
    MAOI = "maoi"
    PSYCHOSTIMULANT = "psychostimulant"
    NALTREXONE = "naltrexone"
    ANTIPSYCHOTIC = "antipsychotic"
    CYP2B6_OR_CYP3A4_MODULATOR = "cyp2b6_or_cyp3a4_modulator"

    @property
    def rule_id(self) -> str:
        """The screening rule id that reports this class, e.g. ``interaction-maoi``."""
        return "interaction-" + self.value.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Interaction:
    drug_class: InteractingClass
    label: str
    effect: str
    citation: str


_CNS_DEPRESSANT_EFFECT = (
    "Adds to the sedation caused by ketamine/esketamine; monitor closely for sedation "
    "and breathing."
)
_CNS_DEPRESSANT_CITATION = "clinical-reference §3.3 [C] #14, #54"

INTERACTIONS: Mapping[InteractingClass, Interaction] = MappingProxyType(
    {
        InteractingClass.BENZODIAZEPINE: Interaction(
            InteractingClass.BENZODIAZEPINE,
            label="benzodiazepine",
            effect=(
                _CNS_DEPRESSANT_EFFECT + " Benzodiazepines may also reduce or shorten the "
                "antidepressant response to ketamine."
            ),
            citation="clinical-reference §3.3 [C] #14, #54, #55, #56",
        ),
        InteractingClass.NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC: Interaction(
            InteractingClass.NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC,
            label="non-benzodiazepine sedative-hypnotic",
            effect=_CNS_DEPRESSANT_EFFECT,
            citation=_CNS_DEPRESSANT_CITATION,
        ),
        InteractingClass.OPIOID: Interaction(
            InteractingClass.OPIOID,
            label="opioid",
            effect=_CNS_DEPRESSANT_EFFECT,
            citation=_CNS_DEPRESSANT_CITATION,
        ),
        InteractingClass.LAMOTRIGINE: Interaction(
            InteractingClass.LAMOTRIGINE,
            label="lamotrigine",
            effect=(
                "May attenuate ketamine's effects and may reduce its adverse effects; the "
                "effect on antidepressant response is uncertain."
            ),
            citation="clinical-reference §3.3 [C] #55, #56",
        ),
        InteractingClass.MAOI: Interaction(
            InteractingClass.MAOI,
            label="monoamine oxidase inhibitor (MAOI)",
            effect=(
                "May raise blood pressure (label); case reports with tranylcypromine and "
                "S-ketamine showed no relevant vital-sign changes."
            ),
            citation="clinical-reference §3.3 [C] #54, #56",
        ),
        InteractingClass.PSYCHOSTIMULANT: Interaction(
            InteractingClass.PSYCHOSTIMULANT,
            label="psychostimulant",
            effect="May raise blood pressure.",
            citation="clinical-reference §3.3 [C] #54",
        ),
        InteractingClass.NALTREXONE: Interaction(
            InteractingClass.NALTREXONE,
            label="naltrexone",
            effect=(
                "In one small trial naltrexone given before IV ketamine markedly weakened the "
                "antidepressant effect (not the dissociative effect); later evidence is mixed."
            ),
            citation="clinical-reference §3.3 [C] #57 ('later studies mixed' is [U])",
        ),
        InteractingClass.ANTIPSYCHOTIC: Interaction(
            InteractingClass.ANTIPSYCHOTIC,
            label="antipsychotic",
            effect="Some evidence that antipsychotics blunt ketamine's effects.",
            citation="clinical-reference §3.3 [C] #56",
        ),
        InteractingClass.CYP2B6_OR_CYP3A4_MODULATOR: Interaction(
            InteractingClass.CYP2B6_OR_CYP3A4_MODULATOR,
            label="CYP2B6/CYP3A4 inducer or inhibitor",
            effect="Inducers may lower and inhibitors may raise ketamine exposure.",
            citation="clinical-reference §3.3 [C] #55",
        ),
    }
)


# Generic and brand names, lower case, one word each (the matcher works on words, so
# "naloxone" never matches "naltrexone"). CYP2B6/CYP3A4 modulators are left out on purpose:
# which drugs count is a pharmacist's call, recorded on the chart as the class itself.
_NAMES_BY_CLASS: Mapping[InteractingClass, frozenset[str]] = MappingProxyType(
    {
        InteractingClass.BENZODIAZEPINE: frozenset(
            {
                "alprazolam",
                "chlordiazepoxide",
                "clobazam",
                "clonazepam",
                "clorazepate",
                "diazepam",
                "estazolam",
                "flurazepam",
                "lorazepam",
                "midazolam",
                "oxazepam",
                "temazepam",
                "triazolam",
                "ativan",
                "halcion",
                "klonopin",
                "librium",
                "restoril",
                "valium",
                "xanax",
            }
        ),
        InteractingClass.NON_BENZODIAZEPINE_SEDATIVE_HYPNOTIC: frozenset(
            {
                "zolpidem",
                "zaleplon",
                "zopiclone",
                "eszopiclone",
                "suvorexant",
                "lemborexant",
                "daridorexant",
                "butalbital",
                "phenobarbital",
                "secobarbital",
                "ambien",
                "lunesta",
                "sonata",
                "belsomra",
            }
        ),
        InteractingClass.OPIOID: frozenset(
            {
                "buprenorphine",
                "codeine",
                "fentanyl",
                "hydrocodone",
                "hydromorphone",
                "meperidine",
                "methadone",
                "morphine",
                "oxycodone",
                "oxymorphone",
                "tapentadol",
                "tramadol",
                "dilaudid",
                "norco",
                "oxycontin",
                "percocet",
                "suboxone",
                "subutex",
                "vicodin",
            }
        ),
        InteractingClass.LAMOTRIGINE: frozenset({"lamotrigine", "lamictal"}),
        InteractingClass.MAOI: frozenset(
            {
                "isocarboxazid",
                "linezolid",
                "moclobemide",
                "phenelzine",
                "rasagiline",
                "safinamide",
                "selegiline",
                "tranylcypromine",
                "azilect",
                "emsam",
                "marplan",
                "nardil",
                "parnate",
            }
        ),
        InteractingClass.PSYCHOSTIMULANT: frozenset(
            {
                "amphetamine",
                "armodafinil",
                "dexmethylphenidate",
                "dextroamphetamine",
                "lisdexamfetamine",
                "methamphetamine",
                "methylphenidate",
                "modafinil",
                "adderall",
                "concerta",
                "desoxyn",
                "dexedrine",
                "focalin",
                "nuvigil",
                "provigil",
                "ritalin",
                "vyvanse",
            }
        ),
        InteractingClass.NALTREXONE: frozenset({"naltrexone", "contrave", "revia", "vivitrol"}),
        InteractingClass.ANTIPSYCHOTIC: frozenset(
            {
                "aripiprazole",
                "brexpiprazole",
                "cariprazine",
                "clozapine",
                "haloperidol",
                "lurasidone",
                "olanzapine",
                "paliperidone",
                "quetiapine",
                "risperidone",
                "ziprasidone",
                "abilify",
                "clozaril",
                "haldol",
                "risperdal",
                "seroquel",
                "zyprexa",
            }
        ),
        InteractingClass.CYP2B6_OR_CYP3A4_MODULATOR: frozenset(),
    }
)

_CLASSES_BY_NAME: Mapping[str, frozenset[InteractingClass]] = MappingProxyType(
    {
        name: frozenset(
            drug_class for drug_class, names in _NAMES_BY_CLASS.items() if name in names
        )
        for name in frozenset().union(*_NAMES_BY_CLASS.values())
    }
)

_WORD = re.compile(r"[a-z]+")


def names_for_class(drug_class: InteractingClass) -> frozenset[str]:
    """The drug names the matcher recognises for ``drug_class``."""
    return _NAMES_BY_CLASS[drug_class]


def classify_medication(name: str) -> frozenset[InteractingClass]:
    """Interacting classes named in one medication entry, e.g. ``"Lorazepam 1 mg"``.

    Combination products yield every class they contain
    (``"buprenorphine/naloxone"`` -> opioid). An empty set means "not recognised", not
    "safe": the caller must show unmatched entries to a clinician.
    """
    classes: set[InteractingClass] = set()
    for word in _WORD.findall(name.casefold()):
        classes |= _CLASSES_BY_NAME.get(word, frozenset())
    return frozenset(classes)


@dataclass(frozen=True, slots=True)
class MedicationClassification:
    classes: frozenset[InteractingClass]
    matched: tuple[tuple[str, frozenset[InteractingClass]], ...]
    unmatched: tuple[str, ...]


def classify_medications(names: Iterable[str]) -> MedicationClassification:
    """Classify a medication list; keeps which entries matched and which did not."""
    matched: list[tuple[str, frozenset[InteractingClass]]] = []
    unmatched: list[str] = []
    for name in names:
        classes = classify_medication(name)
        if classes:
            matched.append((name, classes))
        else:
            unmatched.append(name)
    all_classes = frozenset().union(*(classes for _, classes in matched))
    return MedicationClassification(
        classes=all_classes, matched=tuple(matched), unmatched=tuple(unmatched)
    )
