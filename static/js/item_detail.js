// The item page: switch the image between "fit to the page" and its actual size, and send
// "back to the explorer" to the filtered list the user came from.
(function () {
  "use strict";
  function setup() {
    var frame = document.getElementById("image-frame");
    var image = document.getElementById("item-image");
    var toggle = document.getElementById("zoom-toggle");
    if (frame && image && toggle) {
      var flip = function () {
        var fit = frame.classList.toggle("fit");
        toggle.textContent = fit ? "Actual size" : "Fit to the page";
        toggle.setAttribute("aria-pressed", fit ? "false" : "true");
      };
      toggle.addEventListener("click", flip);
      image.addEventListener("click", flip);
    }
    var back = document.getElementById("back-to-explorer");
    if (back && document.referrer) {
      try {
        var from = new URL(document.referrer);
        if (from.origin === window.location.origin && from.pathname === back.dataset.explorerPath) {
          back.href = from.pathname + from.search;
        }
      } catch (e) { /* an unparsable referrer: keep the plain link */ }
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
