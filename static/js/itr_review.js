// The ITR review page: two labels per tweet, set with a few keys, saved with Enter.
//
// The queue (leases, preloading, idempotent saves retried until they succeed, undo) is
// static/js/workqueue.js, shared with the hit/miss page; this file adds the two toggles, the
// four types, the reason and the guidelines. Reviews go to POST /api/itr/reviews/ (the same
// endpoint scripts use). In blind mode the server sends no original labels: both toggles start
// unset, and whether a reason is needed is the server's answer (400) to a save without one.
(() => {
  "use strict";
  const root = document.getElementById("review");
  if (!root || !window.SieveQueue) return;
  const stage = document.getElementById("stage");
  const help = document.getElementById("help");
  const guidelines = document.getElementById("guidelines");
  const blindLink = document.getElementById("btn-blind");
  const GUIDE_KEY = "sieve.itr.guidelines";

  let original = null; // {text, image} of the item on screen; null in blind mode
  const labels = { text: null, image: null }; // the reviewer's choice, null = unset
  let reasonAsked = false; // the server refused a save without a reason (blind mode)

  const typeOf = (text, image) => 1 + 2 * text + image;

  // URLs come from the page, rendered from the named routes. The undo URL is rendered for
  // review 0 (the route takes an integer id); the review's own id replaces it here.
  const queue = SieveQueue.create({
    root,
    stage,
    status: document.getElementById("save-status"),
    done: document.getElementById("done"),
    controls: document.getElementById("controls"),
    itemSelector: ".itr-item",
    itemField: "item",
    itemUrl: root.dataset.itemUrl,
    submitUrl: root.dataset.reviewsUrl,
    undoUrl: (reviewId) => root.dataset.undoUrl.replace("/0/", `/${reviewId}/`),
    describe: (body) =>
      `type ${typeOf(body.text_is_represented, body.image_adds)} ` +
      `(text ${body.text_is_represented}, image ${body.image_adds})` +
      (body.reason ? " with a reason" : ""),
    onShow: (current, el) => reset(el),
    onRefused: ({ status, detail, body }) => {
      if (status === 400 && !body.reason) {
        reasonAsked = true;
        render();
        queue.setStatus(`Not saved: ${detail}. Type a reason and press Enter.`, true);
        focusReason();
      }
    },
    undoneMessage: "Undone: review this item again.",
    unsavedWarning: "A review is not saved yet.",
  });

  function itemEl() {
    return stage.querySelector(".itr-item");
  }

  function reasonInput() {
    const el = itemEl();
    return el ? el.querySelector("input[name=reason]") : null;
  }

  function differs() {
    return Boolean(original) && (labels.text !== original.text || labels.image !== original.image);
  }

  function reasonRequired() {
    return differs() || reasonAsked;
  }

  // A fresh item (or the same one again after an undo): the toggles start at the original
  // labels, or unset in blind mode.
  function reset(el) {
    reasonAsked = false;
    original = null;
    labels.text = null;
    labels.image = null;
    if (el && el.dataset.originalText !== undefined) {
      original = { text: Number(el.dataset.originalText), image: Number(el.dataset.originalImage) };
      labels.text = original.text;
      labels.image = original.image;
    }
    const input = reasonInput();
    if (input) input.value = "";
    render();
    // On a phone the page may have scrolled down to the buttons: show the new image.
    if (el && stage.getBoundingClientRect().top < 0) stage.scrollIntoView({ block: "start" });
  }

  // The page shows the state: pressed toggles and type, the reason marked required.
  function render() {
    const el = itemEl();
    if (!el) return;
    el.querySelectorAll(".itr-choice button[data-task]").forEach((button) => {
      const value = labels[button.dataset.task];
      button.setAttribute("aria-pressed", String(value === Number(button.dataset.value)));
    });
    const type = labels.text === null || labels.image === null ? 0 : typeOf(labels.text, labels.image);
    el.querySelectorAll(".itr-type").forEach((button) => {
      button.setAttribute("aria-pressed", String(Number(button.dataset.type) === type));
    });
    const required = reasonRequired();
    const reason = el.querySelector(".itr-reason");
    reason.classList.toggle("is-required", required);
    reasonInput().required = required;
    el.classList.toggle("itr-disagrees", differs());
    // Dimmed, not disabled: a tap on it still says what is missing.
    document.getElementById("btn-submit").setAttribute("aria-disabled", String(type === 0));
  }

  function setLabel(task, value) {
    if (!queue.ready()) return;
    labels[task] = value;
    render();
  }

  // t and i: yes <-> no; from unset (blind mode) the first press says yes.
  function toggle(task) {
    setLabel(task, labels[task] === 1 ? 0 : 1);
  }

  function setType(number) {
    if (!queue.ready()) return;
    labels.text = (number - 1) >> 1;
    labels.image = (number - 1) & 1;
    render();
  }

  function focusReason() {
    const input = reasonInput();
    if (input) input.focus();
  }

  function submit() {
    if (!queue.ready()) return;
    const input = reasonInput();
    if (labels.text === null || labels.image === null) {
      queue.setStatus("Set both labels first: t and i, or 1–4.", true);
      return;
    }
    const reason = input.value.trim();
    if (reasonRequired() && !reason) {
      render();
      queue.setStatus(
        "A reason is required: your labels differ from the original ones. Type it and press Enter.",
        true
      );
      input.focus();
      return;
    }
    input.blur(); // keys are shortcuts again
    queue.submit({ text_is_represented: labels.text, image_adds: labels.image, reason });
  }

  function toggleHelp(show) {
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  function toggleGuidelines(show) {
    guidelines.hidden = show === undefined ? !guidelines.hidden : !show;
    document.getElementById("btn-guide").setAttribute("aria-expanded", String(!guidelines.hidden));
    try {
      localStorage.setItem(GUIDE_KEY, guidelines.hidden ? "0" : "1");
    } catch (err) {
      /* storage off: the panel just starts closed */
    }
  }

  function switchBlind() {
    // The server renders the other mode (the original labels are never sent in blind mode);
    // a reload resumes the same leased item. An unsaved review makes the browser ask first.
    if (queue.pending()) return;
    window.location.assign(blindLink.href);
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const input = reasonInput();
    if (input && event.target === input) {
      if (event.key === "Escape") {
        input.blur();
      } else if (event.key === "Enter") {
        event.preventDefault();
        submit();
      }
      return;
    }
    if (!help.hidden) {
      if (event.key === "Escape" || event.key === "?") toggleHelp(false);
      return;
    }
    const actions = {
      t: () => toggle("text"),
      i: () => toggle("image"),
      r: focusReason,
      Enter: submit,
      u: queue.undo,
      g: () => toggleGuidelines(),
      b: switchBlind,
      "?": () => toggleHelp(true),
      Escape: () => toggleGuidelines(false),
    };
    const action =
      actions[event.key] || (/^[1-4]$/.test(event.key) && (() => setType(Number(event.key))));
    if (action) {
      event.preventDefault();
      action();
    }
  });

  root.addEventListener("click", (event) => {
    const choice = event.target.closest(".itr-choice button[data-task]");
    if (choice) return setLabel(choice.dataset.task, Number(choice.dataset.value));
    const type = event.target.closest(".itr-type");
    if (type) return setType(Number(type.dataset.type));
    if (event.target.closest("#btn-submit")) return submit();
    if (event.target.closest(".btn-undo")) return queue.undo();
    if (event.target.closest("#btn-guide")) return toggleGuidelines();
    if (event.target.closest("#btn-help")) return toggleHelp(true);
    if (event.target.closest("#help-close") || event.target === help) return toggleHelp(false);
  });

  try {
    if (localStorage.getItem(GUIDE_KEY) === "1") toggleGuidelines(true);
  } catch (err) {
    /* storage off */
  }
  queue.start();
})();
