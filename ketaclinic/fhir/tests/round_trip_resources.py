"""Rich resources for the round-trip suite: the elements US Core marks must-support, extensions,
every coding, dates at every precision and with offsets. Written for these tests (no outside
source); the codes are the ones the repository already cites (docs/sources/): LOINC vital-sign
and questionnaire codes, SNOMED/ICD-10-CM depression codes, ketamine RxNorm 6130 ([U]) and the
SPRAVATO NDC product 50458-028 ([C], docs/sources/inventory.md)."""

from __future__ import annotations

from typing import Any

US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
NPI = "http://hl7.org/fhir/sid/us-npi"
EXT = "https://example.org/fhir/StructureDefinition/"


def _ref(kind: str, value: str) -> dict[str, Any]:
    return {"reference": f"{kind}/{value}"}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "meta": {"profile": [US_CORE + "us-core-patient"]},
        "extension": [
            {
                "url": US_CORE + "us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                            "display": "White",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": US_CORE + "us-core-ethnicity",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2186-5",
                            "display": "Not Hispanic or Latino",
                        },
                    },
                    {"url": "text", "valueString": "Not Hispanic or Latino"},
                ],
            },
            {"url": US_CORE + "us-core-birthsex", "valueCode": "F"},
        ],
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": "urn:oid:1.2.36.146.595.217.0.1",
                "value": "RT-12345",
            },
            {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"},
        ],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": "Lovelace",
                "given": ["Ada", "Augusta"],
                "suffix": ["PhD"],
            },
            {"use": "nickname", "given": ["Ada"]},
        ],
        "telecom": [
            {"system": "phone", "value": "+1 555 0100", "use": "mobile", "rank": 1},
            {"system": "phone", "value": "+1 555 0101", "use": "home", "rank": 2},
            {"system": "email", "value": "ada@example.org", "use": "work"},
        ],
        "gender": "female",
        "birthDate": "1985-12-10",
        "address": [
            {
                "use": "home",
                "type": "both",
                "line": ["12 Analytical Row", "Apt 3"],
                "city": "Springfield",
                "district": "Sangamon",
                "state": "IL",
                "postalCode": "62701",
                "country": "US",
                "period": {"start": "2019-04"},
            }
        ],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]},
                "preferred": True,
            }
        ],
    }


def condition(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "meta": {"profile": [US_CORE + "us-core-condition-problems-health-concerns"]},
        "extension": [
            {"url": EXT + "assertedDate", "valueDateTime": "2019-03"},
        ],
        "identifier": [{"system": "urn:oid:1.2.3.4.5", "value": "cond-77"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": "provisional",
                }
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": "problem-list-item",
                    }
                ]
            },
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-tags",
                        "code": "sdoh",
                    }
                ]
            },
        ],
        "severity": {"coding": [{"system": SNOMED, "code": "6736007", "display": "Moderate"}]},
        "code": {
            "coding": [
                {"system": SNOMED, "code": "370143000", "display": "Major depressive disorder"},
                {"system": ICD10, "code": "F33.2", "display": "MDD, recurrent severe"},
            ],
            "text": "Treatment-resistant major depression",
        },
        "subject": _ref("Patient", patient_id),
        "onsetDateTime": "2019-03",
        "recordedDate": "2019-04-02T10:15:30.250-05:00",
        "note": [{"text": "Two adequate antidepressant trials failed."}],
    }


def allergy(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "meta": {"profile": [US_CORE + "us-core-allergyintolerance"]},
        "identifier": [{"system": "urn:oid:1.2.3.4.6", "value": "alg-9"}],
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "unconfirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "code": {
            "coding": [
                {"system": RXNORM, "code": "7980", "display": "penicillin G"},
                {"system": SNOMED, "code": "764146007", "display": "Penicillin"},
            ],
            "text": "Penicillin",
        },
        "patient": _ref("Patient", patient_id),
        "onsetDateTime": "2004",
        "recordedDate": "2020-06-01T08:00:00+02:00",
        "reaction": [
            {
                "manifestation": [
                    {"coding": [{"system": SNOMED, "code": "247472004", "display": "Hives"}]}
                ],
                "severity": "moderate",
            }
        ],
        "note": [{"text": "Reported by the patient."}],
    }


