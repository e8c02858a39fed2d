// The annotation page: one keystroke per verdict.
//
// - Verdicts go to POST /api/verdicts/ (the same endpoint scripts use) with an idempotency key,
//   so a retried request can never record a verdict twice.
// - The next item (HTML fragment + image) is fetched while the current one is on screen; it is
//   shown only once the current verdict is saved.
// - A failed save (network, server error, expired session) keeps the verdict in the page and
//   retries with backoff until it is saved; nothing is silently dropped.
(() => {
  "use strict";
  const root = document.getElementById("annotate");
  if (!root) return;
  const stage = document.getElementById("stage");
  const statusEl = document.getElementById("save-status");
  const help = document.getElementById("help");
  const search = document.getElementById("label-search");
  const results = document.getElementById("label-results");
  // URLs come from the page, rendered from the named routes. The undo URL is rendered for
  // verdict 0 (the route takes an integer id); the verdict's own id replaces it here.
  const itemUrl = root.dataset.itemUrl;
  const verdictsUrl = root.dataset.verdictsUrl;
  const undoUrl = (verdictId) => root.dataset.undoUrl.replace("/0/", `/${verdictId}/`);

  let current = null; // {id, shownAt}
  let upcoming = null; // Promise of {id, html} or null (nothing left)
  let pending = null; // the verdict being saved: {body, attempts}
  const history = []; // [{verdict, item}] of this page, for undo
  let busy = false; // an undo or a swap is in progress

  // Requests in flight, on the root element: lets tests (and curious people) see when the
  // page is idle.
  let inflight = 0;
  async function send(url, options) {
    inflight += 1;
    root.dataset.inflight = inflight;
    try {
      const response = await fetch(url, { credentials: "same-origin", ...options });
      await response.clone().text(); // the body is in before we count the request as done
      return response;
    } finally {
      inflight -= 1;
      root.dataset.inflight = inflight;
    }
  }

  function csrfToken() {
    // The cookie first: it is renewed when the user logs in again in another tab.
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    const input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }

  function setStatus(text, retrying = false) {
    statusEl.textContent = text;
    statusEl.classList.toggle("retrying", retrying);
  }

  function showCurrent() {
    const el = stage.querySelector(".ann-item");
    current = el ? { id: Number(el.dataset.item), shownAt: performance.now() } : null;
    document.getElementById("done").hidden = Boolean(current);
    document.getElementById("controls").hidden = !current;
    if (window.htmx) htmx.process(stage);
  }

  async function fetchFragment(query) {
    const response = await send(`${itemUrl}?${query}`, {
      headers: { "HX-Request": "true" },
    });
    if (response.status === 204) return null;
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const html = await response.text();
    const holder = document.createElement("div");
    holder.innerHTML = html;
    const el = holder.querySelector(".ann-item");
    if (!el) return null;
    const img = new Image(); // preload: the switch is instant
    img.src = el.dataset.image;
    return { id: Number(el.dataset.item), html };
  }

  function prefetch() {
    const exclude = current ? `exclude=${current.id}` : "";
    upcoming = fetchFragment(exclude).catch(() => "retry");
  }

  async function advance() {
    let next = upcoming ? await upcoming : null;
    // Ask again when the preload failed or found nothing: leases of others may have expired.
    if (!next || next === "retry" || (current && next.id === current.id)) {
      next = await fetchFragment("").catch(() => "retry");
    }
    if (next === "retry") {
      setStatus("Could not load the next item; retrying…", true);
      await new Promise((r) => setTimeout(r, 1500));
      upcoming = null;
      return advance();
    }
    stage.innerHTML = next ? next.html : "";
    showCurrent();
    if (current) prefetch();
  }

  function refreshProgress() {
    document.body.dispatchEvent(new Event("sieve:saved"));
  }

  async function save() {
    const p = pending;
    p.attempts += 1;
    let response;
    try {
      response = await send(verdictsUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(p.body),
      });
    } catch (err) {
      return retry("network error");
    }
    // 409 with a verdict: the annotator had already judged the item (that verdict stays);
    // 409 without one: the sample is closed, which the end of this function reports.
    const conflict =
      response.status === 409 ? await response.clone().json().catch(() => ({})) : null;
    if (response.status === 201 || response.status === 200 || (conflict && conflict.verdict)) {
      const verdict = conflict ? conflict.verdict : await response.json();
      history.push({ verdict: verdict.id, item: p.body.sample_item });
      pending = null;
      document.body.classList.remove("saving");
      const label = p.body.corrected_label ? ` → ${p.body.corrected_label}` : "";
      setStatus(
        response.status === 409
          ? "You had already judged this item; your earlier verdict is kept."
          : `Saved: ${p.body.value}${label}`
      );
      await advance();
      refreshProgress();
      return;
    }
    if (response.status === 401 || response.status === 403) {
      return retry("your session expired: log in again in another tab (/accounts/login/)");
    }
    if (response.status >= 500 || response.status === 429) {
      return retry(`server error ${response.status}`);
    }
    // 400/404/409: retrying cannot help; say why and let the annotator choose again.
    let detail = `HTTP ${response.status}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch (err) {
      /* not JSON */
    }
    pending = null;
    document.body.classList.remove("saving");
    setStatus(`Not saved: ${detail}`, true);
  }

  function retry(reason) {
    const delay = Math.min(500 * 2 ** (pending.attempts - 1), 10000);
    setStatus(
      `Not saved yet (${reason}). Your ${pending.body.value} is kept and retried in ` +
        `${Math.round(delay / 100) / 10} s…`,
      true
    );
    setTimeout(save, delay);
  }

  function judge(value, correctedLabel) {
    if (!current || pending || busy) return;
    const body = {
      sample_item: current.id,
      value,
      key: newKey(),
      duration_ms: Math.round(performance.now() - current.shownAt),
    };
    if (correctedLabel) body.corrected_label = correctedLabel;
    pending = { body, attempts: 0 };
    document.body.classList.add("saving");
    setStatus(`Saving ${value}…`);
    search.value = "";
    results.innerHTML = "";
    search.blur(); // keys are shortcuts again
    save();
  }

  async function undo() {
    if (pending || busy) return;
    const last = history.pop();
    if (!last) {
      setStatus("Nothing to undo on this page.");
      return;
    }
    busy = true;
    try {
      const response = await send(undoUrl(last.verdict), {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken() },
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const back = await fetchFragment(`item=${last.item}`);
      // The item on screen stays leased to us: it comes right after the undone one.
      const onScreen = stage.innerHTML;
      const onScreenId = current ? current.id : null;
      stage.innerHTML = back ? back.html : "";
      showCurrent();
      upcoming = onScreenId
        ? Promise.resolve({ id: onScreenId, html: onScreen })
        : fetchFragment(`exclude=${current ? current.id : ""}`).catch(() => "retry");
      setStatus("Undone: judge this item again.");
      refreshProgress();
    } catch (err) {
      history.push(last);
      setStatus(`Undo failed (${err.message}); try again.`, true);
    } finally {
      busy = false;
    }
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
      u: undo,
      Backspace: undo,
      "?": () => toggleHelp(true),
      "/": () => search.focus(),
    };
    const action = actions[event.key] || (/^[1-5]$/.test(event.key) && (() => pickSuggestion(Number(event.key))));
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
    if (event.target.closest("#btn-undo")) return undo();
    if (event.target.closest("#btn-help")) return toggleHelp(true);
    if (event.target.closest("#help-close") || event.target === help) return toggleHelp(false);
  });

  window.addEventListener("beforeunload", (event) => {
    if (pending) {
      event.preventDefault();
      event.returnValue = "A verdict is not saved yet.";
    }
  });

  showCurrent();
  if (current) prefetch();
})();
