// The annotation page: one keystroke per verdict.
//
// The queue itself (leases, preloading, idempotent saves retried until they succeed, undo) is
// static/js/workqueue.js, shared with the ITR review page; this file adds the hit/miss keys,
// the suggested labels and the taxonomy search. Verdicts go to POST /api/verdicts/ (the same
// endpoint scripts use).
(() => {
  "use strict";
  const root = document.getElementById("annotate");
  if (!root || !window.SieveQueue) return;
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

  function judge(value, correctedLabel) {
    if (!queue.ready()) return;
    search.value = "";
    results.innerHTML = "";
    search.blur(); // keys are shortcuts again
    queue.submit(correctedLabel ? { value, corrected_label: correctedLabel } : { value });
  }

  function pickSuggestion(n) {
    const buttons = stage.querySelectorAll(".ann-suggest .label-pick");
    if (buttons[n - 1]) judge("miss", buttons[n - 1].dataset.label);
  }

  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.target === search) {
      if (event.key === "Escape") {
        search.blur();
      } else if (event.key === "Enter") {
        event.preventDefault();
        const first = results.querySelector(".label-pick");
        if (first) judge("miss", first.dataset.label);
      }
      return;
    }
    if (!help.hidden) {
      if (event.key === "Escape" || event.key === "?") toggleHelp(false);
      return;
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
      action();
    }
  });

  root.addEventListener("click", (event) => {
    const pick = event.target.closest(".label-pick");
    if (pick) return judge("miss", pick.dataset.label);
    const button = event.target.closest("button[data-value]");
    if (button) return judge(button.dataset.value);
    if (event.target.closest("#btn-undo")) return queue.undo();
    if (event.target.closest("#btn-help")) return toggleHelp(true);
    if (event.target.closest("#help-close") || event.target === help) return toggleHelp(false);
  });

  queue.start();
})();
