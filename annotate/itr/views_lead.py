"""Stub: filled in by the ITR work."""

urlpatterns: list = []
