// Copy buttons of the customer portal (the shown-once signing secret). Without this
// script the value is still a selectable, read-only text box; with it a button copies it
// and says so to screen readers through an aria-live region.
(function () {
  "use strict";
  function copyText(input) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(input.value);
    }
    // Plain-http hosts have no Clipboard API: the older selection-based copy.
    input.focus();
    input.select();
    return document.execCommand("copy") ? Promise.resolve() : Promise.reject();
  }
  document.querySelectorAll("[data-whp-copy]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-whp-copy"));
    var box = button.closest(".whp-copy");
    var status = box && box.querySelector("[data-whp-copy-status]");
    if (!input) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      copyText(input).then(
        function () { if (status) status.textContent = "Copied"; },
        function () {
          input.select();
          if (status) status.textContent = "Could not copy: the secret is selected, press Ctrl+C or ⌘C.";
        }
      );
    });
    input.addEventListener("focus", function () { input.select(); });
  });
})();
