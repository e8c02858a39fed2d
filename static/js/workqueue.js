// A work-queue page: one item on screen, the next one preloaded, each answer saved before the
// next item shows. Shared by the hit/miss annotation page (annotate.js) and the ITR review
// page (itr_review.js); each page adds its own keys and the body of its answers.
//
// - Answers go to the page's REST endpoint (the same one scripts use) with an idempotency key,
//   so a retried request can never record an answer twice.
// - The next item (HTML fragment + image) is fetched while the current one is on screen, with
//   `exclude=` the current one; it is shown only once the current answer is saved.
// - A failed save (network, server error, expired session) keeps the answer in the page and
//   retries with backoff until it is saved; nothing is silently dropped, and leaving the page
//   meanwhile asks first.
// - Undo deletes the page's last saved answer and shows its item again (leased back by the
//   server); the item that was on screen comes right after it.
//
// Usage: const queue = SieveQueue.create({root, stage, status, itemUrl, submitUrl, undoUrl,
// ...}); queue.start(); then queue.submit({...fields}) and queue.undo().
(() => {
  "use strict";

  const DEFAULTS = {
    itemSelector: ".ann-item", // the fragment's root: data-item (id), data-image (optional)
    itemField: "item", // the item's id field in the submitted body
    done: null, // shown when nothing is left
    controls: null, // shown while an item is on screen
    describe: () => "answer", // body -> short text for the status line
    onShow: () => {}, // (current, element) after an item (or nothing) is put on screen
    onConflict: () => null, // (409 JSON) -> {answer, message} when that 409 counts as saved
    onRefused: () => {}, // ({status, detail, body}) after a 400/404/409 that retrying cannot fix
    undoneMessage: "Undone: answer this item again.",
    unsavedWarning: "An answer is not saved yet.",
  };

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return `${Date.now()}-${Math.random().toString(36).slice(2)}`;
  }

  // The error text of an API answer: its `detail`, else the first field error.
  function errorText(json, fallback) {
    if (json && typeof json.detail === "string") return json.detail;
    if (json && typeof json === "object") {
      for (const [field, value] of Object.entries(json)) {
        return `${field}: ${Array.isArray(value) ? value.join(" ") : value}`;
      }
    }
    return fallback;
  }

  function withQuery(base, query) {
    const url = new URL(base, window.location.href);
    new URLSearchParams(query).forEach((value, name) => url.searchParams.set(name, value));
    return url.pathname + url.search;
  }

  function create(options) {
    const o = { ...DEFAULTS, ...options };
    const { root, stage } = o;

    let current = null; // {id, shownAt, el}
    let upcoming = null; // Promise of {id, html}, null (nothing left) or "retry"
    let pending = null; // the answer being saved: {body, attempts}
    const history = []; // [{answer, item}] of this page, for undo
    let busy = false; // an undo is in progress

    // Requests in flight, on the root element: lets tests (and curious people) see when the
    // page is idle.
    let inflight = 0;
    async function send(url, init) {
      inflight += 1;
      root.dataset.inflight = inflight;
      try {
        const response = await fetch(url, { credentials: "same-origin", ...init });
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

    function setStatus(text, problem = false) {
      o.status.textContent = text;
      o.status.classList.toggle("retrying", problem);
    }

    function showCurrent() {
      const el = stage.querySelector(o.itemSelector);
      current = el ? { id: Number(el.dataset.item), shownAt: performance.now(), el } : null;
      if (o.done) o.done.hidden = Boolean(current);
      if (o.controls) o.controls.hidden = !current;
      if (window.htmx) htmx.process(stage);
      o.onShow(current, el);
    }

    async function fetchFragment(query) {
      const response = await send(withQuery(o.itemUrl, query), {
        headers: { "HX-Request": "true" },
      });
      if (response.status === 204) return null;
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const html = await response.text();
      const holder = document.createElement("div");
      holder.innerHTML = html;
      const el = holder.querySelector(o.itemSelector);
      if (!el) return null;
      if (el.dataset.image) {
        const img = new Image(); // preload: the switch is instant
        img.src = el.dataset.image;
      }
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
      // The progress fragment (htmx) listens for this event.
      document.body.dispatchEvent(new Event("sieve:saved"));
    }

    function saved(answer, message) {
      history.push({ answer: answer.id, item: pending.body[o.itemField] });
      pending = null;
      document.body.classList.remove("saving");
      setStatus(message);
    }

    async function save() {
      const p = pending;
      p.attempts += 1;
      let response;
      try {
        response = await send(o.submitUrl, {
          method: "POST",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
          body: JSON.stringify(p.body),
        });
      } catch (err) {
        return retry("network error");
      }
      if (response.status === 201 || response.status === 200) {
        saved(await response.json(), `Saved: ${o.describe(p.body)}`);
        await advance();
        refreshProgress();
        return;
      }
      const json = await response.clone().json().catch(() => null);
      const conflict = response.status === 409 && json ? o.onConflict(json) : null;
      if (conflict) {
        saved(conflict.answer, conflict.message);
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
      // 400/404/409: retrying cannot help; say why and let the person answer again.
      const detail = errorText(json, `HTTP ${response.status}`);
      pending = null;
      document.body.classList.remove("saving");
      setStatus(`Not saved: ${detail}`, true);
      o.onRefused({ status: response.status, detail, body: p.body });
    }

    function retry(reason) {
      const delay = Math.min(500 * 2 ** (pending.attempts - 1), 10000);
      setStatus(
        `Not saved yet (${reason}). Your ${o.describe(pending.body)} is kept and retried in ` +
          `${Math.round(delay / 100) / 10} s…`,
        true
      );
      setTimeout(save, delay);
    }

    // Whether an answer may be submitted now: an item is on screen and nothing is in progress.
    function ready() {
      return Boolean(current) && !pending && !busy;
    }

    function submit(fields) {
      if (!ready()) return false;
      const body = {
        [o.itemField]: current.id,
        ...fields,
        key: newKey(),
        duration_ms: Math.round(performance.now() - current.shownAt),
      };
      pending = { body, attempts: 0 };
      document.body.classList.add("saving");
      setStatus(`Saving ${o.describe(body)}…`);
      save();
      return true;
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
        const response = await send(o.undoUrl(last.answer), {
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
        setStatus(o.undoneMessage);
        refreshProgress();
      } catch (err) {
        history.push(last);
        setStatus(`Undo failed (${err.message}); try again.`, true);
      } finally {
        busy = false;
      }
    }

    window.addEventListener("beforeunload", (event) => {
      if (pending) {
        event.preventDefault();
        event.returnValue = o.unsavedWarning;
      }
    });

    function start() {
      showCurrent();
      if (current) prefetch();
    }

    return {
      start,
      submit,
      undo,
      ready,
      setStatus,
      current: () => current,
      pending: () => Boolean(pending),
    };
  }

  window.SieveQueue = { create };
})();
