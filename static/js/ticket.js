// The order ticket: show only the price fields of the chosen order type, and let htmx
// swap the ticket's 400/409 answers (they carry the messages next to the fields).
(function () {
  "use strict";

  function showFieldsFor(form) {
    var select = form.querySelector("select[name=type]");
    if (!select) { return; }
    form.querySelectorAll("[data-order-types]").forEach(function (block) {
      var types = block.getAttribute("data-order-types").split(" ");
      block.hidden = types.indexOf(select.value) === -1;
    });
  }

  function init(root) {
    (root || document).querySelectorAll("[data-ticket] form").forEach(showFieldsFor);
  }

  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function () { init(document); });
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "type" && target.closest("[data-ticket]")) { showFieldsFor(target.form); }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if ((status === 400 || status === 409) && event.detail.target.closest("[data-ticket]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
