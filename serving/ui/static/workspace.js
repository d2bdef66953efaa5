// leadready workspace: progressive enhancement only; every page works without this file.
// - forms marked data-autosubmit submit when a select changes (number inputs: after a pause);
// - forms marked data-busy disable their button and say so while the server scores.
(function () {
  "use strict";
  function autosubmit(form) {
    var timer = null;
    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target.tagName === "SELECT") {
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }
    });
    form.addEventListener("input", function (event) {
      if (event.target.type !== "number") { return; }
      clearTimeout(timer);
      timer = setTimeout(function () {
        form.requestSubmit ? form.requestSubmit() : form.submit();
      }, 600);
    });
  }
  function busy(form) {
    form.addEventListener("submit", function () {
      var button = form.querySelector("button[type=submit]");
      if (button) {
        button.disabled = true;
        button.textContent = form.getAttribute("data-busy");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-autosubmit]").forEach(autosubmit);
    document.querySelectorAll("form[data-busy]").forEach(busy);
  });
})();
