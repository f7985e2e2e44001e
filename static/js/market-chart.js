// The stock page's candlestick chart (lightweight-charts, vendored). Reads its data URL
// from data-chart-url; the range buttons fetch chart.json?range=... No inline script: CSP.
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function toCandles(bars) {
    // [time, open, high, low, close, volume]; prices arrive as strings (exact decimals).
    return bars.map(function (bar) {
      return { time: bar[0], open: Number(bar[1]), high: Number(bar[2]), low: Number(bar[3]), close: Number(bar[4]) };
    });
  }

  function toVolumes(bars, up, down) {
    return bars.map(function (bar) {
      return { time: bar[0], value: bar[5], color: Number(bar[4]) >= Number(bar[1]) ? up : down };
    });
  }

  function init() {
    var box = document.getElementById("price-chart");
    if (!box || !window.LightweightCharts) { return; }
    var charts = window.LightweightCharts;
    var status = document.getElementById("price-chart-status");
    var up = cssVar("--gain", "#0a7a3d");
    var down = cssVar("--loss", "#c0262d");
    var chart = charts.createChart(box, {
      height: 380,
      autoSize: true,
      layout: { background: { color: "transparent" }, textColor: cssVar("--muted", "#5f6773") },
      grid: { vertLines: { color: cssVar("--border", "#e2e5ea") }, horzLines: { color: cssVar("--border", "#e2e5ea") } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: 0.25 } }
    });
    var candles = chart.addSeries(charts.CandlestickSeries, {
      upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down
    });
    var volume = chart.addSeries(charts.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    var buttons = document.querySelectorAll("[data-chart-range]");
    var request = 0;

    // The bucket of each range, as market/selectors.py CHART_RANGES groups the bars
    // (date_bin from Monday 2000-01-03 00:00 UTC): a pushed price opens a new candle
    // when its bucket is past the last one.
    var BUCKET_SECONDS = { "1d": 180, "1w": 1800, "1m": 7200, "1y": 86400, "5y": 7 * 86400 };
    var BUCKET_ORIGIN = 946857600;
    var range = null;

    function bucketStart(time) {
      var size = BUCKET_SECONDS[range];
      if (!size) { return null; }
      return BUCKET_ORIGIN + Math.floor((time - BUCKET_ORIGIN) / size) * size;
    }

    function load(name) {
      var mine = ++request;
      range = name;
      status.textContent = "Loading…";
      buttons.forEach(function (button) {
        button.setAttribute("aria-pressed", button.getAttribute("data-chart-range") === name ? "true" : "false");
      });
      fetch(box.getAttribute("data-chart-url") + "?range=" + encodeURIComponent(name), {
        headers: { Accept: "application/json" }, credentials: "same-origin"
      })
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (payload) {
          if (mine !== request) { return; }  // a later click won
          candles.setData(toCandles(payload.bars));
          volume.setData(toVolumes(payload.bars, up, down));
          chart.timeScale().fitContent();
          status.textContent = payload.bars.length ? "" : "No price history for this range yet.";
        })
        .catch(function () {
          if (mine === request) { status.textContent = "The chart could not be loaded. Try again in a moment."; }
        });
    }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () { load(button.getAttribute("data-chart-range")); });
    });
    // For the browser tests and the console: the candles the chart shows.
    window.Bullpen = window.Bullpen || {};
    window.Bullpen.chart = { candles: function () { return candles.data(); } };
    load(buttons.length ? buttons[0].getAttribute("data-chart-range") : "1d");

    // The live push carries the newest price (a hidden #candle-SYM span) and the start of
    // its minute (data-time): a price in the last candle's bucket is folded into it, a
    // later one opens the next candle (series.update appends a bar with a newer time).
    document.addEventListener("htmx:oobAfterSwap", function (event) {
      // The event fires on the swapped-in element; detail.target is the one it replaced
      // (with the previous price).
      var target = event.target;
      if (!target || target.id !== "candle-" + box.getAttribute("data-symbol")) { return; }
      var price = Number(target.getAttribute("data-price"));
      var data = candles.data();
      if (!data.length || !price) { return; }
      var last = data[data.length - 1];
      var time = bucketStart(parseInt(target.getAttribute("data-time"), 10));
      if (time !== null && time > last.time) {
        // As the server builds a bar: its first price opens it.
        candles.update({ time: time, open: price, high: price, low: price, close: price });
        return;
      }
      candles.update({ time: last.time, open: last.open, high: Math.max(last.high, price), low: Math.min(last.low, price), close: price });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