def blood_pressure(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"profile": [US_CORE + "us-core-blood-pressure"]},
        "identifier": [{"system": "urn:oid:1.2.3.4.7", "value": "bp-1"}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}]
        },
        "subject": _ref("Patient", patient_id),
        "effectiveDateTime": "2024-03-01T09:30:00.120-05:00",
        "performer": [{"display": "Nurse Nightingale"}],
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "N",
                    }
                ]
            }
        ],
        "note": [{"text": "Seated, after five minutes' rest."}],
        "bodySite": {"coding": [{"system": SNOMED, "code": "368209003", "display": "Right arm"}]},
        "method": {"text": "Automated cuff"},
        "component": [
            {
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {
                    "value": 128.0,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "valueQuantity": {
                    "value": 82,
                    "unit": "mmHg",
                    "system": "http://unitsofmeasure.org",
                    "code": "mm[Hg]",
                },
            },
        ],
    }


def lab(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "meta": {"profile": [US_CORE + "us-core-observation-lab"]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "2345-7", "display": "Glucose [Mass/volume]"}],
            "text": "Glucose",
        },
        "subject": _ref("Patient", patient_id),
        "encounter": {"display": "Outside lab visit"},
        "effectivePeriod": {
            "start": "2024-02-28T07:00:00-05:00",
            "end": "2024-02-28T07:05:00-05:00",
        },
        "issued": "2024-02-28T12:00:00.000Z",
        "valueQuantity": {
            "value": 5.40,
            "unit": "mmol/L",
            "system": "http://unitsofmeasure.org",
            "code": "mmol/L",
        },
        "referenceRange": [
            {"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 5.6, "unit": "mmol/L"}}
        ],
    }


def systolic_alone(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {
            "coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]
        },
        "subject": _ref("Patient", patient_id),
        "effectiveDateTime": "2024-03-01T09:31:00-05:00",
        "valueQuantity": {
            "value": 131,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }


def medication_statement(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationStatement",
        "identifier": [{"system": "urn:oid:1.2.3.4.8", "value": "ms-3"}],
        "status": "completed",
        "category": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/medication-statement-category",
                    "code": "outpatient",
                }
            ]
        },
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}],
            "text": "ketamine",
        },
        "subject": _ref("Patient", patient_id),
        "effectivePeriod": {"start": "2022-01", "end": "2022-06-30"},
        "dateAsserted": "2023-01-05T11:00:00+01:00",
        "dosage": [
            {
                "text": "0.5 mg/kg IV over 40 minutes",
                "route": {
                    "coding": [{"system": SNOMED, "code": "47625008", "display": "Intravenous"}]
                },
            }
        ],
        "note": [{"text": "Course completed elsewhere."}],
    }


def medication_request(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "meta": {"profile": [US_CORE + "us-core-medicationrequest"]},
        "identifier": [{"system": "urn:oid:1.2.3.4.9", "value": "rx-1"}],
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category",
                        "code": "outpatient",
                    }
                ]
            }
        ],
        "reportedBoolean": False,
        "medicationCodeableConcept": {
            "coding": [{"system": NDC, "code": "50458-028", "display": "SPRAVATO"}],
            "text": "esketamine 28 mg nasal spray device (SPRAVATO)",
        },
        "subject": _ref("Patient", patient_id),
        "authoredOn": "2024-01-15T16:20:00-06:00",
        "requester": {"display": "Dr. Prescriber"},
        "dosageInstruction": [
            {
                "text": "56 mg intranasally twice weekly",
                "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "wk"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": 56,
                            "unit": "mg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        }
                    }
                ],
            }
        ],
    }


def practitioner() -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "meta": {"profile": [US_CORE + "us-core-practitioner"]},
        "identifier": [{"system": NPI, "value": "9941339108"}],
        "active": True,
        "name": [{"family": "Osler", "given": ["William"], "prefix": ["Dr."]}],
        "telecom": [{"system": "phone", "value": "+1 555 0200", "use": "work"}],
        "address": [
            {"line": ["1 Clinic Way"], "city": "Springfield", "state": "IL", "postalCode": "62701"}
        ],
        "gender": "male",
        "qualification": [{"code": {"text": "MD"}, "period": {"start": "1872"}}],
    }


