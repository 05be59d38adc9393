// The portal's test-event page: choosing an event type puts its example payload in the
// text box (unless the box was edited); a test still being sent is looked at again every
// two seconds. Without this script, "Use its example" and "Reload" do the same by hand.
(function () {
  "use strict";
  var select = document.querySelector("[data-whp-example-select]");
  var payload = document.querySelector("[data-whp-example-payload]");
  var data = document.getElementById("whp-examples");
  if (select && payload && data) {
    var examples = JSON.parse(data.textContent);
    var load = document.querySelector("[data-whp-load-example]");
    if (load) load.hidden = true;
    select.addEventListener("change", function () {
      var shown = Object.keys(examples).some(function (name) {
        return examples[name].trim() === payload.value.trim();
      });
      if (shown || !payload.value.trim()) {
        payload.value = examples[select.value] || "{}";
      }
    });
  }
  var pending = document.querySelector("[data-whp-pending]");
  if (pending) {
    var tries = Number(sessionStorage.getItem("whp-test-tries") || 0);
    if (tries < 15) {
      sessionStorage.setItem("whp-test-tries", String(tries + 1));
      setTimeout(function () { window.location.reload(); }, 2000);
    }
  } else {
    sessionStorage.removeItem("whp-test-tries");
  }
})();
