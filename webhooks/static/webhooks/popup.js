// A webhook added in a popup shows its signing secret before the popup closes: the
// admin's own popup_response.js (which hands the new webhook to the form that opened
// the popup, and closes it) runs once the secret is copied.
"use strict";
document.getElementById("wh-popup-done").addEventListener("click", function (event) {
  var button = event.currentTarget;
  var script = document.createElement("script");
  script.id = "django-admin-popup-response-constants";
  script.dataset.popupResponse = button.dataset.popupResponse;
  script.src = button.dataset.script;
  document.body.appendChild(script);
  button.disabled = true;
});
