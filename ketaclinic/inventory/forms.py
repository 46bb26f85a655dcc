"""HTML forms for the inventory screens. They parse input; the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import OuterRef, Subquery

from ketaclinic.core.formatting import plain_number
from ketaclinic.core.forms import model_choice_field
from ketaclinic.inventory.models import Container, Lot, Product, StorageLocation


def _container_choices() -> Any:
    return (
        Container.objects.exclude(status=Container.Status.EMPTY)
        .select_related("lot__product", "location")
        .order_by("location__name", "label")
    )


class ContainerChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.label} · {obj.lot.product.display_name} · {obj.location.name} · {plain_number(obj.remaining_mg)} mg"


class ReceiveForm(forms.Form):
    product: forms.ModelChoiceField[Product] = forms.ModelChoiceField(
        queryset=Product.objects.none(), to_field_name="public_id"
    )
    location: forms.ModelChoiceField[StorageLocation] = forms.ModelChoiceField(
        queryset=StorageLocation.objects.none(), to_field_name="public_id"
    )
    lot_number = forms.CharField(max_length=40)
    expires_on = forms.DateField(
        label="Lot expiry date", widget=forms.DateInput(attrs={"type": "date"})
    )
    containers = forms.IntegerField(min_value=1, max_value=1000, label="Containers received")
    supplier_name = forms.CharField(max_length=200)
    supplier_address = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))
    supplier_dea_number = forms.CharField(max_length=20, label="Supplier DEA number")
    invoice_reference = forms.CharField(max_length=120, label="Invoice or packing slip")
    received_on = forms.DateField(
        label="Date actually received", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "product").queryset = Product.objects.filter(is_active=True)
        model_choice_field(self, "location").queryset = StorageLocation.objects.filter(
            is_active=True
        ).select_related("clinic")


class DrawForm(forms.Form):
    container = ContainerChoice(queryset=Container.objects.none(), to_field_name="public_id")
    quantity_mg = forms.DecimalField(
        max_digits=8, decimal_places=1, min_value=0, label="Dose drawn (mg)"
    )
    administration_id = forms.UUIDField(label="Administration id")
    patient_id = forms.UUIDField(label="Patient id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "container").queryset = _container_choices()


class WitnessFields(forms.Form):
    witness_username = forms.CharField(
        max_length=150,
        label="Witness username",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    witness_code = forms.CharField(
        label="Witness authenticator code (typed by the witness)",
        max_length=8,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "off", "inputmode": "numeric", "pattern": "[0-9]*"}
        ),
    )


class WasteForm(WitnessFields):
    SOURCES = [
        ("drawn_dose", "Left over from the drawn dose"),
        ("container_remainder", "Rest of the opened container"),
    ]
    source = forms.ChoiceField(choices=SOURCES, widget=forms.RadioSelect)
    administration_id = forms.UUIDField(label="Administration id")
    quantity_mg = forms.DecimalField(
        max_digits=8,
        decimal_places=1,
        min_value=0,
        required=False,
        label="Quantity wasted (mg; blank = the whole remainder)",
    )
    method = forms.CharField(max_length=200, label="How it was made non-retrievable")


class CaseResolveForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Resolution note")


class PeriodForm(forms.Form):
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="End (inclusive)")


# --- Transfer, return, destruction, loss, filing, adjustment ----------------------------------


class LotChoice(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        expires = obj.expiry_date(getattr(obj, "clinic_time_zone", None))
        return f"{obj.product.display_name} · lot {obj.lot_number} · expires {expires:%Y-%m-%d}"


def _lot_field() -> LotChoice:
    return LotChoice(queryset=Lot.objects.none(), to_field_name="public_id", label="Lot")


def _location_field(label: str = "Location") -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        queryset=StorageLocation.objects.none(), to_field_name="public_id", label=label
    )


class _StockForm(forms.Form):
    """Fills the container, lot and location choices from the request's organization."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            if isinstance(field, ContainerChoice):
                field.queryset = _container_choices()
            elif isinstance(field, LotChoice):
                first_container = Container.objects.filter(lot=OuterRef("pk")).order_by("pk")
                field.queryset = (
                    Lot.objects.select_related("product")
                    .annotate(
                        clinic_time_zone=Subquery(
                            first_container.values("location__clinic__time_zone")[:1]
                        )
                    )
                    .order_by("product__display_name", "lot_number")
                )
            elif isinstance(field, forms.ModelChoiceField) and name.endswith("location"):
                locations = StorageLocation.objects.select_related("clinic")
                # Stock only moves into a location in use; a retired one can still be counted.
                field.queryset = (
                    locations.filter(is_active=True) if name == "to_location" else locations
                )


class TransferForm(_StockForm):
    container = ContainerChoice(queryset=Container.objects.none(), to_field_name="public_id")
    to_location = _location_field("Move to")


class ReturnForm(forms.Form):
    administration_id = forms.UUIDField(label="Administration id")
    quantity_mg = forms.DecimalField(
        max_digits=8, decimal_places=1, min_value=0, label="Undrawn dose put back (mg)"
    )


