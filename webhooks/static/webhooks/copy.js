// The copy button of a secret shown once: copies it and says "Copied" (aria-live), or,
// where the clipboard is refused, selects it for Ctrl+C and says so.
"use strict";
document.querySelectorAll("[data-wh-copy]").forEach(function (button) {
  var value = document.getElementById(button.dataset.whCopy);
  var status = document.getElementById("wh-copy-status");
  if (!value) return;
  button.hidden = false;
  function say(text) {
    status.textContent = text;
    setTimeout(function () { if (status.textContent === text) status.textContent = ""; }, 4000);
  }
  function select() {
    var range = document.createRange();
    range.selectNodeContents(value);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  button.addEventListener("click", function () {
    var text = value.textContent.trim();
    var copied = navigator.clipboard && window.isSecureContext
      ? navigator.clipboard.writeText(text)
      : Promise.reject(new Error("no clipboard"));
    copied.then(function () { say("Copied"); }, function () {
      select();
      say(document.execCommand && document.execCommand("copy") ? "Copied" : "Selected: press Ctrl+C to copy");
    });
  });
});
