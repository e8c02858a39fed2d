"""Placeholder: index builds and near-duplicate scans."""
