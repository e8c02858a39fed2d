// The taxonomy type-ahead as a combobox (the ARIA listbox pattern): the search input keeps
// the focus, ArrowDown/ArrowUp move the highlight over the results (aria-activedescendant),
// Enter takes the highlighted label, Escape leaves. The first result is highlighted when the
// results come, so Enter alone still takes it; a result is taken only from results that
// match what is typed now (Enter while they are on their way takes the first once they come).
// Used by the annotation page and the history page; the results are
// templates/validation/_label_results.html (buttons `.label-pick` with `data-label`).
//
// Usage: SieveLabelSearch.attach(input, results, (labelKey) => ...).
(() => {
  "use strict";

  function options(results) {
    return Array.from(results.querySelectorAll(".label-pick"));
  }

  function highlighted(input, results) {
    const id = input.getAttribute("aria-activedescendant");
    return id ? results.querySelector(`#${CSS.escape(id)}`) : null;
  }

  function highlight(input, results, option) {
    options(results).forEach((el) => el.setAttribute("aria-selected", String(el === option)));
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function attach(input, results, pick) {
    // input.dataset.answered: the query the results on screen answer.
    let pickWhenLoaded = false; // Enter was pressed while the results were on their way

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", results.id);
    input.setAttribute("aria-expanded", "false");
    results.setAttribute("role", "listbox");

    const query = () => input.value.trim();

    function take(option) {
      pickWhenLoaded = false;
      if (option) pick(option.dataset.label, option);
    }

    // New results: options get ids (unique per results box), the first is highlighted.
    function prepare() {
      const found = options(results);
      found.forEach((el, n) => {
        el.id = `${results.id}-opt-${n}`;
        el.setAttribute("role", "option");
        el.setAttribute("tabindex", "-1");
      });
      input.setAttribute("aria-expanded", String(found.length > 0));
      highlight(input, results, found[0] || null);
      if (pickWhenLoaded && input.dataset.answered === query()) take(found[0]);
    }

    document.body.addEventListener("htmx:beforeRequest", (event) => {
      if (event.detail.elt === input) input.dataset.requested = query();
    });
    document.body.addEventListener("htmx:afterSwap", (event) => {
      if (event.detail.target !== results) return;
      input.dataset.answered = input.dataset.requested || "";
      prepare();
    });
    input.addEventListener("input", () => {
      pickWhenLoaded = false;
    });

    input.addEventListener("keydown", (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
      const found = options(results);
      const at = found.indexOf(highlighted(input, results));
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!found.length) return;
        const step = event.key === "ArrowDown" ? 1 : -1;
        highlight(input, results, found[(at + step + found.length) % found.length]);
      } else if (event.key === "Enter") {
        event.preventDefault();
        if (event.repeat) return;
        if (!query()) return;
        if (input.dataset.answered !== query()) {
          pickWhenLoaded = true; // taken as soon as the results for this query come
          return;
        }
        take(found[at] || null);
      } else if (event.key === "Escape") {
        input.blur();
      }
    });
  }

  // Empty the search and its results (after a label was taken).
  function clear(input, results) {
    input.value = "";
    delete input.dataset.answered;
    results.replaceChildren();
    input.removeAttribute("aria-activedescendant");
    input.setAttribute("aria-expanded", "false");
  }

  window.SieveLabelSearch = { attach, clear };
})();
