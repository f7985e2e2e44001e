// The offer pages: htmx leaves 4xx answers unswapped by default, so a refused review
// (a price outside the band, too many shares, an offer that just ended) would change
// nothing on screen. The views answer 400/409 with the form or card showing the error
// next to the field; swap those into the regions marked data-offer-swap.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 409) && target && target.closest("[data-offer-swap]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
