// The customer page's live Stripe panel: loaded after the page so the page never waits
// on Stripe. The slot keeps its height while loading (see console.css) so nothing jumps.
(function () {
  "use strict";
  var panel = document.getElementById("live-panel");
  if (!panel) { return; }
  var slot = document.getElementById("live-slot");
  var status = document.getElementById("live-status");
  fetch(panel.dataset.url, {credentials: "same-origin", headers: {"X-Requested-With": "fetch"}})
    .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.text(); })
    .then(function (html) { slot.innerHTML = html; status.hidden = true; })
    .catch(function () {
      status.textContent = "Stripe's live view could not be loaded; reload the page to try again. The state above is what Stripe last told us.";
    });
})();
