// The lead's disagreements page (validation/disagreements.html): the right-label picker of
// each decision form. The typed search is the shared keyboard combobox (label_search.js:
// arrows choose, Enter takes); a label taken from it, or clicked (search results or the
// annotators' own corrections), fills the form's hidden corrected_label and ticks "miss";
// "hit" or "clear" empties it. The cards are swapped by htmx: wired on every load.
(() => {
  "use strict";

  function formOf(element) {
    return element.closest("form.dis-decide");
  }

  function choose(form, key, name) {
    form.querySelector("input[name=corrected_label]").value = key;
    const chosen = form.querySelector(".dis-chosen");
    chosen.querySelector("[data-chosen]").textContent = name;
    chosen.hidden = !key;
    if (key) form.querySelector("input[name=value][value=miss]").checked = true;
  }

  function wire(form) {
    const input = form.querySelector(".dis-search");
    const results = input && document.getElementById(input.getAttribute("hx-target").slice(1));
    if (!results || input.dataset.wired || !window.SieveLabelSearch) return;
    input.dataset.wired = "1";
    SieveLabelSearch.attach(input, results, (key, option) => {
      choose(form, key, option.textContent.trim());
      SieveLabelSearch.clear(input, results);
    });
  }

  if (window.htmx) {
    htmx.onLoad((el) => {
      if (el.matches && el.matches("form.dis-decide")) wire(el);
      else if (el.querySelectorAll) el.querySelectorAll("form.dis-decide").forEach(wire);
    });
  }

  document.addEventListener("click", (event) => {
    const pick = event.target.closest(".label-pick");
    if (pick && formOf(pick)) {
      event.preventDefault();
      choose(formOf(pick), pick.dataset.label, pick.textContent.trim());
      return;
    }
    const clear = event.target.closest(".dis-clear");
    if (clear && formOf(clear)) choose(formOf(clear), "", "");
  });

  document.addEventListener("change", (event) => {
    const radio = event.target;
    if (radio.name === "value" && radio.value === "hit" && formOf(radio)) {
      choose(formOf(radio), "", "");
    }
  });

  // Without the shared combobox, Enter in the search still must not submit the form.
  document.addEventListener("keydown", (event) => {
    const input = event.target;
    if (event.key === "Enter" && input.classList && input.classList.contains("dis-search")) {
      if (!window.SieveLabelSearch) event.preventDefault();
    }
  });
})();
