// The order ticket: show only the price fields of the chosen order type. (Its 400/409
// answers are swapped by app.js, through data-swap-errors on the ticket.)
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
})();
