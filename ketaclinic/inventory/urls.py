from django.urls import path

from ketaclinic.inventory import views

app_name = "inventory"

urlpatterns = [
    path("", views.stock, name="stock"),
    path("receive/", views.receive, name="receive"),
    path("draw/", views.draw, name="draw"),
    path("waste/", views.waste, name="waste"),
    path("transfer/", views.transfer, name="transfer"),
    path("return/", views.stock_return, name="return"),
    path("destroy/", views.destroy, name="destroy"),
    path("loss/", views.loss, name="loss"),
    path("adjust/", views.adjust, name="adjust"),
    path("dea-forms/<uuid:form_id>/", views.dea_form, name="dea-form"),
    path("locations/<uuid:location_id>/count/", views.count, name="count"),
    path("cases/<uuid:case_id>/resolve/", views.case_resolve, name="case-resolve"),
    path("reports/", views.reports, name="reports"),
    path("reports/inventories/<uuid:count_id>/", views.inventory_snapshot, name="inventory"),
    path("reports/<slug:kind>/", views.report, name="report"),
]
