"use strict";
// The copy button of the page that shows a new API key once.
(function () {
  var button = document.getElementById("api-key-copy");
  if (!button) {
    return;
  }
  var field = document.getElementById(button.dataset.target);
  var status = document.getElementById("api-key-copy-status");

  function report(copied) {
    status.textContent = copied ? button.dataset.copied : button.dataset.failed;
  }

  function copyBySelection() {
    field.focus();
    field.select();
    try {
      report(document.execCommand("copy"));
    } catch (error) {
      report(false);
    }
  }

  button.addEventListener("click", function () {
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(
        function () { report(true); },
        copyBySelection
      );
    } else {
      copyBySelection();
    }
  });
})();
