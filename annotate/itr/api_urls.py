from annotate.itr import api, api_lead

urlpatterns: list = [
    # Items, queue, reviews, decisions, summary, exports (api.py).
    *api.urlpatterns,
    # The lead's queue, comments and the model signal (api_lead.py).
    *api_lead.urlpatterns,
]
