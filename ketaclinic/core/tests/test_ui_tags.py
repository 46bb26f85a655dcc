"""The design system's template helpers: severity reads without colour, and a field's hint and
error are the ids its widget's aria-describedby names."""

from __future__ import annotations

import re

from django import forms
from django.template import engines

from ketaclinic.core.templatetags.ui import severity


def test_severity_is_colour_icon_and_word_on_three_levels():
    assert 'class="sev sev--critical"' in severity("critical")
    assert ">Critical<" in severity("critical")
    assert 'class="sev sev--warning"' in severity("high")  # a safety alert below critical
    assert ">Warning<" in severity("warning")
    assert 'class="sev sev--ok"' in severity("eligible")
    assert "#error" in severity("critical")
    assert 'aria-hidden="true"' in severity("critical")
    assert "systolic 186" in severity("critical", "systolic 186")


class _Form(forms.Form):
    weight = forms.DecimalField(help_text="In kilograms.")
    route = forms.ChoiceField(choices=[("iv", "IV"), ("im", "IM")], widget=forms.RadioSelect)


def test_every_described_by_id_exists_in_the_rendered_form():
    form = _Form(data={"weight": "heavy"})
    html = engines["django"].from_string("{{ form }}").render({"form": form})
    assert 'class="usa-input usa-input--error"' in html
    ids = set(re.findall(r'\bid="([^"]+)"', html))
    described = {i for v in re.findall(r'aria-describedby="([^"]+)"', html) for i in v.split()}
    assert described >= {"id_weight_helptext", "id_weight-error", "id_route-error"}
    assert described <= ids
