/* ChainGate checkout widget. On the shop's page:
 *   <script src="https://pay.example.com/static/widget.js" data-invoice="inv_..." async></script>
 * adds a "Pay with crypto" button that opens the hosted checkout in a modal (an iframe of
 * /i/<invoice>?embed=1). Or call ChainGate.open("inv_...") from your own button.
 * When the invoice is paid the modal reports it (event "chaingate:paid" on window) and, if the
 * invoice has a redirect_url, takes the page there.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = new URL(script ? script.src : "/", window.location.href).origin;
  var STYLE_ID = "chaingate-widget-style";
  var open = null;

  function style() {
    if (document.getElementById(STYLE_ID)) return;
    var css = document.createElement("style");
    css.id = STYLE_ID;
    css.textContent =
      ".cg-w-backdrop{position:fixed;inset:0;z-index:2147483000;background:rgba(10,14,22,.62);display:flex;align-items:center;justify-content:center;padding:12px}" +
      ".cg-w-dialog{position:relative;width:100%;max-width:460px;height:min(860px,calc(100vh - 24px));background:transparent;border-radius:14px;overflow:hidden;box-shadow:0 12px 48px rgba(0,0,0,.35)}" +
      ".cg-w-frame{width:100%;height:100%;border:0;display:block;background:#fff}" +
      "@media (prefers-color-scheme:dark){.cg-w-frame{background:#161b24}}" +
      ".cg-w-close{position:absolute;top:8px;right:8px;z-index:1;width:36px;height:36px;border-radius:50%;border:0;background:rgba(20,26,38,.72);color:#fff;font:20px/36px system-ui,sans-serif;cursor:pointer}" +
      ".cg-w-close:focus-visible{outline:3px solid #ff9f1c;outline-offset:2px}" +
      ".cg-w-button{font:600 16px system-ui,sans-serif;padding:12px 20px;border-radius:8px;border:0;background:#3b4fe0;color:#fff;cursor:pointer}";
    document.head.appendChild(css);
  }

  function close() {
    if (!open) return;
    open.backdrop.parentNode.removeChild(open.backdrop);
    open.inerted.forEach(function (el) { el.inert = false; });
    document.removeEventListener("keydown", open.onKey, true);
    if (open.returnFocus && open.returnFocus.focus) open.returnFocus.focus();
    open = null;
  }

  function openCheckout(invoiceId) {
    if (!/^inv_[0-9a-z]{26}$/.test(invoiceId)) throw new Error("ChainGate: not an invoice id: " + invoiceId);
    close();
    style();
    var backdrop = document.createElement("div");
    backdrop.className = "cg-w-backdrop";
    var dialog = document.createElement("div");
    dialog.className = "cg-w-dialog";
    dialog.setAttribute("role", "dialog");
    dialog.setAttribute("aria-modal", "true");
    dialog.setAttribute("aria-label", "Crypto payment");
    var closeButton = document.createElement("button");
    closeButton.type = "button";
    closeButton.className = "cg-w-close";
    closeButton.setAttribute("aria-label", "Close payment window");
    closeButton.textContent = "×";
    var frame = document.createElement("iframe");
    frame.className = "cg-w-frame";
    frame.title = "ChainGate checkout";
    frame.src = origin + "/i/" + encodeURIComponent(invoiceId) + "?embed=1";
    frame.setAttribute("allow", "clipboard-write");
    frame.setAttribute("referrerpolicy", "no-referrer");
    dialog.appendChild(closeButton);
    dialog.appendChild(frame);
    backdrop.appendChild(dialog);
    document.body.appendChild(backdrop);
    // Keep keyboard and screen-reader focus inside the modal: the rest of the page is inert.
    var inerted = [];
    Array.prototype.forEach.call(document.body.children, function (el) {
      if (el !== backdrop && !el.inert) { el.inert = true; inerted.push(el); }
    });
    var onKey = function (e) { if (e.key === "Escape") close(); };
    document.addEventListener("keydown", onKey, true);
    closeButton.addEventListener("click", close);
    backdrop.addEventListener("click", function (e) { if (e.target === backdrop) close(); });
    open = {
      backdrop: backdrop, frame: frame, onKey: onKey, inerted: inerted,
      returnFocus: document.activeElement
    };
    frame.focus();
  }

  window.addEventListener("message", function (e) {
    if (e.origin !== origin || !open || e.source !== open.frame.contentWindow) return;
    var data = e.data || {};
    if (data.type === "chaingate:close") { close(); return; }
    if (data.type !== "chaingate:paid") return;
    window.dispatchEvent(new CustomEvent("chaingate:paid", { detail: { invoice: data.invoice } }));
    if (typeof data.redirect_url === "string" && /^https?:\/\//.test(data.redirect_url)) {
      window.setTimeout(function () { window.location.assign(data.redirect_url); }, 1500);
    }
  });

  window.ChainGate = { open: openCheckout, close: close };

  var invoice = script && script.getAttribute("data-invoice");
  if (invoice) {
    var mount = function () {
      style();
      var button = document.createElement("button");
      button.type = "button";
      button.className = "cg-w-button";
      button.textContent = script.getAttribute("data-label") || "Pay with crypto";
      button.addEventListener("click", function () { openCheckout(invoice); });
      script.parentNode.insertBefore(button, script.nextSibling);
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
    else mount();
  }
})();