class ApproverFields(forms.Form):
    approver_username = forms.CharField(
        max_length=150,
        label="Compliance approver username",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    approver_code = forms.CharField(
        label="Approver authenticator code (typed by the approver)",
        max_length=8,
        widget=forms.PasswordInput(
            attrs={"autocomplete": "off", "inputmode": "numeric", "pattern": "[0-9]*"}
        ),
    )


class AdjustForm(_StockForm, ApproverFields):
    lot = _lot_field()
    location = _location_field()
    quantity_mg = forms.DecimalField(
        max_digits=8,
        decimal_places=1,
        label="Change (mg; negative takes away, positive adds)",
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Reason")
    field_order = ["lot", "location", "quantity_mg", "reason"]


_BLANK_FROM_RECORDS = "Leave blank to use the clinic's record."


class RegistrantFields(forms.Form):
    dea_registration_number = forms.CharField(
        max_length=20, required=False, label="Registrant DEA number", help_text=_BLANK_FROM_RECORDS
    )
    telephone = forms.CharField(max_length=40, required=False, help_text=_BLANK_FROM_RECORDS)


class DestroyForm(_StockForm, RegistrantFields, WitnessFields):
    DISPOSALS = [
        ("on_site", "Destroyed on site (DEA Form 41)"),
        ("reverse_distributor", "Handed to a reverse distributor"),
    ]
    container = ContainerChoice(queryset=Container.objects.none(), to_field_name="public_id")
    disposal = forms.ChoiceField(choices=DISPOSALS, widget=forms.RadioSelect)
    document_ref = forms.CharField(
        max_length=120, label="Form 41 or reverse-distributor record number"
    )
    destruction_method = forms.CharField(
        max_length=200,
        required=False,
        label="Method of destruction (on site)",
        help_text="How it was rendered non-retrievable.",
    )
    reverse_distributor_name = forms.CharField(max_length=200, required=False)
    reverse_distributor_address = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    reverse_distributor_dea_number = forms.CharField(
        max_length=20, required=False, label="Reverse distributor DEA number"
    )
    registered_address = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=_BLANK_FROM_RECORDS
    )
    field_order = ["container", "disposal", "document_ref", "destruction_method"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("disposal") == "on_site" and not data.get("destruction_method"):
            self.add_error("destruction_method", "Say how it was destroyed.")
        if data.get("disposal") == "reverse_distributor":
            for name in (
                "reverse_distributor_name",
                "reverse_distributor_address",
                "reverse_distributor_dea_number",
            ):
                if not data.get(name):
                    self.add_error(name, "Required when handing to a reverse distributor.")
        return data

    def record_data(self) -> dict[str, Any]:
        """The Form 41 / reverse-distributor fields the user typed (blank ones left out)."""
        skip = {"container", "disposal", "document_ref", "witness_username", "witness_code"}
        return {k: v for k, v in self.cleaned_data.items() if k not in skip and v not in ("", None)}


class LossForm(_StockForm, RegistrantFields):
    KINDS = [("loss", "Significant loss"), ("theft", "Theft")]
    kind = forms.ChoiceField(choices=KINDS, widget=forms.RadioSelect)
    lot = _lot_field()
    location = _location_field()
    container = ContainerChoice(
        queryset=Container.objects.none(),
        to_field_name="public_id",
        required=False,
        label="Container (if one vial or device is missing)",
    )
    quantity_mg = forms.DecimalField(
        max_digits=8, decimal_places=1, min_value=0, label="Quantity lost or stolen (mg)"
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="What happened")
    discovered_at = forms.DateTimeField(
        label="Discovered at (clinic time)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    theft_or_loss_date = forms.DateField(
        label="Date of the theft or loss (best estimate)",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    theft_or_loss_type = forms.CharField(
        max_length=120,
        required=False,
        label="Type (e.g. employee pilferage, night break-in, lost in transit)",
    )
    principal_business = forms.CharField(max_length=120, initial="Clinic")
    county = forms.CharField(max_length=120)
    registrant_address = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=_BLANK_FROM_RECORDS
    )
    reported_to_police = forms.BooleanField(required=False, label="Reported to the police")
    police_department = forms.CharField(
        max_length=200, required=False, label="Police department (name and telephone)"
    )
    thefts_or_losses_past_24_months = forms.IntegerField(
        min_value=0, label="Thefts or losses in the past 24 months"
    )
    field_order = ["kind", "lot", "location", "container", "quantity_mg", "reason"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("reported_to_police") and not data.get("police_department"):
            self.add_error("police_department", "Name the police department told.")
        return data

    def form_106(self) -> dict[str, Any]:
        """The Form 106 fields the user typed (blank ones left out, so defaults apply)."""
        names = (
            "theft_or_loss_type",
            "principal_business",
            "county",
            "reported_to_police",
            "police_department",
            "thefts_or_losses_past_24_months",
            "dea_registration_number",
            "telephone",
            "registrant_address",
        )
        data = {n: self.cleaned_data.get(n) for n in names}
        data["theft_or_loss_date"] = self.cleaned_data["theft_or_loss_date"].isoformat()
        return {k: v for k, v in data.items() if v not in ("", None)}


class MarkFiledForm(forms.Form):
    filed_at = forms.DateTimeField(
        required=False,
        label="Filed at (clinic time; blank = now)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
