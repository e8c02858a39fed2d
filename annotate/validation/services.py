"""Verdicts: record, change and undo; a lead's adjudications: record and withdraw. The API,
the annotation page, the lead's pages and the benchmark all call these functions; their
errors (annotate/errors.py) carry the status code the API answers.

`SampleItem.verdict_count` counts hit and miss verdicts (a skip means "someone else, please",
so it does not use up one of the wanted verdicts). Every change to it happens with an F()
update in the same transaction as the verdict row, after locking the item row, so concurrent
annotators never lose or double a count.
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from annotate.errors import Conflict, Invalid, NotFound
from annotate.leasing import answer_duration
from annotate.rest import id_param
from annotate.taxonomies.models import Label
from annotate.validation.assignment import lease_grant, lease_release
from annotate.validation.models import Adjudication, Lease, Sample, SampleItem, Verdict

COUNTED = (Verdict.Value.HIT, Verdict.Value.MISS)


class VerdictError(Invalid):
    """Invalid input (bad value, label of another taxonomy, closed sample): HTTP 400."""


class UnknownLabel(NotFound):
    """The corrected label is not a label of the run's taxonomy: HTTP 404."""


class SampleClosed(Conflict):
    """The sample is closed: no verdict, change or undo until a lead reopens it. HTTP 409."""


class VerdictConflict(Conflict):
    """The annotator already judged this item (with another key): HTTP 409 with that verdict."""

    def __init__(self, verdict: Verdict, message: str = "") -> None:
        super().__init__(message or "you already gave a verdict on this item")
        self.verdict = verdict


def _check_value(value: str, corrected_label) -> None:
    if value not in Verdict.Value.values:
        raise VerdictError(f"value must be one of {', '.join(Verdict.Value.values)}")
    if corrected_label not in (None, "") and value != Verdict.Value.MISS:
        raise VerdictError("corrected_label goes only with a miss")


def label_resolve(*, sample_item: SampleItem, label) -> Label | None:
    """A corrected label given as a Label, an id or a key; it must belong to the run's taxonomy."""
    if label in (None, ""):
        return None
    taxonomy_id = sample_item.sample.run.taxonomy_id
    if isinstance(label, Label):
        found = label if label.taxonomy_id == taxonomy_id else None
    else:
        labels = Label.objects.filter(taxonomy_id=taxonomy_id)
        text = str(label)
        found = labels.filter(key=text).first()
        if found is None and (label_id := id_param(text)):
            found = labels.filter(pk=label_id).first()
    if found is None:
        raise UnknownLabel("corrected_label is not a label of this run's taxonomy")
    return found


def _checked_key(key: str) -> str:
    key = (key or "").strip()
    if len(key) > 100:
        raise VerdictError("key is longer than 100 characters")
    return key


def _check_open(sample: Sample) -> None:
    if sample.status != Sample.Status.OPEN:
        raise SampleClosed("the sample is closed")


def _count(item_id: int, delta: int) -> None:
    if delta:
        SampleItem.objects.filter(pk=item_id).update(verdict_count=F("verdict_count") + delta)


def verdict_record(
    *,
    sample_item: SampleItem,
    annotator,
    value: str,
    corrected_label=None,
    key: str = "",
    duration_ms: int | None = None,
) -> tuple[Verdict, bool]:
    """Record the annotator's verdict on an item; returns (verdict, created).

    - the same idempotency `key` again (same item): no-op, returns the first verdict;
    - a verdict already there with another key (or none): raises VerdictConflict;
    - a verdict whose lease expired meanwhile is still kept: each annotator has their own row,
      so it can never overwrite another annotator's verdict.
    """
    _check_value(value, corrected_label)
    key = _checked_key(key)
    duration = answer_duration(duration_ms, VerdictError)
    label = label_resolve(sample_item=sample_item, label=corrected_label)
    _check_open(sample_item.sample)

    try:
        with transaction.atomic():
            # One writer per item at a time: repeated and concurrent submissions queue here.
            SampleItem.objects.select_for_update().filter(pk=sample_item.pk).first()
            # One query for both: the same key (a repeat) or a verdict already on this item.
            match = Q(sample_item=sample_item) | Q(key=key) if key else Q(sample_item=sample_item)
            found = list(Verdict.objects.filter(match, annotator=annotator))
            for existing in found:
                if key and existing.key == key:
                    if existing.sample_item_id == sample_item.pk:
                        return existing, False
                    raise VerdictConflict(existing, "this key was already used for another item")
            if found:
                raise VerdictConflict(found[0])
            verdict = Verdict.objects.create(
                sample_item=sample_item,
                annotator=annotator,
                value=value,
                corrected_label=label,
                key=key,
                duration_ms=duration,
            )
            _count(sample_item.pk, 1 if value in COUNTED else 0)
            lease_release(sample_item=sample_item, annotator=annotator)
    except IntegrityError:
        # The same key raced on two different items (two different row locks); the whole
        # transaction was rolled back, so nothing was counted.
        same = Verdict.objects.filter(annotator=annotator, key=key).first() if key else None
        if same is not None and same.sample_item_id == sample_item.pk:
            return same, False
        judged = (
            same or Verdict.objects.filter(sample_item=sample_item, annotator=annotator).first()
        )
        if judged is None:
            raise
        raise VerdictConflict(judged) from None
    return verdict, True


