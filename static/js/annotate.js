// The annotation page: one keystroke per verdict.
//
// The queue itself (leases, preloading, idempotent saves retried until they succeed, undo) is
// static/js/workqueue.js, shared with the ITR review page; this file adds the hit/miss keys,
// the suggested labels and the taxonomy search (static/js/label_search.js). Verdicts go to
// POST /api/verdicts/ (the same endpoint scripts use).
//
// No key acts on an item nobody has seen (docs/architecture.md#annotator-path): the queue
// refuses answers until the item on screen is painted, a click made by a key acts only on the
// item that was on screen when the key went down, a held key answers once, and a button keeps
// no focus after a click (Space or Enter would press it again on the next item).
(() => {
  "use strict";
  const root = document.getElementById("annotate");
  if (!root || !window.SieveQueue || !window.SieveLabelSearch) return;
  const help = document.getElementById("help");
  const search = document.getElementById("label-search");
  const results = document.getElementById("label-results");
  const stage = document.getElementById("stage");

  // URLs come from the page, rendered from the named routes. The undo URL is rendered for
  // verdict 0 (the route takes an integer id); the verdict's own id replaces it here.
  const queue = SieveQueue.create({
    root,
    stage,
    status: document.getElementById("save-status"),
    done: document.getElementById("done"),
    controls: document.getElementById("controls"),
    itemSelector: ".ann-item",
    itemField: "sample_item",
    itemUrl: root.dataset.itemUrl,
    submitUrl: root.dataset.verdictsUrl,
    undoUrl: (verdictId) => root.dataset.undoUrl.replace("/0/", `/${verdictId}/`),
    describe: (body) => body.value + (body.corrected_label ? ` → ${body.corrected_label}` : ""),
    // 409 with a verdict: the annotator had already judged the item (that verdict stays);
    // 409 without one: the sample is closed, which is reported as not saved.
    onConflict: (json) =>
      json.verdict
        ? {
            answer: json.verdict,
            message: "You had already judged this item; your earlier verdict is kept.",
          }
        : null,
    undoneMessage: "Undone: judge this item again.",
    unsavedWarning: "A verdict is not saved yet.",
  });

  // The item on screen when the last key went down: a click made by a key (Space activates a
  // focused button on key up) acts only if that item is still the one on screen.
  let keyItem = null;
  // Whether the focus came from the pointer: Enter and Space on a button focused by a click
  // do nothing (a button reached with Tab still answers to them).
  let pointerFocus = false;

  const onScreen = () => (queue.current() ? queue.current().id : null);

  function judge(value, correctedLabel, itemId = onScreen()) {
    if (!queue.ready() || itemId !== onScreen()) return;
    SieveLabelSearch.clear(search, results);
    search.blur(); // keys are shortcuts again
    const fields = correctedLabel ? { value, corrected_label: correctedLabel } : { value };
    queue.submit(fields, itemId);
  }

  function pickSuggestion(n) {
    const buttons = stage.querySelectorAll(".ann-suggest .label-pick");
    if (buttons[n - 1]) judge("miss", buttons[n - 1].dataset.label);
  }

  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  SieveLabelSearch.attach(search, results, (label) => judge("miss", label));

  document.addEventListener("pointerdown", () => {
    pointerFocus = true;
  });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    keyItem = onScreen();
    if (event.key === "Tab") pointerFocus = false;
    if (event.target === search) return; // label_search.js: arrows, Enter, Escape
    if (!help.hidden) {
      if (event.key === "Escape" || event.key === "?") toggleHelp(false);
      return;
    }
    if (event.target.closest && event.target.closest("button")) {
      if (event.key === "Enter" || event.key === " ") {
        if (pointerFocus || event.repeat) event.preventDefault();
        return;
      }
    }
    const actions = {
      h: () => judge("hit"),
      ArrowRight: () => judge("hit"),
      m: () => judge("miss"),
      ArrowLeft: () => judge("miss"),
      s: () => judge("skip"),
      u: queue.undo,
      Backspace: queue.undo,
      "?": () => toggleHelp(true),
      "/": () => search.focus(),
    };
    const action =
      actions[event.key] ||
      (/^[1-5]$/.test(event.key) && (() => pickSuggestion(Number(event.key))));
    if (action) {
      event.preventDefault();
      // A key held down answers one item, not every item that comes after it.
      if (!event.repeat) action();
    }
  });

  root.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    // Focus left on a clicked button would let Space or Enter press it again on the next item.
    button.blur();
    const itemId = event.detail === 0 && keyItem !== null ? keyItem : onScreen();
    if (button.matches(".label-pick")) return judge("miss", button.dataset.label, itemId);
    if (button.dataset.value) return judge(button.dataset.value, undefined, itemId);
    if (button.id === "btn-undo") return queue.undo();
    if (button.id === "btn-help") return toggleHelp(true);
    if (button.id === "help-close") return toggleHelp(false);
  });

  help.addEventListener("click", (event) => {
    if (event.target === help) toggleHelp(false);
  });

  queue.start();
})();
