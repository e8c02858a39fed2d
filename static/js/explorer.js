// The explorer's filter bar: the seed only matters for the random order, so its field shows
// only then; and empty fields are left out of the query string, which stays short and
// bookmarkable.
(function () {
  "use strict";
  function setup() {
    var form = document.querySelector("form.explorer-filters");
    var order = document.getElementById("explorer-order");
    var seed = form && form.querySelector("label.seed");
    if (order && seed) {
      var sync = function () { seed.hidden = order.value !== "random"; };
      order.addEventListener("change", sync);
      sync();
    }
    if (form) {
      form.addEventListener("submit", function () {
        Array.prototype.forEach.call(form.elements, function (field) {
          if (field.name && !field.value && field.type !== "checkbox") { field.disabled = true; }
        });
        if (order && order.value === "-probability") { order.disabled = true; }
        window.setTimeout(function () {
          Array.prototype.forEach.call(form.elements, function (field) { field.disabled = false; });
        }, 0);
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
