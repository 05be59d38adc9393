// The portal's event picker, improved: a search box over each type's name and description,
// a live count, and a category's "select all" that ticks only the types the search shows.
// Without this script every checkbox still works (the server honours "select all").
(function () {
  "use strict";
  function setUp(picker) {
    var bar = picker.querySelector("[data-whp-bar]");
    var search = picker.querySelector("[data-whp-search]");
    var count = picker.querySelector("[data-whp-count]");
    var none = picker.querySelector("[data-whp-none]");
    var groups = picker.querySelectorAll("[data-whp-group]");
    var all = picker.querySelectorAll("[data-whp-event]");
    function visible(box) { return !box.closest("[data-whp-option]").hidden; }
    function countAll() {
      var n = 0;
      all.forEach(function (box) { if (box.checked) n++; });
      count.textContent = n + " selected";
    }
    groups.forEach(function (group) {
      var selectAll = group.querySelector("[data-whp-select-all]");
      var boxes = group.querySelectorAll("[data-whp-event]");
      var label = group.querySelector("[data-whp-group-count]");
      // From now on the ticks are the choice: the box itself is not sent, so the server
      // never adds types the search hid.
      selectAll.removeAttribute("name");
      group.sync = function () {
        var ticked = 0, shown = 0, shownTicked = 0;
        boxes.forEach(function (box) {
          if (box.checked) ticked++;
          if (visible(box)) { shown++; if (box.checked) shownTicked++; }
        });
        selectAll.checked = shown > 0 && shownTicked === shown;
        label.textContent = ticked + " of " + boxes.length + " selected";
        countAll();
      };
      selectAll.addEventListener("change", function () {
        boxes.forEach(function (box) { if (visible(box)) box.checked = selectAll.checked; });
        group.sync();
      });
      boxes.forEach(function (box) { box.addEventListener("change", group.sync); });
      group.sync();
    });
    all.forEach(function (box) { box.addEventListener("change", countAll); });
    search.addEventListener("input", function () {
      var words = search.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
      var anyShown = false;
      picker.querySelectorAll("[data-whp-group], [data-whp-operational]").forEach(function (group) {
        var shown = 0;
        group.querySelectorAll("[data-whp-option]").forEach(function (option) {
          var text = option.getAttribute("data-whp-text");
          var match = words.every(function (word) { return text.indexOf(word) !== -1; });
          option.hidden = !match;
          if (match) shown++;
        });
        group.hidden = shown === 0;
        if (shown) anyShown = true;
        if (group.sync) group.sync();
      });
      none.hidden = anyShown;
    });
    // Enter in the search box must not submit the webhook form.
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") event.preventDefault();
    });
    var allEvents = document.getElementById("id_all_events");
    if (allEvents) {
      var dim = function () { picker.classList.toggle("whp-events--all", allEvents.checked); };
      allEvents.addEventListener("change", dim);
      dim();
    }
    bar.hidden = false;
    countAll();
  }
  function start() { document.querySelectorAll("[data-whp-events]").forEach(setUp); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
