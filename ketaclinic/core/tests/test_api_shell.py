"""core.api.ClinicAPI: the scratch response ninja hands a route (and writes a route's data into)
is an empty JSON response, as ninja's own."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja.testing import TestClient

from ketaclinic.core.api import ClinicAPI


def _api() -> ClinicAPI:
    api = ClinicAPI(urls_namespace="api-shell-test")

    @api.get("/with-headers", auth=None)
    def with_headers(request: HttpRequest, response: HttpResponse) -> dict:
        assert response.content == b""
        response["X-Checked"] = "yes"
        return {"name": "Zoë"}

    @api.get("/plain", auth=None)
    def plain(request: HttpRequest) -> list:
        return [1, 2]

    return api


def test_a_route_sets_headers_on_the_response_its_data_is_written_into():
    response = TestClient(_api()).get("/with-headers")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["X-Checked"] == "yes"
    assert response.json() == {"name": "Zoë"}


def test_a_routes_data_is_answered_as_json():
    response = TestClient(_api()).get("/plain")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.content == b"[1, 2]"
