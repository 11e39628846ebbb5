// Dashboard progressive enhancement: copy buttons, confirmations, live delivery tables.
// Everything works without it; it only saves clicks and reloads.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // A delivery table with a pending delivery re-reads its own page until nothing is pending.
  function refresh(section) {
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(section.id);
        if (!fresh) return;
        section.innerHTML = fresh.innerHTML;
        if (fresh.hasAttribute("data-autorefresh")) schedule(section);
        else section.removeAttribute("data-autorefresh");
      });
  }
  function schedule(section) { window.setTimeout(function () { refresh(section); }, 1500); }
  document.querySelectorAll("[data-autorefresh]").forEach(schedule);
})();
