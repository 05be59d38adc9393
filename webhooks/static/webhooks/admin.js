// The event picker of the webhook form: "select all" per category, a search box, a live
// count of what is selected. The server honours the category boxes too, so this only
// keeps the boxes in step for the eye; without JavaScript every box still works.
document.addEventListener("DOMContentLoaded", function () {
  var picker = document.querySelector("[data-wh-events]");
  if (!picker) return;
  var groups = picker.querySelectorAll("[data-wh-group]");
  var count = picker.querySelector("[data-wh-count]");
  function countAll() {
    var n = picker.querySelectorAll("[data-wh-event]:checked").length;
    count.textContent = n + " selected";
  }
  groups.forEach(function (group) {
    var all = group.querySelector("[data-wh-select-all]");
    var boxes = group.querySelectorAll("[data-wh-event]");
    var label = group.querySelector("[data-wh-group-count]");
    function sync() {
      var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = ticked === boxes.length;
      label.textContent = ticked + " of " + boxes.length;
      countAll();
    }
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
      sync();
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    sync();
  });
  picker.querySelectorAll("[data-wh-operational] [data-wh-event]").forEach(function (b) {
    b.addEventListener("change", countAll);
  });
  var search = picker.querySelector("[data-wh-search]");
  search.addEventListener("input", function () {
    var words = search.value.trim().toLowerCase();
    groups.forEach(function (group) {
      var shown = 0;
      group.querySelectorAll("[data-wh-option]").forEach(function (li) {
        var match = !words || li.dataset.whText.indexOf(words) !== -1;
        li.hidden = !match;
        if (match) shown++;
      });
      group.hidden = shown === 0;
      if (words) group.open = shown > 0;
    });
  });
  search.addEventListener("keydown", function (e) { if (e.key === "Enter") e.preventDefault(); });
  var expand = picker.querySelector("[data-wh-expand]");
  expand.addEventListener("click", function () {
    var open = expand.textContent === "Expand all";
    groups.forEach(function (g) { g.open = open; });
    expand.textContent = open ? "Collapse all" : "Expand all";
  });
  var allEvents = document.getElementById("id_all_events");
  if (allEvents) {
    var show = function () { picker.classList.toggle("wh-dimmed", allEvents.checked); };
    allEvents.addEventListener("change", show);
    show();
  }
});
