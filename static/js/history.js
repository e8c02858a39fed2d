// The history of one's own verdicts (validation/history.html): each row changes its verdict
// with an htmx POST that swaps the row (the server calls the same service as
// PATCH /api/verdicts/{id}/, and the row's idempotency key makes a repeated submission change
// nothing). This file adds the label search of a row: taking a label saves a miss with it.
(() => {
  "use strict";
  if (!window.SieveLabelSearch || !window.htmx) return;

  // A click on the Miss button submits the form with it (htmx sends the clicked button's
  // value), carrying the label just taken.
  function missWith(form, label) {
    form.querySelector("input[name=corrected_label]").value = label;
    form.dataset.picked = "1";
    form.querySelector("button[value=miss]").click();
  }

  function wire(row) {
    const input = row.querySelector(".hist-search");
    const results = row.querySelector(".hist-results");
    if (!input || !results || input.dataset.wired) return;
    input.dataset.wired = "1";
    SieveLabelSearch.attach(input, results, (label) => missWith(input.form, label));
  }

  htmx.onLoad((el) => {
    if (el.matches && el.matches(".hist-row")) wire(el);
    else if (el.querySelectorAll) el.querySelectorAll(".hist-row").forEach(wire);
  });

  document.addEventListener("click", (event) => {
    const pick = event.target.closest(".hist-results .label-pick");
    if (pick) {
      event.preventDefault();
      missWith(pick.closest("form"), pick.dataset.label);
      return;
    }
    // Hit, Miss and Skip pressed by the person: a plain value, without a label taken earlier.
    const button = event.target.closest(".hist-buttons button");
    if (!button) return;
    if (button.form.dataset.picked) delete button.form.dataset.picked;
    else button.form.querySelector("input[name=corrected_label]").value = "";
  });
})();
