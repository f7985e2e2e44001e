// Live updates: one websocket per tab (/ws/live/) through htmx's ws extension.
//
// A page declares what it shows; nothing else is needed:
//   data-live-view="quote|stock|watch|position" data-live-symbols="AAPL MSFT"
//       the symbols whose spans this element holds (sent as the subscription);
//   data-live (with an id)
//       a region re-fetched after a reconnect, and every 30 s while the socket is down;
//   data-live-refresh="orders offers" (with an id)
//       a region re-fetched when the server signals that event (a fill, an offer).
// The server sends out-of-band <span>s (see market/consumers.py); this file adds the
// up/down flash, reconnects after closes the extension ignores (code 1000 from daphne's
// idle close or a restart), and drives the header indicator (#live-status).
(function () {
  "use strict";

  var SOCKET_ID = "live-socket";
  var POLL_MS = 30000;
  var PING_MS = 30000;
  var STALE_AFTER_MS = 15000;
  var MAX_BACKOFF_MS = 30000;
  // Close codes the ws extension already retries by itself.
  var EXTENSION_RETRIES = [1006, 1011, 1012, 1013];
  var FLASH_PREFIXES = ["px-", "pos-px-", "wl-px-", "hdr-networth", "pf-networth"];

  var state = {
    open: false,
    everOpened: false,
    closedAt: null,
    retries: 0,
    retryTimer: null,
    subscription: "",
    previous: {},
    socket: null,
  };

  function backoff(retries) {
    // Exponential with jitter, so a restarted server is not hit by every tab at once.
    var ceiling = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, Math.min(retries, 5)));
    return ceiling / 2 + Math.random() * ceiling / 2;
  }

  // --- the header indicator -------------------------------------------------
  var LABELS = {
    live: ["live", "Prices update as the market moves"],
    reconnecting: ["reconnecting", "Connection lost; reconnecting"],
    stale: ["stale", "Not connected: prices refresh every 30 seconds"],
    static: ["static", "Prices on this page update when you reload"],
  };

  function indicate(status) {
    var indicator = document.getElementById("live-status");
    if (!indicator) { return; }
    Object.keys(LABELS).forEach(function (name) {
      indicator.classList.toggle("live-status--" + name, name === status);
    });
    indicator.setAttribute("data-status", status);
    indicator.title = LABELS[status][1];
    var label = indicator.querySelector(".live-status__label");
    if (label) { label.textContent = LABELS[status][0]; }
  }

  // --- what the page shows --------------------------------------------------
  function subscription() {
    var views = {};
    document.querySelectorAll("[data-live-view][data-live-symbols]").forEach(function (element) {
      var view = element.getAttribute("data-live-view");
      var symbols = element.getAttribute("data-live-symbols").trim().split(/[\s,]+/).filter(Boolean);
      views[view] = (views[view] || []).concat(symbols);
    });
    Object.keys(views).forEach(function (view) {
      views[view] = views[view].filter(function (symbol, index, all) { return all.indexOf(symbol) === index; });
    });
    return views;
  }

  function sendSubscription(force) {
    if (!state.socket || !state.open) { return; }
    var message = JSON.stringify({ type: "subscribe", views: subscription() });
    if (force || message !== state.subscription) {
      state.subscription = message;
      state.socket.send(message);
    }
  }

  function wantsSocket() {
    return document.querySelector("[data-live-view], [data-live], [data-live-refresh]") !== null;
  }

  // --- re-fetching live regions ----------------------------------------------
  function refresh(selector) {
    var regions = Array.prototype.filter.call(document.querySelectorAll(selector), function (el) { return el.id; });
    if (!regions.length) { return; }
    // One request for every region: the page itself, each region picked out by id.
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : Promise.reject(response.status); })
      .then(function (html) {
        regions.forEach(function (region) {
          if (!document.body.contains(region)) { return; }
          htmx.swap(region, html, { swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0 }, { select: "#" + region.id });
        });
        sendSubscription(false);
      })
      .catch(function () { /* the next poll or message tries again */ });
  }

  function signalled(events) {
    events.split(/\s+/).filter(Boolean).forEach(function (name) {
      refresh('[data-live-refresh~="' + name.replace(/[^a-z_-]/g, "") + '"]');
      htmx.trigger(document.body, "live:" + name);
    });
  }

  // --- the flash on changed numbers ------------------------------------------
  function number(text) {
    var value = parseFloat((text || "").replace(/[^0-9.\-]/g, ""));
    return isNaN(value) ? null : value;
  }

  function flashes(id) {
    return FLASH_PREFIXES.some(function (prefix) { return id.indexOf(prefix) === 0; });
  }

  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id && flashes(target.id)) {
      state.previous[target.id] = number(target.textContent);
    }
  });

  function afterMessage() {
    Object.keys(state.previous).forEach(function (id) {
      var element = document.getElementById(id);
      var before = state.previous[id];
      var after = element ? number(element.textContent) : null;
      if (element && before !== null && after !== null && after !== before) {
        element.classList.remove("flash-up", "flash-down");
        element.classList.add(after > before ? "flash-up" : "flash-down");
      }
    });
    state.previous = {};
    document.querySelectorAll("span[id^='candle-']").forEach(function (candle) {
      if (candle.getAttribute("data-seen")) { return; }
      candle.setAttribute("data-seen", "1");
      document.dispatchEvent(new CustomEvent("bullpen:price", {
        detail: {
          symbol: candle.getAttribute("data-symbol"),
          time: parseInt(candle.getAttribute("data-time"), 10),
          price: parseFloat(candle.getAttribute("data-price")),
        },
      }));
    });
    var signal = document.getElementById("live-signal");
    if (signal && signal.getAttribute("data-refresh")) {
      var events = signal.getAttribute("data-refresh");
      signal.removeAttribute("data-refresh");
      signalled(events);
    }
  }

  // --- what a message may swap -----------------------------------------------
  // A push carries the spans of every page of its kind (the wallet's totals, say); a
  // span this page does not show has no target, which htmx would log as an error.
  // Keep the elements whose id is on the page, and the ones with an explicit target
  // (toasts: hx-swap-oob="beforeend:#toasts").
  function defineFilter() {
    htmx.defineExtension("live-filter", {
      transformResponse: function (text) {
        var template = document.createElement("template");
        template.innerHTML = text;
        var kept = [];
        Array.prototype.forEach.call(template.content.children, function (element) {
          var oob = element.getAttribute("hx-swap-oob") || "";
          if (oob.indexOf(":") > 0 || (element.id && document.getElementById(element.id))) {
            kept.push(element.outerHTML);
          }
        });
        return kept.join("");
      },
    });
  }

  // --- the socket's life ----------------------------------------------------
  function isOurs(event) {
    return event.target && event.target.id === SOCKET_ID;
  }

  document.addEventListener("htmx:wsOpen", function (event) {
    if (!isOurs(event)) { return; }
    var reconnected = state.everOpened;
    state.socket = event.detail.socketWrapper;
    state.open = true;
    state.everOpened = true;
    state.closedAt = null;
    state.retries = 0;
    indicate("live");
    sendSubscription(true);
    // Whatever moved while we were away: fetch the live regions once.
    if (reconnected) { refresh("[data-live]"); }
  });

  document.addEventListener("htmx:wsClose", function (event) {
    if (!isOurs(event)) { return; }
    var wasOpen = state.open;
    state.open = false;
    if (wasOpen || state.closedAt === null) { state.closedAt = Date.now(); }
    indicate(Date.now() - state.closedAt > STALE_AFTER_MS ? "stale" : "reconnecting");
    var code = event.detail.event && event.detail.event.code;
    var wrapper = event.detail.socketWrapper;
    if (EXTENSION_RETRIES.indexOf(code) >= 0 || !wrapper) { return; }
    // The extension gives up on a clean close (1000, 1001...): a server restart or
    // daphne's idle close. Reconnect ourselves, with backoff.
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(function () {
      state.retries += 1;
      if (document.getElementById(SOCKET_ID)) { wrapper.reconnect(); }
    }, backoff(state.retries));
  });

  document.addEventListener("htmx:wsAfterMessage", function (event) {
    if (isOurs(event)) { afterMessage(); }
  });

  // After htmx swaps part of the page (pagination, a filter), follow its symbols.
  document.addEventListener("htmx:afterSettle", function () { sendSubscription(false); });

  function connect() {
    if (!wantsSocket() || document.getElementById(SOCKET_ID) || !window.htmx) { return; }
    htmx.config.wsReconnectDelay = backoff;
    defineFilter();
    var element = document.createElement("div");
    element.id = SOCKET_ID;
    element.hidden = true;
    element.setAttribute("hx-ext", "ws,live-filter");
    element.setAttribute("ws-connect", "/ws/live/");
    document.body.appendChild(element);
    indicate("reconnecting");
    htmx.process(element);
  }

  // Fallback: with websockets blocked or down, poll the live regions.
  setInterval(function () {
    if (!wantsSocket() || state.open || document.hidden) { return; }
    if (state.closedAt !== null && Date.now() - state.closedAt > STALE_AFTER_MS) { indicate("stale"); }
    else if (!state.everOpened) { indicate("stale"); }
    refresh("[data-live]");
  }, POLL_MS);

  // Keeps this player counted as online (market.groups presence) on quiet markets.
  setInterval(function () {
    if (state.open && state.socket) { state.socket.send('{"type":"ping"}'); }
  }, PING_MS);

  document.addEventListener("DOMContentLoaded", connect);

  window.Bullpen = window.Bullpen || {};
  window.Bullpen.live = { state: state, refresh: refresh };
})();