def organization() -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "meta": {"profile": [US_CORE + "us-core-organization"]},
        "identifier": [{"system": NPI, "value": "1144221847"}],
        "active": True,
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                        "code": "prov",
                    }
                ]
            }
        ],
        "name": "Springfield Behavioral Health",
        "telecom": [{"system": "phone", "value": "+1 555 0300"}],
        "address": [
            {
                "line": ["2 Main St"],
                "city": "Springfield",
                "state": "IL",
                "postalCode": "62701",
                "country": "US",
            }
        ],
    }


def practitioner_role() -> dict[str, Any]:
    return {
        "resourceType": "PractitionerRole",
        "active": True,
        "period": {"start": "2020-01-01"},
        "practitioner": {"display": "Dr. William Osler"},
        "organization": {"display": "Springfield Behavioral Health"},
        "code": [
            {"coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "2084P0800X"}]}
        ],
        "telecom": [{"system": "phone", "value": "+1 555 0201", "use": "work"}],
    }


def location() -> dict[str, Any]:
    return {
        "resourceType": "Location",
        "identifier": [{"system": "urn:oid:1.2.3.4.10", "value": "site-1"}],
        "status": "active",
        "name": "Springfield Main Campus",
        "mode": "instance",
        "type": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                        "code": "OUTPHARM",
                    }
                ]
            }
        ],
        "address": {
            "line": ["2 Main St"],
            "city": "Springfield",
            "state": "IL",
            "postalCode": "62701",
        },
        "position": {"longitude": -89.65, "latitude": 39.78},
    }


def medication() -> dict[str, Any]:
    return {
        "resourceType": "Medication",
        "code": {
            "coding": [{"system": NDC, "code": "50458-028", "display": "SPRAVATO"}],
            "text": "SPRAVATO",
        },
        "status": "active",
        "form": {"text": "nasal spray"},
    }


def encounter(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "meta": {"profile": [US_CORE + "us-core-encounter"]},
        "identifier": [{"system": "urn:oid:1.2.3.4.11", "value": "enc-2019-1"}],
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": "AMB",
            "display": "ambulatory",
        },
        "type": [
            {
                "coding": [
                    {"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}
                ]
            }
        ],
        "subject": _ref("Patient", patient_id),
        "participant": [
            {
                "type": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                "code": "PPRF",
                            }
                        ]
                    }
                ],
                "individual": {"display": "Dr. William Osler"},
            }
        ],
        "period": {"start": "2019-04-02T10:00:00-05:00", "end": "2019-04-02T10:45:00-05:00"},
        "reasonCode": [{"coding": [{"system": SNOMED, "code": "370143000"}]}],
        "hospitalization": {"dischargeDisposition": {"text": "home"}},
        "location": [{"location": {"display": "Springfield Main Campus"}}],
    }


def letter(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "DocumentReference",
        "meta": {"profile": [US_CORE + "us-core-documentreference"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3.4.12.1"}],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [{"system": LOINC, "code": "34109-9", "display": "Note"}]},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
                        "code": "clinical-note",
                    }
                ]
            }
        ],
        "subject": _ref("Patient", patient_id),
        "date": "2024-01-16T09:00:00.5+00:00",
        "author": [{"display": "Dr. William Osler"}],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "data": "UmVmZXJyYWwgbGV0dGVyLg==",
                    "title": "Referral letter",
                    "creation": "2024-01-15",
                },
                "format": {
                    "system": "urn:oid:1.3.6.1.4.1.19376.1.2.3",
                    "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                },
            }
        ],
        "context": {"period": {"start": "2024-01-15"}},
    }


def provenance(target: str) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": "2024-01-16T09:00:00.123+00:00",
        "activity": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                    "code": "CREATE",
                }
            ]
        },
        "agent": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                            "code": "author",
                        }
                    ]
                },
                "who": {"display": "Outside EHR"},
            }
        ],
    }


# --- workflow resources the clinic drives (kept beside their rows) ------------------------------

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PLAN = "urn:ketaclinic:treatment-plan"
KC = "https://ketaclinic.org/fhir/"
UCUM = "http://unitsofmeasure.org"


