// The lead's disagreements page (validation/disagreements.html): the right-label picker of
// each decision form. A label button (typed search results from the annotate page's label
// search, or the annotators' own corrections) fills the form's hidden corrected_label and
// ticks "miss"; "hit" or "clear" empties it. Event delegation: the cards are swapped by htmx.
(function () {
  "use strict";

  function formOf(element) {
    return element.closest("form.dis-decide");
  }

  function choose(form, key, name) {
    form.querySelector("input[name=corrected_label]").value = key;
    const chosen = form.querySelector(".dis-chosen");
    chosen.querySelector("[data-chosen]").textContent = name;
    chosen.hidden = !key;
    if (key) {
      form.querySelector("input[name=value][value=miss]").checked = true;
    }
  }

  document.addEventListener("click", function (event) {
    const pick = event.target.closest(".label-pick");
    if (pick && formOf(pick)) {
      event.preventDefault();
      choose(formOf(pick), pick.dataset.label, pick.textContent.trim());
      return;
    }
    const clear = event.target.closest(".dis-clear");
    if (clear && formOf(clear)) {
      choose(formOf(clear), "", "");
    }
  });

  document.addEventListener("change", function (event) {
    const radio = event.target;
    if (radio.name === "value" && radio.value === "hit" && formOf(radio)) {
      choose(formOf(radio), "", "");
    }
  });

  // Enter in the label search picks the first result instead of submitting the form.
  document.addEventListener("keydown", function (event) {
    const input = event.target;
    if (event.key !== "Enter" || input.name !== "q" || !formOf(input)) {
      return;
    }
    event.preventDefault();
    const first = formOf(input).querySelector(".dis-labels .label-pick");
    if (first) {
      choose(formOf(input), first.dataset.label, first.textContent.trim());
    }
  });
})();
