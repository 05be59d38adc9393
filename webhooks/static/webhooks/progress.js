// The outcome of a test event, resend or recovery started in the background: ask the
// server once a second until every attempt has landed (two minutes at most).
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("wh-progress");
  if (!box || box.dataset.done === "1") return;
  var text = document.getElementById("wh-progress-text");
  var hint = document.getElementById("wh-progress-hint");
  var left = 120;
  // The parts of the page that show the log, brought up to date once the work is done
  // (the form being edited, if any, is left alone).
  // A page may name its own (data-live: selectors separated by commas).
  var LIVE = box.dataset.live ? box.dataset.live.split(",") : ["#wh-health .wh-stats", "#wh-recent",
    "#wh-chart", "#attempts-group", "#result_list", ".field-status_shown", ".field-attempt_count",
    ".field-last_status_code", ".field-last_error"];
  function refresh() {
    return fetch(location.href, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        LIVE.forEach(function (selector) {
          var now = document.querySelector(selector), then = fresh.querySelector(selector);
          if (now && then) now.replaceWith(document.importNode(then, true));
        });
        box.dataset.refreshed = "1";
      });
  }
  function finish(state) {
    box.dataset.done = "1";
    box.classList.add(state.ok === true ? "wh-progress-ok" : state.ok === false ? "wh-progress-bad" : "wh-progress-end");
    hint.textContent = "The log below is up to date.";
    refresh().catch(function () {
      hint.innerHTML = '<a href="">Reload the page</a> to see it in the log.';
    });
  }
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function (state) {
        text.textContent = state.text;
        if (state.done) finish(state);
        else if (--left > 0) setTimeout(poll, 1000);
        else hint.textContent = "Still waiting for a worker: is qcluster running? Reload later to see the outcome.";
      })
      .catch(function () {
        if (--left > 0) setTimeout(poll, 2000);
      });
  }
  setTimeout(poll, 500);
});