def verdict_change(
    *,
    verdict: Verdict,
    value: str,
    corrected_label=None,
    duration_ms: int | None = None,
    key: str = "",
) -> Verdict:
    """Change one's own verdict while the sample is open.

    With an idempotency `key`, the verdict keeps the key of its last change, and the same key
    again changes nothing (a repeated submission returns the verdict as it is); a key already
    used for another of the annotator's verdicts raises VerdictConflict."""
    _check_value(value, corrected_label)
    key = _checked_key(key)
    item = verdict.sample_item
    label = label_resolve(sample_item=item, label=corrected_label)
    duration = answer_duration(duration_ms, VerdictError)
    _check_open(item.sample)
    with transaction.atomic():
        SampleItem.objects.select_for_update().filter(pk=item.pk).first()
        current = Verdict.objects.get(pk=verdict.pk)
        if key and current.key == key:
            return current
        _count(item.pk, (value in COUNTED) - (current.value in COUNTED))
        current.value = value
        current.corrected_label = label
        fields = ["value", "corrected_label", "duration_ms", "updated"]
        if duration is not None:
            current.duration_ms = duration
        if key:
            current.key = key
            fields.append("key")
        try:
            with transaction.atomic():
                current.save(update_fields=fields)
        except IntegrityError:
            # The key is one of the annotator's other verdicts' (unique_verdict_key): the
            # whole change is rolled back.
            used = Verdict.objects.filter(annotator=current.annotator_id, key=key).first()
            raise VerdictConflict(
                used or current, "this key was already used for another item"
            ) from None
    return current


def verdict_undo(*, verdict: Verdict) -> SampleItem:
    """Delete one's own verdict while the sample is open; the item is leased back to the
    annotator so that the page shows it again."""
    item = verdict.sample_item
    _check_open(item.sample)
    with transaction.atomic():
        SampleItem.objects.select_for_update().filter(pk=item.pk).first()
        current = Verdict.objects.filter(pk=verdict.pk).first()
        if current is not None:
            current.delete()
            _count(item.pk, -1 if current.value in COUNTED else 0)
        lease_grant(item, verdict.annotator, timezone.now())
    item.refresh_from_db()
    return item


def sample_set_status(*, sample: Sample, status: str) -> Sample:
    """Close a sample (frozen verdicts: no assignment, verdict, change or undo) or reopen it."""
    if status not in Sample.Status.values:
        raise VerdictError(f"status must be one of {', '.join(Sample.Status.values)}")
    sample.status = status
    sample.save(update_fields=["status"])
    if status == Sample.Status.CLOSED:
        Lease.objects.filter(sample_item__sample=sample).delete()
    return sample


# ---------------------------------------------------------------- adjudication

MAX_NOTE = 5000


class AdjudicationError(Invalid):
    """An adjudication the rules refuse (bad value, no note, a label with a hit): HTTP 400."""


def adjudication_record(
    *, sample_item: SampleItem, lead, value: str, corrected_label=None, note: str
) -> tuple[Adjudication, bool]:
    """A lead's decision on a sample item (the caller checked the role); returns (adjudication,
    created). It overrides the annotators' majority in every table
    (docs/architecture.md#adjudication).

    - the note is required: it is the record of why;
    - a corrected label (a Label, an id or a key of the run's taxonomy) goes only with a miss;
    - the same decision again changes nothing (not even `updated`), so a repeated submission is
      harmless; a different one replaces the decision;
    - a closed sample still takes decisions: adjudication is what a lead does once the
      annotators are done.
    """
    if value not in Adjudication.Value.values:
        raise AdjudicationError(f"value must be one of {', '.join(Adjudication.Value.values)}")
    if corrected_label not in (None, "") and value != Adjudication.Value.MISS:
        raise AdjudicationError("corrected_label goes only with a miss")
    text = "" if note is None else str(note).strip()
    if not text:
        raise AdjudicationError("note is required: say why")
    if "\x00" in text or "\x00" in str(corrected_label or ""):
        raise AdjudicationError("the note and the label may not contain NUL characters")
    if len(text) > MAX_NOTE:
        raise AdjudicationError(f"note is longer than {MAX_NOTE} characters")
    label = label_resolve(sample_item=sample_item, label=corrected_label)
    with transaction.atomic():
        # One writer per item at a time: a repeated or concurrent submission queues here.
        SampleItem.objects.select_for_update().filter(pk=sample_item.pk).first()
        current = Adjudication.objects.filter(sample_item=sample_item).first()
        wanted = (value, label.pk if label else None, text)
        if current is not None:
            if (current.value, current.corrected_label_id, current.note) == wanted:
                return current, False
            current.value, current.corrected_label, current.note = value, label, text
            current.decided_by = lead
            current.save()
            return current, False
        adjudication = Adjudication.objects.create(
            sample_item=sample_item, value=value, corrected_label=label, note=text, decided_by=lead
        )
    return adjudication, True


def adjudication_withdraw(*, sample_item: SampleItem) -> bool:
    """Remove the lead's decision on an item: it goes back to its majority. Returns whether
    there was one (withdrawing twice is harmless)."""
    with transaction.atomic():
        SampleItem.objects.select_for_update().filter(pk=sample_item.pk).first()
        deleted, _ = Adjudication.objects.filter(sample_item=sample_item).delete()
    return deleted > 0
