// Hosted checkout: live status over Server-Sent Events, polling status.json when the stream is
// refused or unavailable; countdown; copy buttons. No dependencies, no inline script (CSP).
(function () {
  "use strict";
  var root = document.getElementById("checkout");
  if (!root) return;
  var invoice = root.getAttribute("data-invoice");
  var embed = root.getAttribute("data-embed") === "1";
  var base = "/i/" + encodeURIComponent(invoice);
  var current = JSON.parse(root.getAttribute("data-status"));
  var FINAL = { paid: true, expired: true, invalid: true };
  var POLL_MS = 3000;
  var pollTimer = null;
  var source = null;

  function byId(id) { return document.getElementById(id); }
  function text(id, value) { var el = byId(id); if (el && el.textContent !== value) el.textContent = value; }

  var timeUp = false;

  function statusText(s) {
    if (timeUp && (s.state === "waiting" || s.state === "underpaid")) {
      return "Time is up. Please do not send a payment now.";
    }
    switch (s.state) {
      case "waiting": return "Waiting for your payment…";
      case "underpaid": return "Partial payment received. Please pay the remaining " + s.amount_due + " " + s.asset + ".";
      case "seen": return "Payment seen, confirming (" + s.confirmations + "/" + s.required_confirmations + " confirmations)…";
      case "paid": return "Paid. Thank you!";
      case "expired": return "Expired.";
      default: return "Payment reversed. Contact the merchant.";
    }
  }

  function render(s) {
    var previous = current;
    current = s;
    root.setAttribute("data-state", s.state);
    text("status-text", statusText(s));
    var due = s.amount_due !== "0" ? s.amount_due : s.amount;
    text("amount-due", due);
    text("amount-paid", s.amount_paid);
    var qr = byId("qr");
    if (qr && qr.getAttribute("src") !== s.qr_url) {
      qr.setAttribute("src", s.qr_url);
      qr.setAttribute("alt", "QR code of the payment request for " + due + " " + s.asset);
    }
    var links = document.querySelectorAll("#wallets a");
    for (var i = 0; i < links.length && i < s.wallet_links.length; i++) {
      links[i].setAttribute("href", s.wallet_links[i].url);
    }
    if (s.state === "paid" && previous.state !== "paid") onPaid(s);
    if (FINAL[s.state]) stop();
  }

  function onPaid(s) {
    if (embed && window.parent !== window) {
      window.parent.postMessage({ type: "chaingate:paid", invoice: invoice, redirect_url: s.redirect_url }, "*");
    }
    if (s.redirect_url) {
      byId("redirect-note").hidden = false;
      window.setTimeout(function () {
        if (embed && window.parent !== window) return; // the widget takes the shop's page there
        window.location.assign(s.redirect_url);
      }, 1500);
    }
  }

  function stop() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { window.clearTimeout(pollTimer); pollTimer = null; }
  }

  function poll() {
    pollTimer = null;
    fetch(base + "/status.json", { cache: "no-store", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) render(s); })
      .catch(function () {})
      .then(function () { if (!FINAL[current.state] && !source) pollTimer = window.setTimeout(poll, POLL_MS); });
  }

  function listen() {
    if (!window.EventSource) { poll(); return; }
    source = new EventSource(base + "/events");
    source.addEventListener("status", function (e) { render(JSON.parse(e.data)); });
    source.onerror = function () {
      // A refused stream (503 over the cap, 404) is CLOSED: poll instead. A dropped one retries.
      if (source && source.readyState === EventSource.CLOSED) {
        source = null;
        root.setAttribute("data-live", "polling");
        if (!FINAL[current.state] && !pollTimer) poll();
      }
    };
    source.onopen = function () { root.setAttribute("data-live", "stream"); };
  }

  function tick() {
    var el = byId("countdown");
    if (!el) return;
    var left = Math.max(0, Math.floor((Date.parse(current.expires_at) - Date.now()) / 1000));
    var m = Math.floor(left / 60), sec = left % 60;
    var h = Math.floor(m / 60);
    var label = h > 0 ? h + ":" + String(m % 60).padStart(2, "0") + ":" + String(sec).padStart(2, "0")
                      : m + ":" + String(sec).padStart(2, "0");
    text("countdown", label);
    if (left === 0 && !timeUp) {
      // The gateway expires the invoice once the chain is past expiry; until then say so.
      timeUp = true;
      root.setAttribute("data-timeup", "");
      text("status-text", statusText(current));
    }
    el.setAttribute("aria-label", m + " minutes " + sec + " seconds left");
    var wrap = el.parentNode;
    if (left < 120) wrap.setAttribute("data-urgent", ""); else wrap.removeAttribute("data-urgent");
  }

  function copy(button) {
    var target = byId(button.getAttribute("data-copy-target"));
    var value = target.value !== undefined ? target.value : target.textContent;
    function done() {
      var label = button.textContent;
      button.setAttribute("data-copied", "");
      button.textContent = "Copied";
      text("status-text", statusText(current)); // keep the live region about the payment
      window.setTimeout(function () { button.textContent = label; button.removeAttribute("data-copied"); }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(value).then(done, function () { fallbackCopy(button, value); done(); });
    } else {
      fallbackCopy(button, value);
      done();
    }
  }

  function fallbackCopy(button, value) {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } catch (e) { /* nothing more to try */ }
    document.body.removeChild(area);
    button.focus(); // keyboard users stay where they were
  }

  var buttons = document.querySelectorAll("[data-copy-target]");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function (e) { copy(e.currentTarget); });
  }
  byId("address").addEventListener("focus", function (e) { e.target.select(); });

  if (embed && window.parent !== window) {
    // Keys go to the focused frame: tell the widget to close its modal on Escape.
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape") window.parent.postMessage({ type: "chaingate:close", invoice: invoice }, "*");
    });
  }

  tick();
  window.setInterval(tick, 1000);
  if (!FINAL[current.state]) listen();
})();
