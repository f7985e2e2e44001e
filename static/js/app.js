// Bullpen's small amount of page behaviour. No inline script anywhere: the CSP forbids it.
(function () {
  "use strict";

  function dismissLater(toast) {
    setTimeout(function () {
      toast.classList.add("is-leaving");
      setTimeout(function () { toast.remove(); }, 400);
    }, 6000);
  }

  function initToasts(root) {
    (root || document).querySelectorAll(".toast:not([data-seen])").forEach(function (toast) {
      toast.setAttribute("data-seen", "1");
      dismissLater(toast);
    });
  }

  document.addEventListener("DOMContentLoaded", function () { initToasts(document); });
  document.addEventListener("htmx:afterSettle", function () { initToasts(document); });
  document.addEventListener("htmx:oobAfterSwap", function () { initToasts(document); });

  // Confirmation for destructive actions: <form data-confirm="Cancel this order?">.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); event.stopPropagation(); }
  }, true);
  document.addEventListener("htmx:confirm", function (event) {
    var element = event.detail.elt;
    var question = element.getAttribute("data-confirm");
    if (!question) { return; }
    event.preventDefault();
    if (window.confirm(question)) { event.detail.issueRequest(true); }
  });

  window.Bullpen = window.Bullpen || {};
  window.Bullpen.initToasts = initToasts;
})();
