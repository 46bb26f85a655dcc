"""Portal forms: the intake history in the patient's own words.

The questions are the staff intake's (ketaclinic.screening.forms), asked in plain language, every
one of them answered: "I'm not sure" is an answer, stored as not documented (never as "no"), so
the care team asks again. Values are those of the screening service.
"""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.screening.rules import (
    DiseaseStatus,
    HepaticImpairment,
    HypertensionStatus,
    SuicidalIdeation,
)

NOT_SURE = "unsure"
# "No" first in every question, then the yes answers, then "not sure": the same order
# everywhere, so a patient who learned where "No" is never taps "Yes" by habit (issue 15).
YES_NO = [("false", "No"), ("true", "Yes"), (NOT_SURE, "I'm not sure")]
DISEASE = [
    (DiseaseStatus.ABSENT.value, "No"),
    (DiseaseStatus.STABLE.value, "Yes, and it is stable"),
    (DiseaseStatus.UNSTABLE.value, "Yes, and it is getting worse or not under control"),
    (NOT_SURE, "I'm not sure"),
]
CHOICES: dict[str, list[tuple[str, str]]] = {
    "suicidal_ideation": [
        (SuicidalIdeation.NONE.value, "No"),
        (
            SuicidalIdeation.PASSIVE.value,
            "I have wished I were dead or could go to sleep and not wake up",
        ),
        (
            SuicidalIdeation.ACTIVE_WITHOUT_INTENT.value,
            "I have thought about killing myself, but I have no plan and do not intend to act",
        ),
        (
            SuicidalIdeation.ACTIVE_WITH_INTENT_OR_PLAN.value,
            "I have thought about killing myself and have a plan or intend to act",
        ),
        (NOT_SURE, "I would rather talk about this with my care team"),
    ],
    "hypertension": [
        (HypertensionStatus.ABSENT.value, "No"),
        (HypertensionStatus.CONTROLLED.value, "Yes, and it is under control"),
        (HypertensionStatus.UNCONTROLLED.value, "Yes, and it is not under control"),
        (NOT_SURE, "I'm not sure"),
    ],
    "cardiovascular_disease": DISEASE,
    "cerebrovascular_disease": DISEASE,
    # A patient rarely knows the Child-Pugh class: "yes" keeps a class the care team recorded.
    "hepatic_impairment": [
        (HepaticImpairment.NONE.value, "No"),
        ("yes", "Yes"),
        (NOT_SURE, "I'm not sure"),
    ],
}

