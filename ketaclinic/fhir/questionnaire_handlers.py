"""Registry entries for Questionnaire and QuestionnaireResponse (measurement-based care)."""

from __future__ import annotations

from typing import Any

from ketaclinic.accounts.actor import Actor
from ketaclinic.fhir import keyset, measure_observations
from ketaclinic.fhir import questionnaires as q
from ketaclinic.fhir.registry import Handler, Page, _page
from ketaclinic.fhir.search import SearchRequest


class QuestionnaireHandler(Handler):
    """The instrument library: definitions, not patient data (no capability beyond a token)."""

    versioning = "no-version"  # a definition is versioned by its canonical url|version

    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return q.questionnaire_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        return self.to_fhir(q.questionnaire_get(resource_id))

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        # Paged by key (the instrument's id), so an instrument shipped while a client pages
        # shifts no page.
        found = q.questionnaires_search(search.items())
        total, rows = keyset.page_list(found, lambda instrument: (instrument.id,), search)
        return Page(total, [self.to_fhir(i) for i in rows], [])


class QuestionnaireResponseHandler(Handler):
    def to_fhir(self, obj: Any) -> dict[str, Any]:
        return q.response_to_fhir(obj)

    def read(self, actor: Actor, resource_id: str) -> dict[str, Any]:
        response = q.response_read(actor, resource_id)
        self.audit_read(actor, response, response.patient)
        return self.to_fhir(response)

    def search(self, actor: Actor, search: SearchRequest) -> Page:
        queryset = q.responses_search(actor, search.items(), search.sort)
        total, rows = _page(queryset, search)
        return Page(
            total, [self.to_fhir(r) for r in rows], sorted({str(r.patient.public_id) for r in rows})
        )

    def create(self, actor: Actor, resource: Any, **kw: Any) -> Any:
        return q.response_create(actor, resource)


QUESTIONNAIRE_HANDLERS: dict[str, Handler] = {
    "Questionnaire": QuestionnaireHandler(
        type="Questionnaire",
        interactions=("read", "search-type"),
        search_params={"_id": "token", "url": "uri", "code": "token", "version": "token"},
        documentation={
            "url": "our canonical, https://ketaclinic.org/fhir/Questionnaire/<id>[|version]",
            "code": "LOINC panel code, e.g. http://loinc.org|44249-1 (PHQ-9)",
        },
    ),
    "QuestionnaireResponse": QuestionnaireResponseHandler(
        type="QuestionnaireResponse",
        interactions=("read", "create", "search-type"),
        search_params={
            "_id": "token",
            "patient": "reference",
            "subject": "reference",
            "questionnaire": "reference",
            "authored": "date",
            "status": "token",
        },
        sorts=("authored",),
        documentation={
            "questionnaire": (
                "our canonical, the LOINC form canonical (http://loinc.org/q/44249-1) or "
                "Questionnaire/<id>"
            ),
            "_id": (
                "Scored on create; the total and LOINC-coded items become survey Observations "
                "(Observation?code=" + ",".join(measure_observations.supported_codes()) + ")"
            ),
        },
    ),
}
