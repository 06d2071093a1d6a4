// Loaded after require.js and before the ipywidgets embed manager.
(function () {
  // 1. The manager computes the URL of its fonts from its AMD module name; map that name to the
  //    copy this site serves, so nothing is fetched from a CDN. Sphinx writes the path to the site
  //    root into <html data-content_root>.
  var root = document.documentElement.dataset.content_root || "./";
  var base = new URL(root + "_static/vendor/widgets", document.baseURI).href;
  window.__jupyter_widgets_assets_path__ = base + "/";
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": base } });

  // 2. Widget labels typeset their text with MathJax 2's `MathJax.Hub.Queue`; the site runs
  //    MathJax 3, which has no Hub. Translate the call (MathJax is loaded, deferred, before the
  //    load event at which the manager renders widgets; this listener is registered first).
  window.addEventListener("load", function () {
    var mj = window.MathJax;
    if (!mj || mj.Hub) return;
    mj.Hub = {
      Queue: function () {
        var elements = [];
        Array.prototype.forEach.call(arguments, function (item) {
          if (Array.isArray(item)) item.forEach(function (x) { if (x instanceof Element) elements.push(x); });
        });
        if (mj.typesetPromise) mj.typesetPromise(elements.length ? elements : undefined).catch(function () {});
      },
    };
  });
})();
