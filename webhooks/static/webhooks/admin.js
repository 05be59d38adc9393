// "Select all" per event category in the webhook form. The server honours the
// category boxes too, so this only keeps the boxes in step for the eye.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-wh-group]").forEach(function (group) {
    var all = group.querySelector("[data-wh-select-all]");
    var boxes = group.querySelectorAll("[data-wh-event]");
    function sync() {
      all.checked = Array.prototype.every.call(boxes, function (b) { return b.checked; });
    }
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
    sync();
  });
  var allEvents = document.getElementById("id_all_events");
  var events = document.querySelector("[data-wh-events]");
  if (allEvents && events) {
    var show = function () { events.classList.toggle("wh-dimmed", allEvents.checked); };
    allEvents.addEventListener("change", show);
    show();
  }
});
