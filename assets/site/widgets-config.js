// Loaded after require.js and before the ipywidgets embed manager. The manager computes the URL
// of its fonts from its AMD module name; map that name to the copy this site serves, so nothing is
// fetched from a CDN. Sphinx writes the path to the site root into <html data-content_root>.
(function () {
  var root = document.documentElement.dataset.content_root || "./";
  var base = new URL(root + "_static/vendor/widgets", document.baseURI).href;
  window.__jupyter_widgets_assets_path__ = base + "/";
  window.require.config({ paths: { "@jupyter-widgets/html-manager/dist": base } });
})();
