/* aecore latent explorer: decode a latent vector z in the browser, with no kernel.
 *
 * aecore.explorer.latent_explorer() writes a <div class="aecore-explorer" id=...> holding a JSON
 * spec (decoder layers with base64 weights, slider axes, an optional 2-D map), inlines this file
 * and calls window.aecoreLatentExplorer(id). The forward pass below mirrors PyTorch:
 * Linear (y = W x + b, W row-major (out, in)) and elementwise activations.
 * The current z is kept in the root's data-z attribute (JSON), so tests and readers can read it.
 */
(function () {
  "use strict";
  if (window.aecoreLatentExplorer) return;

  var TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var CSS = ".aecore-explorer{font:13px sans-serif;margin:.5em 0}" +
    ".aecore-explorer .aecore-row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}" +
    ".aecore-explorer canvas{border:1px solid #999;background:#fff}" +
    ".aecore-explorer .aecore-image{image-rendering:pixelated}" +
    ".aecore-explorer .aecore-map{cursor:crosshair}" +
    ".aecore-explorer label{display:flex;gap:6px;align-items:center;margin:2px 0}" +
    ".aecore-explorer label span{min-width:3em}" +
    ".aecore-explorer input[type=range]{width:180px}" +
    ".aecore-explorer output{display:block;font-family:monospace;margin-top:4px}";

  function bytes(b64) {
    var bin = atob(b64), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function half(h) {  // IEEE 754 binary16 -> number
    var sign = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
    if (e === 0) return sign * Math.pow(2, -14) * (f / 1024);
    if (e === 31) return f ? NaN : sign * Infinity;
    return sign * Math.pow(2, e - 15) * (1 + f / 1024);
  }

  function floats(b64, dtype) {  // little-endian float32 or float16, as numpy's "<f4" / "<f2"
    var buf = bytes(b64).buffer, view = new DataView(buf), n, out, i;
    if (dtype === "float32") {
      n = buf.byteLength / 4; out = new Float32Array(n);
      for (i = 0; i < n; i++) out[i] = view.getFloat32(4 * i, true);
    } else {
      n = buf.byteLength / 2; out = new Float32Array(n);
      for (i = 0; i < n; i++) out[i] = half(view.getUint16(2 * i, true));
    }
    return out;
  }

  function erf(x) {  // Abramowitz and Stegun 7.1.26, |error| < 1.5e-7
    var s = x < 0 ? -1 : 1, t;
    x = Math.abs(x);
    t = 1 / (1 + 0.3275911 * x);
    return s * (1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t +
                     0.254829592) * t * Math.exp(-x * x));
  }

  var ACTIVATIONS = {
    relu: function (x) { return x > 0 ? x : 0; },
    leaky_relu: function (x, l) { return x >= 0 ? x : l.slope * x; },
    elu: function (x, l) { return x > 0 ? x : l.alpha * (Math.exp(x) - 1); },
    tanh: function (x) { return Math.tanh(x); },
    gelu: function (x, l) {
      if (l.approximate === "tanh") {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
      }
      return 0.5 * x * (1 + erf(x / Math.SQRT2));
    },
    silu: function (x) { return x / (1 + Math.exp(-x)); },
    sigmoid: function (x) { return 1 / (1 + Math.exp(-x)); },
    softplus: function (x, l) { return x * l.beta > l.threshold ? x : Math.log1p(Math.exp(l.beta * x)) / l.beta; },
    identity: function (x) { return x; }
  };

  function forward(layers, z) {  // (latent_dim,) -> (n_outputs,), like decoder(z) in PyTorch
    var x = Float64Array.from(z);
    layers.forEach(function (l) {
      var y, i, j, s, f;
      if (l.kind === "linear") {
        y = new Float64Array(l.out);
        for (i = 0; i < l.out; i++) {
          s = l.b[i];
          for (j = 0; j < l.in; j++) s += l.W[i * l.in + j] * x[j];
          y[i] = s;
        }
        x = y;
      } else {
        f = ACTIVATIONS[l.kind];
        for (i = 0; i < x.length; i++) x[i] = f(x[i], l);
      }
    });
    return x;
  }

  function el(tag, attrs, parent) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function clamp01(v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

  function drawImage(canvas, shape, v) {  // one channel dark on light (gray_r), three channels RGB
    var ctx = canvas.getContext("2d"), H = shape[shape.length - 2], W = shape[shape.length - 1];
    var img = ctx.createImageData(W, H), rgb = shape.length === 3 && shape[0] === 3, p, c, g;
    for (p = 0; p < H * W; p++) {
      if (rgb) {
        for (c = 0; c < 3; c++) img.data[4 * p + c] = Math.round(255 * clamp01(v[c * H * W + p]));
      } else {
        g = Math.round(255 * (1 - clamp01(v[p])));
        img.data[4 * p] = img.data[4 * p + 1] = img.data[4 * p + 2] = g;
      }
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  window.aecoreLatentExplorer = function (id) {
    var root = document.getElementById(id);
    if (!root || root.dataset.ready) return;
    var spec = JSON.parse(root.querySelector("script.aecore-explorer-spec").textContent);
    var layers = spec.layers.map(function (l) {
      if (l.kind !== "linear") return l;
      return {kind: "linear", in: l.in, out: l.out, W: floats(l.weight, spec.dtype), b: floats(l.bias, spec.dtype)};
    });
    var axes = spec.axes, k = axes.directions.length, d = spec.latent_dim, shape = spec.image_shape;
    var H = shape[shape.length - 2], W = shape[shape.length - 1];
    if (!document.getElementById("aecore-explorer-style")) {
      el("style", {id: "aecore-explorer-style"}, document.head).textContent = CSS;
    }
    var fallback = root.querySelector(".aecore-explorer-fallback");
    if (fallback) fallback.remove();
    var row = el("div", {"class": "aecore-row"}, root);
    var mapCanvas = null, map = spec.map, points = [], pointLabels = null;
    if (map) {
      mapCanvas = el("canvas", {"class": "aecore-map", width: 260, height: 260,
                                title: "click to decode that point of the latent plane"}, row);
      if (map.points) {
        var q = bytes(map.points);
        for (var i = 0; i < q.length; i += 2) points.push([q[i] / 255, q[i + 1] / 255]);
        pointLabels = map.labels ? bytes(map.labels) : null;
      }
    }
    var right = el("div", {}, row);
    var canvas = el("canvas", {"class": "aecore-image", width: W, height: H,
                               style: "width:" + W * spec.scale + "px;height:" + H * spec.scale + "px"}, right);
    var readout = el("output", {"class": "aecore-z"}, right);
    var controls = el("div", {"class": "aecore-sliders"}, row);
    var sliders = axes.names.map(function (name, i) {
      var label = el("label", {}, controls);
      el("span", {}, label).textContent = name;
      return el("input", {type: "range", min: axes.low[i], max: axes.high[i],
                          step: (axes.high[i] - axes.low[i]) / 1000, "aria-label": name}, label);
    });
    var select = null;
    if (spec.examples.length) {
      select = el("select", {"class": "aecore-examples", "aria-label": "start from a real example"}, controls);
      el("option", {value: ""}, select).textContent = "start from an example...";
      spec.examples.forEach(function (e, i) { el("option", {value: i}, select).textContent = e.name; });
    }

    // z = base + sum_i (v_i - v0_i) * directions[i], as aecore.latent.LatentAxes.to_z
    var base = spec.start.slice(), baseValues = [];
    function values(z) {  // coordinates of z along the (orthogonal) directions
      return axes.directions.map(function (dir, i) {
        var num = 0, den = 0;
        for (var j = 0; j < d; j++) { num += (z[j] - axes.origin[j]) * dir[j]; den += dir[j] * dir[j]; }
        return num / den;
      });
    }
    function currentZ() {
      var z = base.slice();
      sliders.forEach(function (s, i) {
        var dv = parseFloat(s.value) - baseValues[i];
        for (var j = 0; j < d; j++) z[j] += dv * axes.directions[i][j];
      });
      return z;
    }
    function drawMap(z) {
      var ctx = mapCanvas.getContext("2d"), w = mapCanvas.width, h = mapCanvas.height;
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, w, h);
      points.forEach(function (p, i) {
        ctx.fillStyle = pointLabels ? TAB10[pointLabels[i] % 10] : "#888";
        ctx.fillRect(p[0] * (w - 1) - 1.5, (1 - p[1]) * (h - 1) - 1.5, 3, 3);
      });
      var px = (z[0] - map.low[0]) / (map.high[0] - map.low[0]) * (w - 1);
      var py = (1 - (z[1] - map.low[1]) / (map.high[1] - map.low[1])) * (h - 1);
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(px, py, 6, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillStyle = "#333";
      ctx.font = "11px sans-serif";
      (map.names || []).forEach(function (name, i) {
        ctx.fillStyle = TAB10[i % 10];
        ctx.fillText(name, 4 + 14 * i, 12);
      });
    }
    function update() {
      var z = currentZ();
      drawImage(canvas, shape, forward(layers, z));
      root.dataset.z = JSON.stringify(z);
      readout.textContent = "z = (" + z.slice(0, 8).map(function (v) { return v.toFixed(3); }).join(", ") +
        (d > 8 ? ", ..." : "") + ")";
      if (mapCanvas) drawMap(z);
    }
    function start(z) {  // move the sliders to z's coordinates and keep z itself as the base
      base = z.slice();
      values(z).forEach(function (v, i) { sliders[i].value = v; });
      baseValues = sliders.map(function (s) { return parseFloat(s.value); });  // as clamped/snapped
      update();
    }
    sliders.forEach(function (s) { s.addEventListener("input", update); });
    if (select) {
      select.addEventListener("change", function () {
        if (select.value !== "") start(spec.examples[+select.value].z);
      });
    }
    if (mapCanvas) {
      mapCanvas.addEventListener("click", function (ev) {
        var r = mapCanvas.getBoundingClientRect();
        var fx = (ev.clientX - r.left - mapCanvas.clientLeft) / mapCanvas.clientWidth;
        var fy = (ev.clientY - r.top - mapCanvas.clientTop) / mapCanvas.clientHeight;
        start([map.low[0] + fx * (map.high[0] - map.low[0]), map.high[1] - fy * (map.high[1] - map.low[1])]);
      });
    }
    root.dataset.ready = "1";
    start(spec.start);
  };
})();
