"""The queued curated export (docs/architecture.md#curated-export): requested from the dashboard
or the API, written by a worker, downloaded when ready. Never written inside a request."""
