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

  // htmx leaves 4xx answers unswapped. Our views answer bad input with 400 (or 409 when
  // the input was fine but the state refuses it: not enough cash, an offer that ended)
  // and the form showing the message next to the field; swap those into any region
  // marked data-swap-errors, so the player sees why.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 409) && target && target.closest("[data-swap-errors]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  window.Bullpen = window.Bullpen || {};
  window.Bullpen.initToasts = initToasts;
})();
