from ketaclinic.accounts.roles import CAPABILITIES, Cap, Role, capabilities_of, role_can


def test_every_role_has_a_row_in_the_capability_table():
    assert set(CAPABILITIES) == set(Role)


def test_front_desk_registers_patients_but_never_sees_clinical_records():
    assert role_can("front_desk", Cap.PATIENT_CREATE)
    assert not role_can("front_desk", Cap.CLINICAL_VIEW)
    assert not role_can("front_desk", Cap.CLINICAL_EDIT)


def test_researcher_sees_no_identified_chart():
    assert not role_can("researcher", Cap.PATIENT_VIEW)
    assert not role_can("researcher", Cap.PATIENT_LIST)
    assert role_can("researcher", Cap.RESEARCH_EXPORT)


def test_only_compliance_exports_the_audit_trail():
    exporters = {role for role in Role if role_can(role, Cap.AUDIT_EXPORT)}
    assert exporters == {Role.COMPLIANCE}


def test_unknown_role_or_capability_grants_nothing():
    assert capabilities_of("superuser") == frozenset()
    assert not role_can("prescriber", "no.such.capability")


def test_a_role_and_a_capability_answer_the_same_as_strings_or_members():
    for role in Role:
        for capability in Cap:
            expected = capability in CAPABILITIES[role]
            assert role_can(role, capability) is expected
            assert role_can(role.value, capability.value) is expected


def test_values_that_are_no_role_or_capability_grant_nothing():
    assert not role_can(None, Cap.PATIENT_VIEW)
    assert not role_can(["prescriber"], Cap.PATIENT_VIEW)
    assert not role_can("prescriber", {"patients.view"})
    assert not role_can("Prescriber", Cap.PATIENT_VIEW)