def session_encounter(patient_id: str, plan_id: str, start: str) -> dict[str, Any]:
    """A treatment session as an EHR schedules it: its own identifier, participants, reason and
    location, a start with its offset."""
    return {
        "resourceType": "Encounter",
        "extension": [{"url": EXT + "visit-source", "valueString": "EHR scheduling"}],
        "identifier": [{"use": "usual", "system": "urn:oid:1.2.3.4.7", "value": "visit-77"}],
        "status": "planned",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"text": "Ketamine infusion visit"}],
        "priority": {"text": "routine"},
        "subject": _ref("Patient", patient_id),
        "basedOn": [{"identifier": {"system": PLAN, "value": plan_id}}],
        "participant": [{"individual": {"display": "Jo Rivera, RN"}}],
        "period": {"start": start},
        "reasonCode": [{"coding": [{"system": ICD10, "code": "F33.1"}], "text": "TRD"}],
        "location": [{"location": {"display": "Infusion suite"}, "status": "planned"}],
    }


def administration(patient_id: str, session_id: str, start: str, end: str) -> dict[str, Any]:
    """The dose as an infusion pump's gateway reports it: the vial (contained Medication with its
    lot, form and text), route, free-text dosage, performer, note and a vendor extension."""
    return {
        "resourceType": "MedicationAdministration",
        "extension": [{"url": EXT + "pump-channel", "valueString": "B"}],
        "identifier": [{"system": "urn:oid:1.2.3.4.8", "value": "mar-5"}],
        "status": "completed",
        "category": {"text": "outpatient"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "vial",
                "code": {
                    "coding": [{"system": RXNORM, "code": "6130", "display": "ketamine"}],
                    "text": "Ketamine hydrochloride 50 mg/mL",
                },
                "form": {"text": "vial"},
                "batch": {"lotNumber": "LOT-RT1", "expirationDate": "2027-06"},
            }
        ],
        "medicationReference": {"reference": "#vial"},
        "subject": _ref("Patient", patient_id),
        "context": _ref("Encounter", session_id),
        "effectivePeriod": {"start": start, "end": end},
        "performer": [{"actor": {"display": "Jo Rivera, RN"}}],
        "reasonCode": [{"text": "Treatment-resistant depression"}],
        "note": [{"text": "Tolerated well."}],
        "dosage": {
            "text": "40 mg IV over 40 minutes",
            "route": {"coding": [{"system": SNOMED, "code": "47625008"}]},
            "dose": {"value": 40, "unit": "mg", "system": UCUM, "code": "mg"},
        },
    }


def adverse_event(patient_id: str, session_id: str, date: str) -> dict[str, Any]:
    return {
        "resourceType": "AdverseEvent",
        "extension": [
            {"url": KC + "StructureDefinition/adverse-event-action-taken", "valueString": "Rest"},
            {"url": EXT + "reported-by", "valueString": "patient"},
        ],
        "identifier": {"system": "urn:oid:1.2.3.4.9", "value": "ae-3"},
        "actuality": "actual",
        "event": {
            "coding": [{"system": KC + "CodeSystem/ketamine-adverse-event", "code": "nausea"}],
            "text": "Nausea after the infusion",
        },
        "subject": _ref("Patient", patient_id),
        "encounter": _ref("Encounter", session_id),
        "date": date,
        "recordedDate": "2026-03-02",
        "severity": {"coding": [{"system": KC + "CodeSystem/ctcae-grade", "code": "1"}]},
        "recorder": {"display": "Jo Rivera, RN"},
    }


def appointment(patient_id: str, location_id: str, start: str, end: str, minutes: int) -> dict:
    return {
        "resourceType": "Appointment",
        "extension": [{"url": EXT + "booking-channel", "valueString": "portal"}],
        "identifier": [{"system": "urn:oid:1.2.3.4.10", "value": "appt-9"}],
        "status": "booked",
        "description": "Ketamine infusion",
        "comment": "Prefers the window chair.",
        "patientInstruction": "Nothing to eat for 4 hours before.",
        "start": start,
        "end": end,
        "minutesDuration": minutes,
        "created": "2026-03-01",
        "participant": [
            {"actor": _ref("Patient", patient_id), "required": "required", "status": "accepted"},
            {"actor": _ref("Location", location_id), "status": "accepted"},
            {"actor": {"display": "Dr Ana Ruiz"}, "status": "tentative"},
        ],
    }
