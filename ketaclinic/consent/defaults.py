"""Default consent texts: one treatment template per route and setting, plus ketamine-assisted
psychotherapy and research use. A clinic reviews and edits them before publishing its own version.
Pure data; the risks follow clinical-reference §2-3 and the issue's acknowledgement list."""

from __future__ import annotations

from typing import Any

ACK = {
    "dissociation": "I understand ketamine can cause dissociation: feeling detached, dream-like "
    "or unreal, changes in perception, during and shortly after each treatment.",
    "blood_pressure": "I understand ketamine raises blood pressure and heart rate for a short "
    "time, and that my blood pressure will be checked before and after each dose.",
    "nausea": "I understand nausea and vomiting can occur, and I will follow the fasting "
    "instructions I am given.",
    "misuse": "I understand ketamine can be misused and cause dependence; I will take it only "
    "as prescribed and never share it.",
    "bladder": "I understand frequent or long-term ketamine use can irritate or damage the "
    "bladder, and I will report pain or frequent or urgent urination.",
    "no_driving": "I will not drive, operate machinery or make important decisions until the "
    "next day after a full night's sleep.",
    "off_label": "I understand racemic ketamine is not approved by the FDA for depression; its "
    "use here is off-label, based on published evidence.",
    "withdraw": "I understand I may withdraw this consent and stop treatment at any time, "
    "without affecting my other care.",
}
_TREATMENT_ACKS = [
    "dissociation",
    "blood_pressure",
    "nausea",
    "misuse",
    "bladder",
    "no_driving",
    "off_label",
    "withdraw",
]


def _acks(keys: list[str], extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    items = [{"key": key, "text": ACK[key]} for key in keys]
    items += [{"key": key, "text": text} for key, text in (extra or {}).items()]
    return items


_BODY = (
    "You are being offered {what}. This form explains the treatment, its risks and your rights. "
    "Please read it, ask your care team anything that is unclear, and tick each statement "
    "only if you understand and agree with it.\n\n"
    "How it is given: {how}\n\n"
    "Benefits: ketamine can reduce depressive symptoms within hours to days in some people "
    "whose depression has not responded to other treatments. It does not help everyone, and "
    "the benefit may fade, so more treatments may be offered.\n\n"
    "Alternatives include other medications, psychotherapy, transcranial magnetic stimulation "
    "and electroconvulsive therapy."
)

DEFAULT_TEMPLATES: list[dict[str, Any]] = [
    {
        "kind": "treatment",
        "route": "intravenous",
        "setting": "clinic",
        "title": "Consent to intravenous ketamine treatment",
        "body": _BODY.format(
            what="ketamine by intravenous infusion",
            how="a slow infusion into a vein, usually over 40 minutes, in the clinic, "
            "with monitoring of blood pressure, heart rate and oxygen during and after it.",
        ),
        "acknowledgements": _acks(_TREATMENT_ACKS),
    },
    {
        "kind": "treatment",
        "route": "intramuscular",
        "setting": "clinic",
        "title": "Consent to intramuscular ketamine treatment",
        "body": _BODY.format(
            what="ketamine by intramuscular injection",
            how="an injection into a muscle in the clinic, with monitoring afterwards.",
        ),
        "acknowledgements": _acks(_TREATMENT_ACKS),
    },
    {
        "kind": "treatment",
        "route": "intranasal_esketamine",
        "setting": "clinic",
        "title": "Consent to intranasal esketamine (Spravato) under the REMS",
        "body": _BODY.format(
            what="esketamine nasal spray (Spravato)",
            how="you use the nasal spray yourself in the clinic under direct observation; "
            "you stay at least 2 hours afterwards until a clinician says you may leave. "
            "Esketamine is available only through a restricted program (REMS) and you will "
            "be enrolled in it.",
        ),
        "acknowledgements": _acks(
            [k for k in _TREATMENT_ACKS if k != "off_label"],
            {
                "rems": "I understand esketamine is given only under the Spravato REMS: I "
                "will be enrolled, monitored for at least 2 hours after each dose, and will "
                "never take the device home."
            },
        ),
    },
    {
        "kind": "treatment",
        "route": "sublingual_oral_in_clinic",
        "setting": "clinic",
        "title": "Consent to sublingual/oral ketamine in the clinic",
        "body": _BODY.format(
            what="ketamine as a tablet or lozenge under the tongue (or by mouth)",
            how="you take the dose in the clinic and are monitored until you may leave.",
        ),
        "acknowledgements": _acks(_TREATMENT_ACKS),
    },
    {
        "kind": "treatment",
        "route": "sublingual_at_home",
        "setting": "home",
        "title": "Consent to sublingual ketamine at home",
        "body": _BODY.format(
            what="ketamine lozenges or tablets to take at home",
            how="you take each dose at home exactly as prescribed, with a responsible adult "
            "present, sitting or lying down, and keep the medicine locked away.",
        ),
        "acknowledgements": _acks(
            _TREATMENT_ACKS,
            {
                "home_safety": "I will have a responsible adult with me for each dose, store "
                "the medicine locked away, and call {emergency_number} in an emergency."
            },
        ),
    },
    {
        "kind": "kap",
        "route": "",
        "setting": "clinic",
        "title": "Consent to ketamine-assisted psychotherapy",
        "body": "Ketamine-assisted psychotherapy combines ketamine treatment with preparation, "
        "support during the session and integration sessions with a therapist.",
        "acknowledgements": _acks(["dissociation", "no_driving", "withdraw"]),
    },
    {
        "kind": "research",
        "route": "",
        "setting": "any",
        "title": "Consent to research use of de-identified data",
        "body": "With your permission, information from your care, with your name and "
        "identifiers removed, may be used for research to improve treatment. Saying no does "
        "not change your care.",
        "acknowledgements": [
            {
                "key": "deidentified",
                "text": "I understand only de-identified data (no name, address or other "
                "identifiers) will be used.",
            },
            {"key": "withdraw", "text": ACK["withdraw"]},
        ],
    },
]
