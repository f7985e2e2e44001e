// The market's charts (lightweight-charts, vendored): the stock page's candlesticks
// (#price-chart) and the Bullpen Composite's line on /market/ (#composite-chart). A
// chart box names its JSON URL (data-chart-url); the range buttons of its section fetch
// that URL with ?range=...; its status line is #<box id>-status. No inline script: CSP.
(function () {
  "use strict";

  // The bucket of each stock range, as market/selectors.py CHART_RANGES groups the bars
  // (date_bin from Monday 2000-01-03 00:00 UTC): a pushed price opens a new candle
  // when its bucket is past the last one. The index's JSON names its own bucket.
  var BUCKET_SECONDS = { "1d": 180, "1w": 1800, "1m": 7200, "1y": 86400, "5y": 7 * 86400 };
  var BUCKET_ORIGIN = 946857600;

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

  function toLine(points) {
    // [time, open, high, low, close]: the line follows the closes.
    return points.map(function (point) { return { time: point[0], value: Number(point[4]) }; });
  }

  function chartOptions(bottomMargin) {
    return {
      layout: { background: { color: "transparent" }, textColor: cssVar("--muted", "#5f6773") },
      grid: { vertLines: { color: cssVar("--border", "#e2e5ea") }, horzLines: { color: cssVar("--border", "#e2e5ea") } },
      timeScale: { timeVisible: true, secondsVisible: false },
      rightPriceScale: { scaleMargins: { top: 0.1, bottom: bottomMargin } }
    };
  }

  // Range buttons, loading and the status line, shared by both charts. `show` draws a
  // payload and says whether it was empty. Returns the current range and its bucket.
  function rangeLoader(box, show) {
    var section = box.closest("section") || document;
    var buttons = section.querySelectorAll("[data-chart-range]");
    var status = document.getElementById(box.id + "-status");
    var empty = box.getAttribute("data-chart-empty") || "No price history for this range yet.";
    var current = { range: null, bucket: null };
    var request = 0;

    function load(name) {
      var mine = ++request;
      current.range = name;
      current.bucket = BUCKET_SECONDS[name] || null;
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
          if (payload.bucket) { current.bucket = payload.bucket; }
          status.textContent = show(payload) ? "" : empty;
        })
        .catch(function () {
          if (mine === request) { status.textContent = "The chart could not be loaded. Try again in a moment."; }
        });
    }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () { load(button.getAttribute("data-chart-range")); });
    });
    // The range the page marked pressed, else the first.
    var first = section.querySelector("[data-chart-range][aria-pressed='true']") || buttons[0];
    load(first ? first.getAttribute("data-chart-range") : "1d");
    return current;
  }

  function bucketStart(current, time) {
    if (!current.bucket) { return null; }
    return BUCKET_ORIGIN + Math.floor((time - BUCKET_ORIGIN) / current.bucket) * current.bucket;
  }

  function stockChart(charts, box) {
    var up = cssVar("--gain", "#0a7a3d");
    var down = cssVar("--loss", "#c0262d");
    var options = chartOptions(0.25);
    options.height = 380;
    options.autoSize = true;
    var chart = charts.createChart(box, options);
    var candles = chart.addSeries(charts.CandlestickSeries, {
      upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down
    });
    var volume = chart.addSeries(charts.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
    // For the browser tests and the console: the candles the chart shows.
    window.Bullpen.chart = { candles: function () { return candles.data(); } };
    var current = rangeLoader(box, function (payload) {
      candles.setData(toCandles(payload.bars));
      volume.setData(toVolumes(payload.bars, up, down));
      chart.timeScale().fitContent();
      return payload.bars.length > 0;
    });

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
      var time = bucketStart(current, parseInt(target.getAttribute("data-time"), 10));
      if (time !== null && time > last.time) {
        // As the server builds a bar: its first price opens it.
        candles.update({ time: time, open: price, high: price, low: price, close: price });
        return;
      }
      candles.update({ time: last.time, open: last.open, high: Math.max(last.high, price), low: Math.min(last.low, price), close: price });
    });
  }

  function indexChart(charts, box) {
    // A fixed height (no stylesheet rule needed); the width follows the box.
    var options = chartOptions(0.1);
    options.height = parseInt(box.getAttribute("data-chart-height"), 10) || 220;
    options.width = box.clientWidth;
    var chart = charts.createChart(box, options);
    if (window.ResizeObserver) {
      new ResizeObserver(function () { chart.applyOptions({ width: box.clientWidth }); }).observe(box);
    }
    var line = chart.addSeries(charts.LineSeries, { color: cssVar("--accent", "#2451b7"), lineWidth: 2 });
    window.Bullpen.indexChart = { points: function () { return line.data(); } };
    var current = rangeLoader(box, function (payload) {
      line.setData(toLine(payload.points));
      chart.timeScale().fitContent();
      return payload.points.length > 0;
    });

    // The live push swaps #bpx-level, which carries the level and its minute: folded
    // into the last point, or a new point once its bucket is past the last one.
    document.addEventListener("htmx:oobAfterSwap", function (event) {
      var target = event.target;
      if (!target || target.id !== "bpx-level") { return; }
      var level = Number(target.getAttribute("data-level"));
      var data = line.data();
      if (!data.length || !level) { return; }
      var last = data[data.length - 1];
      var time = bucketStart(current, parseInt(target.getAttribute("data-time"), 10));
      line.update({ time: time !== null && time > last.time ? time : last.time, value: level });
    });
  }

  // Each box once: the Composite's panel can also arrive later, loaded by htmx.
  function start(box, draw) {
    if (!box || !window.LightweightCharts || box.getAttribute("data-chart-ready")) { return; }
    box.setAttribute("data-chart-ready", "1");
    window.Bullpen = window.Bullpen || {};
    draw(window.LightweightCharts, box);
  }

  function init() {
    start(document.getElementById("price-chart"), stockChart);
    start(document.getElementById("composite-chart"), indexChart);
  }

  document.addEventListener("htmx:load", function () {
    start(document.getElementById("composite-chart"), indexChart);
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