# (section, [(field, question)]), in the order the portal asks them.
SECTIONS: list[tuple[str, list[tuple[str, str]]]] = [
    (
        "Mental health",
        [
            ("psychosis_history", "Have you ever been told you had psychosis or schizophrenia?"),
            (
                "current_psychotic_symptoms",
                "Are you now hearing voices, seeing things, or having beliefs that others find "
                "very unusual?",
            ),
            ("bipolar_disorder", "Have you ever been diagnosed with bipolar disorder?"),
            (
                "current_mania_or_hypomania",
                "Are you now in a manic or hypomanic episode (very high energy, little need for "
                "sleep, racing thoughts)?",
            ),
            (
                "suicidal_ideation",
                "Right now or recently, have you had thoughts of ending your life?",
            ),
        ],
    ),
    (
        "Alcohol, drugs and ketamine",
        [
            (
                "active_substance_use_disorder",
                "Do you currently have a problem with alcohol or drug use?",
            ),
            (
                "active_ketamine_or_pcp_use_disorder",
                "Do you currently have a problem with ketamine or PCP use?",
            ),
            ("ketamine_or_pcp_misuse_history", "Have you ever misused ketamine or PCP?"),
            (
                "prior_ketamine_or_pcp_use",
                "Have you ever used ketamine or PCP that was not prescribed to you?",
            ),
            (
                "past_substance_use_disorder",
                "Have you had a problem with alcohol or drugs in the past that is now in recovery?",
            ),
        ],
    ),
    (
        "Physical health",
        [
            ("hypertension", "Do you have high blood pressure?"),
            (
                "cardiovascular_disease",
                "Do you have heart disease (for example a heart attack, heart failure or an "
                "irregular heartbeat)?",
            ),
            (
                "cerebrovascular_disease",
                "Have you had a stroke or another disease of the blood vessels of the brain?",
            ),
            (
                "hypertensive_encephalopathy_history",
                "Have you ever had a blood pressure emergency that affected your brain "
                "(hypertensive encephalopathy)?",
            ),
            (
                "aneurysmal_vascular_disease_or_avm",
                "Have you been told you have an aneurysm (a bulging blood vessel) or an "
                "arteriovenous malformation (AVM)?",
            ),
            ("intracerebral_hemorrhage_history", "Have you ever had bleeding in the brain?"),
            (
                "raised_intracranial_pressure",
                "Have you been told you have raised pressure inside your skull?",
            ),
            (
                "raised_intraocular_pressure",
                "Do you have glaucoma or raised pressure in your eyes?",
            ),
            (
                "hepatic_impairment",
                "Do you have liver disease (for example cirrhosis or hepatitis)?",
            ),
            (
                "cystitis_history",
                "Have you ever had interstitial or ulcerative cystitis (inflammation of the "
                "bladder)?",
            ),
            (
                "urinary_symptoms",
                "Do you have bladder problems now (pain, urgency, passing urine often, blood in "
                "the urine)?",
            ),
            (
                "hypersensitivity_to_ketamine_or_esketamine",
                "Have you ever had an allergic reaction to ketamine or esketamine (Spravato)?",
            ),
        ],
    ),
    (
        "Pregnancy and breastfeeding",
        [
            ("pregnant", "Are you pregnant, or could you be?"),
            ("breastfeeding", "Are you breastfeeding?"),
            ("planning_pregnancy", "Are you planning a pregnancy?"),
        ],
    ),
]
QUESTION_FIELDS = [name for _, questions in SECTIONS for name, _ in questions]
_PRESENT_CLASSES = {
    HepaticImpairment.CHILD_PUGH_A.value,
    HepaticImpairment.CHILD_PUGH_B.value,
    HepaticImpairment.CHILD_PUGH_C.value,
    HepaticImpairment.PRESENT_CLASS_UNKNOWN.value,
}


class PortalIntakeForm(forms.Form):
    medication_changes = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Medicines you take that are not on this list, or that you stopped or changed",
        help_text="Name and dose, including sleeping pills, pain medicines, ADHD medicines and "
        "anything bought without a prescription. Leave empty if the list is right.",
    )

    def __init__(self, *args: Any, intake: Any = None, **kwargs: Any) -> None:
        self.intake = intake
        kwargs.setdefault("initial", self.initial_from(intake))
        super().__init__(*args, **kwargs)
        for _, questions in SECTIONS:
            for name, question in questions:
                self.fields[name] = forms.ChoiceField(
                    choices=CHOICES.get(name, YES_NO),
                    widget=forms.RadioSelect,
                    label=question,
                    error_messages={"required": "Please choose an answer."},
                )

    def sections(self) -> list[tuple[str, list[Any]]]:
        return [(title, [self[name] for name, _ in questions]) for title, questions in SECTIONS]

    @staticmethod
    def initial_from(intake: Any) -> dict[str, str]:
        if intake is None:
            return {}
        initial = {}
        for name in QUESTION_FIELDS:
            value = getattr(intake, name)
            if value is None or value == "":
                continue  # not documented: the patient answers afresh
            if name == "hepatic_impairment":
                initial[name] = "yes" if value in _PRESENT_CLASSES else value
            elif isinstance(value, bool):
                initial[name] = str(value).lower()
            else:
                initial[name] = value
        return initial

    def service_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name in QUESTION_FIELDS:
            answer = self.cleaned_data[name]
            if name in CHOICES:
                value: Any = "" if answer == NOT_SURE else answer
                if name == "hepatic_impairment" and answer == "yes":
                    recorded = getattr(self.intake, name, "") if self.intake else ""
                    value = (
                        recorded
                        if recorded in _PRESENT_CLASSES
                        else HepaticImpairment.PRESENT_CLASS_UNKNOWN.value
                    )
            else:
                value = {"true": True, "false": False}.get(answer)
            data[name] = value
        return data
