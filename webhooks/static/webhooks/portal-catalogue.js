// The event catalogue's filter box, as one types (the form also filters on the server,
// so it works without this script). Hides types, and categories left empty, that do not
// contain every word typed; says how many are shown through an aria-live region.
(function () {
  "use strict";
  var box = document.querySelector("[data-whp-filter]");
  if (!box) return;
  var count = document.querySelector("[data-whp-filter-count]");
  // Typing filters at once; Enter still submits the form, which filters on the server.
  var submit = document.querySelector("[data-whp-filter-submit]");
  if (submit) submit.hidden = true;
  var none = document.querySelector("[data-whp-filter-none]");
  var types = Array.prototype.slice.call(document.querySelectorAll("[data-whp-type]"));
  var categories = document.querySelectorAll("[data-whp-category]");
  var timer = null;
  function apply() {
    var words = box.value.toLocaleLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    types.forEach(function (type) {
      var text = type.getAttribute("data-whp-search").toLocaleLowerCase();
      var match = words.every(function (word) { return text.indexOf(word) !== -1; });
      type.hidden = !match;
      if (match) shown += 1;
    });
    categories.forEach(function (category) {
      var empty = !category.querySelector("[data-whp-type]:not([hidden])");
      category.hidden = empty;
      var entry = document.querySelector('[data-whp-toc="' + category.id + '"]');
      if (entry) entry.hidden = empty;
    });
    if (none) none.hidden = shown > 0 || types.length === 0;
    if (count) {
      count.textContent = words.length
        ? shown + " of " + types.length + " event types match."
        : types.length + " event types.";
    }
  }
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(apply, 150);
  });
})();
