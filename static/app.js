// Small behaviours htmx does not cover: remembering the rater's name, clearing the follow-up box,
// and moving between tokens with the keyboard.
(function () {
  "use strict";
  var RATER_KEY = "playground.rater";

  function fillRater(root) {
    var saved = window.localStorage.getItem(RATER_KEY);
    if (!saved) return;
    root.querySelectorAll('input[data-remember="rater"]').forEach(function (input) {
      if (!input.value) input.value = saved;
      fillFromOwnVote(input.form, saved);
    });
  }

  // Changing a vote re-sends every field: start from this rater's stored scores and comment.
  function fillFromOwnVote(form, rater) {
    var footer = form && form.closest(".turn-foot");
    if (!footer) return;
    var own = Array.prototype.find.call(
      footer.querySelectorAll(".vote-record"),
      function (record) { return record.dataset.rater === rater; }
    );
    if (!own) return;
    ["a", "b", "c", "d"].forEach(function (slot) {
      var upper = slot.toUpperCase();
      if (form.elements["score_" + slot]) form.elements["score_" + slot].value = own.dataset["score" + upper] || "";
      if (form.elements["rank_" + slot] && own.dataset["rank" + upper]) form.elements["rank_" + slot].value = own.dataset["rank" + upper];
    });
    form.elements.comment.value = own.dataset.comment || "";
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
    // 4xx answers are swapped in as messages (see htmx-config), so "successful" is not enough.
    if (!event.detail.successful || event.detail.xhr.status >= 400) return;
    if (!form.matches || !form.matches("form[data-reset-prompt]")) return;
    var prompt = form.querySelector('textarea[name="prompt"]');
    if (prompt) prompt.value = "";
  });

  // A new request, or a turn finishing (which ends "wait until..." messages), clears old messages.
  function clearFlash() {
    var flash = document.getElementById("flash");
    if (flash) flash.innerHTML = "";
  }
  document.addEventListener("htmx:beforeRequest", clearFlash);
  document.addEventListener("htmx:sseClose", clearFlash);

  // Token views: one Tab stop per answer; arrow keys, Home and End move between its tokens, and
  // the focused token shows its tip (see .tok:focus::after in app.css).
  var STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  document.addEventListener("keydown", function (event) {
    var token = event.target;
    if (!token.classList || !token.classList.contains("tok")) return;
    var tokens = token.closest("[data-tokens]");
    if (!tokens) return;
    var all = tokens.querySelectorAll(".tok");
    var index = Array.prototype.indexOf.call(all, token);
    var next = event.key === "Home" ? 0 : event.key === "End" ? all.length - 1
      : event.key in STEPS ? index + STEPS[event.key] : -1;
    if (next < 0 || next >= all.length) return;
    event.preventDefault();
    token.tabIndex = -1;
    all[next].tabIndex = 0;
    all[next].focus();
  });
})();
