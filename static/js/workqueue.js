// A work-queue page: one item on screen, the next ones preloaded, each answer saved before the
// next item shows. Shared by the hit/miss annotation page (annotate.js) and the ITR review
// page (itr_review.js); each page adds its own keys and the body of its answers.
// See docs/architecture.md#annotator-path.
//
// - Answers go to the page's REST endpoint (the same one scripts use) with an idempotency key,
//   so a retried request can never record an answer twice.
// - The next items (`preload`, 3 by default: HTML fragment + decoded image) are fetched while
//   the current one is on screen, with `exclude=` the ones the page already holds. An item is
//   put on screen only once its image is decoded (or failed), so the image box is never empty,
//   and in a frame callback, so that it is painted before any key is handled: `ready()` (and
//   so `submit()`) refuses while the next item is on its way, so that a key can never act on
//   an item nobody has seen.
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
    preload: 3, // items fetched ahead of the one on screen (each is leased to this page)
    // A preloaded item older than this is fetched again: its lease (SIEVE_LEASE_SECONDS,
    // 300 s by default) may have lapsed and gone to someone else.
    maxAgeMs: 120000,
    imageTimeoutMs: 10000, // an image still not decoded after this is shown as it is
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

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Resolves in the next frame's callbacks, just before that frame is painted. A change made
  // then is painted before the page handles any other event (a key press included): events
  // are handled in tasks, and a frame's callbacks, microtasks and paint run without a task in
  // between.
  function nextFrame() {
    return new Promise((resolve) => requestAnimationFrame(resolve));
  }

  function create(options) {
    const o = { ...DEFAULTS, ...options };
    const { root, stage } = o;

    // The item on screen: {id, el, shown (painted), shownAt}.
    let current = null;
    // Preloaded items, in the order they will show: {id, nodes, decoded, fetchedAt}.
    let buffer = [];
    let filling = null; // the running fill(), if any
    let pending = null; // the answer being saved: {body, attempts}
    const history = []; // [{answer, item}] of this page, for undo
    let busy = false; // an undo is in progress
    let switching = false; // the next item is on its way to the screen
    let returning = null; // the item an undo brings back, until it is on screen

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

    // Decode the images of an item (in the page or not yet): resolves, never rejects, once
    // each is decoded, failed (its figure says so) or timed out.
    function decodeImages(container) {
      const images = Array.from(container.querySelectorAll("img"));
      return Promise.all(
        images.map((img) => {
          const decoded = img.decode().then(
            () => true,
            () => {
              const figure = img.closest("figure");
              if (figure) figure.classList.add("img-failed");
              return false;
            }
          );
          return Promise.race([decoded, sleep(o.imageTimeoutMs)]);
        })
      );
    }

    // The element on screen becomes the current item (not shown yet).
    function mount() {
      const el = stage.querySelector(o.itemSelector);
      current = el ? { id: Number(el.dataset.item), el, shown: false, shownAt: 0 } : null;
      delete root.dataset.shown;
      if (o.done) o.done.hidden = Boolean(current);
      if (o.controls) o.controls.hidden = !current;
      // A button that kept the focus (a mouse click on it) must not answer the new item when
      // Space or Enter is pressed.
      const focused = document.activeElement;
      if (focused && focused.tagName === "BUTTON" && root.contains(focused)) focused.blur();
      if (window.htmx) htmx.process(stage);
      o.onShow(current, el);
      return current;
    }

    function markShown(item) {
      if (!item || current !== item || item.shown) return;
      item.shown = true;
      item.shownAt = performance.now();
      root.dataset.shown = item.id; // for tests: the item keys act on now
    }

    // Put a preloaded item (or nothing) on screen, once its image is decoded.
    async function show(next) {
      if (next) {
        const slow = setTimeout(() => setStatus("Loading the next image…"), 400);
        await next.decoded;
        clearTimeout(slow);
        if (o.status.textContent === "Loading the next image…") setStatus("");
      }
      // Put on screen in a frame callback: the item is painted before a key can act on it.
      await nextFrame();
      stage.replaceChildren(...(next ? next.nodes : []));
      markShown(mount());
    }

    async function fetchFragment(query) {
      const response = await send(withQuery(o.itemUrl, query), {
        headers: { "HX-Request": "true" },
      });
      if (response.status === 204) return null;
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();
      const el = holder.querySelector(o.itemSelector);
      if (!el) return null;
      // The image starts loading now (the holder belongs to this document) and is decoded
      // before the item is shown: putting a decoded <img> on screen paints it at once.
      return {
        id: Number(el.dataset.item),
        nodes: Array.from(holder.childNodes),
        decoded: decodeImages(holder),
        fetchedAt: performance.now(),
      };
    }

    // The items this page holds: on screen, coming back by an undo, preloaded.
    function held() {
      return [current && current.id, returning, ...buffer.map((f) => f.id)].filter(Boolean);
    }

    // Preload items until `preload` are waiting; stops early when none is left. Resolves to
    // "retry" when a request failed.
    async function fill() {
      while (buffer.length < o.preload) {
        const exclude = held();
        let next;
        try {
          next = await fetchFragment(exclude.length ? { exclude: exclude.join(",") } : {});
        } catch (err) {
          return "retry";
        }
        // An item the page already holds or has answered (an undo meanwhile) ends this round.
        if (!next || held().includes(next.id) || history.some((h) => h.item === next.id)) {
          return null;
        }
        buffer.push(next);
      }
      return null;
    }

    function refill() {
      if (!filling) filling = fill().finally(() => (filling = null));
      return filling;
    }

    async function advance() {
      switching = true;
      try {
        await switchToNext();
      } finally {
        switching = false;
      }
    }

    async function switchToNext() {
      for (;;) {
        const now = performance.now();
        buffer = buffer.filter((f) => now - f.fetchedAt < o.maxAgeMs);
        if (!buffer.length && filling) await filling;
        // Ask again when the preloads failed or found nothing: leases of others may have
        // expired since.
        if (!buffer.length && (await refill()) === "retry" && !buffer.length) {
          setStatus("Could not load the next item; retrying…", true);
          await sleep(1500);
          continue;
        }
        break;
      }
      await show(buffer.shift() || null);
      if (current) refill();
    }

    // The progress fragment (htmx) listens for "sieve:saved". htmx drops a trigger while that
    // element's request is in flight, so a refresh asked meanwhile is sent once it is back:
    // the figures always end up counting the last answer.
    const PROGRESS = "[hx-trigger*='sieve:saved']";
    let refreshOwed = false;
    function refreshProgress() {
      if (document.querySelector(`${PROGRESS}.htmx-request`)) {
        refreshOwed = true;
        return;
      }
      document.body.dispatchEvent(new Event("sieve:saved"));
    }
    document.body.addEventListener("htmx:afterSettle", (event) => {
      if (refreshOwed && event.target.matches && event.target.matches(PROGRESS)) {
        refreshOwed = false;
        setTimeout(refreshProgress, 0);
      }
    });

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

    // Whether an answer may be submitted now: an item is on screen and painted, and nothing
    // is in progress (a save, an undo, or the switch to the next item).
    function ready() {
      return Boolean(current && current.shown) && !pending && !busy && !switching;
    }

    // `itemId`, when given, is the item that was on screen when the person acted (the key
    // went down): the answer is refused if another item is on screen now.
    function submit(fields, itemId) {
      if (!ready() || (itemId !== undefined && itemId !== current.id)) return false;
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
      // Leased back to us by the undo: a preload must not fetch it as a new item.
      returning = last.item;
      try {
        const response = await send(o.undoUrl(last.answer), {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken() },
        });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const back = await fetchFragment({ item: last.item });
        // The item on screen stays leased to us: it comes right after the undone one (its
        // image is decoded already).
        if (current) {
          const nodes = Array.from(stage.childNodes);
          buffer.unshift({
            id: current.id,
            nodes,
            decoded: Promise.resolve(),
            fetchedAt: performance.now(),
          });
        }
        buffer = buffer.filter((f) => !back || f.id !== back.id);
        await show(back);
        if (!buffer.length) refill();
        setStatus(o.undoneMessage);
        refreshProgress();
      } catch (err) {
        history.push(last);
        setStatus(`Undo failed (${err.message}); try again.`, true);
      } finally {
        busy = false;
        returning = null;
      }
    }

    window.addEventListener("beforeunload", (event) => {
      if (pending) {
        event.preventDefault();
        event.returnValue = o.unsavedWarning;
      }
    });

    // The first item comes with the page: it counts as shown once its image is decoded and
    // painted, or at the page's load event (which waits for that image) if that comes first.
    // Preloading starts at once.
    function start() {
      const item = mount();
      if (!item) return;
      refill();
      decodeImages(stage)
        .then(nextFrame)
        .then(() => markShown(item));
      if (document.readyState === "complete") markShown(item);
      else window.addEventListener("load", () => markShown(item), { once: true });
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
