// Small behaviours htmx does not cover: remembering the rater's name and clearing the follow-up box.
(function () {
  "use strict";
  var RATER_KEY = "playground.rater";

  function fillRater(root) {
    var saved = window.localStorage.getItem(RATER_KEY);
    if (!saved) return;
    root.querySelectorAll('input[data-remember="rater"]').forEach(function (input) {
      if (!input.value) input.value = saved;
    });
  }

  document.addEventListener("DOMContentLoaded", function () { fillRater(document); });
  // htmx:load fires for every piece of content htmx swaps in (vote forms arrive by SSE).
  document.addEventListener("htmx:load", function (event) { fillRater(event.target); });

  document.addEventListener("htmx:configRequest", function (event) {
    var rater = event.detail.elt.closest && event.detail.elt.closest("form.vote");
    if (!rater) return;
    var input = rater.querySelector('input[data-remember="rater"]');
    if (input && input.value.trim()) window.localStorage.setItem(RATER_KEY, input.value.trim());
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt;
    if (!event.detail.successful || !form.matches || !form.matches("form[data-reset-prompt]")) return;
    var prompt = form.querySelector('textarea[name="prompt"]');
    if (prompt) prompt.value = "";
  });

  // A new request replaces any old message in the flash area.
  document.addEventListener("htmx:beforeRequest", function () {
    var flash = document.getElementById("flash");
    if (flash) flash.innerHTML = "";
  });
})();
