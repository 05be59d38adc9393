// The event picker of the webhook form: "select all" per category, a search box, a live
// count of what is selected. Without JavaScript the server reads a ticked "select all"
// as the whole category; with it, "select all" ticks the types shown (a search may hide
// some) and only the ticked boxes are sent.
document.addEventListener("DOMContentLoaded", function () {
  var picker = document.querySelector("[data-wh-events]");
  if (!picker) return;
  var groups = picker.querySelectorAll("[data-wh-group]");
  var count = picker.querySelector("[data-wh-count]");
  function countAll() {
    var n = picker.querySelectorAll("[data-wh-event]:checked").length;
    count.textContent = n + " selected";
  }
  var syncs = [];
  groups.forEach(function (group) {
    var all = group.querySelector("[data-wh-select-all]");
    var boxes = group.querySelectorAll("[data-wh-event]");
    var label = group.querySelector("[data-wh-group-count]");
    var words = group.querySelector("[data-wh-select-words]");
    var allWords = words.textContent;
    // With this script the boxes below are what is sent: the server's "whole category"
    // meaning of this box (for pages without JavaScript) would add the types hidden by
    // a search too.
    all.removeAttribute("name");
    function shown() {
      return Array.prototype.filter.call(boxes, function (b) { return !b.closest("[data-wh-option]").hidden; });
    }
    function sync() {
      var visible = shown();
      var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = visible.length > 0 && visible.every(function (b) { return b.checked; });
      words.textContent = visible.length === boxes.length ? allWords : "select the " + visible.length + " shown";
      label.textContent = ticked + " of " + boxes.length;
      countAll();
    }
    all.addEventListener("change", function () {
      shown().forEach(function (b) { b.checked = all.checked; });
      sync();
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    syncs.push(sync);
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
    syncs.forEach(function (sync) { sync(); });
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
