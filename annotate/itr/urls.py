from annotate.itr import views_lead, views_review

urlpatterns: list = [
    # Review page (views_review.py).
    *views_review.urlpatterns,
    # Lead's adjudication page and dashboard (views_lead.py).
    *views_lead.urlpatterns,
]
