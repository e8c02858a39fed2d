// The dashboard's "What you get" panel (templates/validation/_dash_selection.html). htmx does
// the requests; this file only (1) shows the slider's θ beside it and keeps the rule's mode in
// step with the control being moved, (2) asks the panel to refresh when the dashboard's poller
// swapped in new verdicts, and (3) lets htmx show a refusal (400, 409) in the panel instead of
// dropping it. No inline script: the site's CSP forbids it.
(function () {
  "use strict";

  function form() {
    return document.getElementById("selection-form");
  }

  function showTheta() {
    const slider = document.getElementById("selection-theta");
    const out = document.getElementById("selection-theta-value");
    if (slider && out) out.textContent = Number(slider.value).toFixed(2);
  }

  function setMode(mode) {
    const f = form();
    if (!f) return;
    const radio = document.getElementById(`selection-mode-${mode}`);
    if (radio && !radio.checked) radio.checked = true;
    f.dataset.mode = mode;
  }

  document.addEventListener("input", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLElement) || !target.closest("#selection-form")) return;
    if (target.id === "selection-theta") {
      showTheta();
      setMode("threshold");
    } else if (target.id === "selection-target") {
      setMode("target");
    } else if (target.name === "mode") {
      setMode(target.value);
    }
  });

  // New verdicts: the poller swapped the headline and the live tables (out of band). The
  // panel's own swaps land in #selection-result and #export-status, never in those.
  let pending = null;
  function refresh(event) {
    const swapped = event.detail && (event.detail.target || event.detail.elt);
    const id = swapped && swapped.id;
    if (id !== "dash-live" && id !== "dash-headline") return;
    const f = form();
    if (!f || !window.htmx) return;
    clearTimeout(pending);
    pending = setTimeout(() => window.htmx.trigger(f, "selection-refresh"), 100);
  }
  document.addEventListener("htmx:oobAfterSwap", refresh);
  document.addEventListener("htmx:afterSettle", refresh);

  // A refused request (bad value, targeted sample, nothing to export) carries its reason in
  // the fragment: swap it like a success.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const status = event.detail.xhr && event.detail.xhr.status;
    if (!target || (status !== 400 && status !== 409)) return;
    if (target.id === "selection-result" || target.id === "export-status") {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    showTheta();
    const checked = document.querySelector("#selection-form input[name=mode]:checked");
    if (checked) setMode(checked.value);
  });
})();
